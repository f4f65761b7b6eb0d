"""The glove_space tactile model: closed-form stage 1, per-digit maps, whitened latent,
distance retrieval, checkpoints, and stage 2 on top of the fit."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from embodied_transfer.tactile import TactileError
from embodied_transfer.tactile.ceiling import fit_ridge
from embodied_transfer.tactile.data import paired_set, unpaired_set
from embodied_transfer.tactile.evaluate import retrieval, score_retrieval
from embodied_transfer.tactile.layouts import FINGERTIPS, GLOVE, ROBOT, load_layout
from embodied_transfer.tactile.models import (Aligner, ModelConfig, TactileAlignment,
                                              load_model, ridge_weights, save_model)
from embodied_transfer.tactile.surface import uv_grid
from embodied_transfer.tactile.train import TrainConfig, train_model

torch.set_num_threads(1)
GLOVE_SPACE = ModelConfig(encoder="glove_space")       # resolution 32, as fit_ridge's


@pytest.fixture(scope="module")
def fitted():
    """A glove_space model fitted on the first 12 paired grasps of training seed 0 (no
    stage 2), and those grasps."""
    paired = paired_set(12, seed=0)
    unpaired = {d: unpaired_set(d, 2, seed=1) for d in (GLOVE, ROBOT, FINGERTIPS)}
    model = train_model(paired, unpaired, TrainConfig(stage2_steps=0), GLOVE_SPACE, show=False)
    return model, paired, unpaired


def test_the_robot_encoder_is_the_per_digit_ridge_and_the_latent_distance_mahalanobis(fitted):
    model, paired, _ = fitted
    ridge = fit_ridge((12,), per_digit=True, sqrt_features=True)[12]
    robot, glove = paired.readings[ROBOT][::7], paired.readings[GLOVE][::7]
    with torch.no_grad():
        predicted = model.encoders[ROBOT](torch.from_numpy(robot)).double().numpy()
        z_robot = model.encode(ROBOT, torch.from_numpy(robot)).double().numpy()
        z_glove = model.encode(GLOVE, torch.from_numpy(glove)).double().numpy()
    np.testing.assert_allclose(predicted, ridge(robot), atol=2e-4)
    distance = ((z_glove[:, None] - z_robot[None]) ** 2).sum(-1)
    np.testing.assert_allclose(-distance, ridge.mahalanobis_scores(glove, robot),
                               rtol=2e-3, atol=2e-2)


def test_maps_stay_on_their_digit_and_the_glove_decodes_back_to_itself(fitted):
    model, _, _ = fitted
    _, mask, pixel_group = uv_grid(32)
    pixels = np.tile(pixel_group[mask.ravel()], 2)
    glove_group = load_layout(GLOVE).group
    for d in (ROBOT, FINGERTIPS):
        w = (model.encoders[d].map.weight * model.encoders[d].map.mask).detach().numpy()
        across = pixels[:, None] != glove_group[None]
        assert np.all(w[across] == 0) and np.any(w[~across] != 0)
        dec = model.decoders[d].map
        w = (dec.weight * dec.mask).detach().numpy()
        assert np.all(w[glove_group[:, None] != load_layout(d).group[None]] == 0)
    g = torch.rand(5, 137) * 0.8
    with torch.no_grad():
        np.testing.assert_allclose(model.convert(GLOVE, GLOVE, g), g, atol=1e-4)
        assert model.latent_size == 137 and not model.unit_latent
        # the whitening is the Cholesky factor of a precision: unwhiten is its inverse
        np.testing.assert_allclose(model.whiten @ model.unwhiten, torch.eye(137), atol=1e-3)
        conv = model.convert(GLOVE, ROBOT, g)
    assert conv.shape == (5, 1062) and conv.min() >= 0 and conv.max() <= 1


def test_a_glove_space_checkpoint_round_trips_with_its_whitening(fitted, tmp_path):
    model, _, _ = fitted
    save_model(model, tmp_path, {"test": True})
    loaded, config = load_model(tmp_path)
    assert config["config"]["encoder"] == "glove_space"
    x = torch.rand(3, 1062)
    with torch.no_grad():
        assert torch.equal(loaded.encode(ROBOT, x), model.encode(ROBOT, x))
        assert torch.equal(loaded.convert(ROBOT, GLOVE, x), model.convert(ROBOT, GLOVE, x))
    latent, converted = Aligner(loaded).align(GLOVE, np.full(137, 0.2), ROBOT)
    assert latent.shape == (137,) and converted.shape == (1062,)


def test_stage_two_starts_from_the_fit_and_keeps_the_maps_on_their_digits(fitted):
    model, paired, unpaired = fitted
    tuned = train_model(paired, unpaired, TrainConfig(stage2_steps=3, batch=16,
                                                      unpaired_batch=8, lr=1e-3),
                        GLOVE_SPACE, show=False)
    before, after = model.encoders[ROBOT].map, tuned.encoders[ROBOT].map
    moved = ((after.weight - before.weight) * after.mask).abs()
    assert moved.max() > 1e-5                                        # stage 2 trained it
    assert moved.max() < 0.1 * (before.weight * before.mask).abs().max()   # from the fit
    assert torch.equal(tuned.whiten, model.whiten)                   # fixed by the fit
    # the mask keeps the gradient on the digit: weights off it stay exactly zero
    assert torch.all(after.weight[after.mask == 0] == 0)


def test_glove_space_needs_the_glove_and_a_whole_hand_domain():
    with pytest.raises(TactileError, match="needs the glove_137 domain"):
        TactileAlignment(ModelConfig(encoder="glove_space", domains=[ROBOT, FINGERTIPS]))
    paired = paired_set(3, seed=0, domains=[GLOVE, FINGERTIPS])
    with pytest.raises(TactileError, match="whole-hand domain"):
        train_model(paired, {}, TrainConfig(stage2_steps=0),
                    ModelConfig(encoder="glove_space", domains=[GLOVE, FINGERTIPS]), show=False)


def test_ridge_weights_fit_each_group_alone_and_reject_an_empty_group():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 4))
    y = np.stack([x[:, 0] + 2 * x[:, 1], 3 * x[:, 2] - x[:, 3]], 1)
    w = ridge_weights(x, y, 1e-6, (np.array([0, 0, 1, 1]), np.array([0, 1])))
    np.testing.assert_allclose(w, [[1, 0], [2, 0], [0, 3], [0, -1]], atol=1e-4)
    with pytest.raises(TactileError, match="no input lies on digit group 2"):
        ridge_weights(x, y, 1.0, (np.array([0, 0, 1, 1]), np.array([0, 2])))


def test_distance_retrieval_ranks_by_euclidean_distance():
    q = np.array([[1.0, 0.0], [5.0, 1.0]])
    g = np.array([[1.0, 0.0], [5.0, 0.0]])      # by dot product item 1 beats query 0's pair
    assert retrieval(q, g, k=1, unit=False) == (1.0, 1.0)
    assert retrieval(q, g, k=1) == (0.5, 0.5)
    scores = -((q[:, None] - g[None]) ** 2).sum(-1)
    assert retrieval(q, g, k=1, unit=False) == score_retrieval(scores, k=1)


def test_stage_two_steps_follow_the_encoder_unless_given():
    from embodied_transfer.tactile.train import STAGE2_STEPS, resolved

    assert resolved(TrainConfig(), GLOVE_SPACE).stage2_steps == STAGE2_STEPS["glove_space"] == 0
    assert resolved(TrainConfig(), ModelConfig(encoder="local_uv")).stage2_steps == 4000
    assert resolved(TrainConfig(stage2_steps=7), GLOVE_SPACE).stage2_steps == 7
    with pytest.raises(TactileError, match="unknown encoder 'mlp'"):
        resolved(TrainConfig(), ModelConfig(encoder="mlp"))


def test_train_writes_a_glove_space_checkpoint_with_its_fit_plotted(tmp_path):
    import json

    from embodied_transfer.tactile.train import train

    result = train(tmp_path / "m", TrainConfig(paired_episodes=4, unpaired_episodes=1),
                   GLOVE_SPACE, show=False)
    info = json.loads((tmp_path / "m" / "config.json").read_text())["info"]
    assert info["train_config"]["stage2_steps"] == 0
    assert result["alignment_check"]["collapsed"] is False
    fit = json.loads((tmp_path / "m" / "training_curves.json").read_text())["stage1_closed_form"]
    assert {"rms_robot_hand_1062", "rms_fingertips_5x40", "rms_robot_hand_1062_palm"} <= set(fit)
    assert 0 < fit["rms_robot_hand_1062"][0] < 0.2
    assert (tmp_path / "m" / "training_curves.png").stat().st_size > 10_000
    assert load_model(tmp_path / "m")[0].glove_space
