"""Tactile alignment model: losses, gradient reversal, baselines, checkpoints, Aligner checks,
a short training run, evaluation and the command line glue."""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pytest
import torch

from embodied_transfer.tactile import DEFAULT_MODEL, TactileError
from embodied_transfer.tactile.data import paired_set, unpaired_set
from embodied_transfer.tactile.layouts import FINGERTIPS, GLOVE, ROBOT, load_layout
from embodied_transfer.tactile.models import (Aligner, ModelConfig, TactileAlignment,
                                              grad_reverse, load_model, patch_match_matrix,
                                              projection_matrix, save_model, uv_direct_matrix)
from embodied_transfer.app.tactile_commands import add_arguments, config_from_args, given_options
from embodied_transfer.tactile.train import (TrainConfig,
                                             info_nce, train_model)

torch.set_num_threads(1)
SMALL = ModelConfig(resolution=24, encoder="local_uv")   # latent = 302 UV pixels
SMALL_MLP = ModelConfig(resolution=24, hidden=32, latent=8, encoder="per_domain")


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    """A model trained for a few steps on a few grasps (fast; quality irrelevant)."""
    paired = paired_set(8, seed=0)
    unpaired = {d: unpaired_set(d, 4, seed=1) for d in (GLOVE, ROBOT, FINGERTIPS)}
    cfg = TrainConfig(stage1_steps=3, stage2_steps=3, batch=32, unpaired_batch=16)
    model = train_model(paired, unpaired, cfg, SMALL, show=False)
    return save_model(model, tmp_path_factory.mktemp("tactile"), {"test": True})


def test_info_nce_prefers_matched_pairs_and_reversal_flips_gradients():
    a = torch.nn.functional.normalize(torch.randn(16, 8), dim=-1)
    assert info_nce(a, a, 0.1) < info_nce(a, a.roll(1, 0), 0.1)
    x = torch.ones(3, requires_grad=True)
    grad_reverse(x, 0.5).sum().backward()
    assert torch.allclose(x.grad, torch.full((3,), -0.5))


def test_a_partial_domain_cannot_shape_the_whole_hand_encoders():
    """With the fingertips partial (the default), what they read changes nothing in the glove
    and robot-hand encoders; with every domain shaping the latent, it does."""
    import copy

    paired = paired_set(6, seed=0)
    unpaired = {d: unpaired_set(d, 3, seed=1) for d in (GLOVE, ROBOT, FINGERTIPS)}
    scrambled = copy.deepcopy(paired)
    rng = np.random.default_rng(0)
    scrambled.readings[FINGERTIPS] = rng.permutation(paired.readings[FINGERTIPS])

    def encoders(data, partial):
        cfg = TrainConfig(stage1_steps=2, stage2_steps=4, batch=16, unpaired_batch=8,
                          partial_domains=partial)
        model = train_model(data, unpaired, cfg, SMALL, show=False)
        return [v for d in (GLOVE, ROBOT) for v in model.encoders[d].state_dict().values()]
    for partial, same in (((FINGERTIPS,), True), ((), False)):
        a, b = encoders(paired, partial), encoders(scrambled, partial)
        assert all(torch.equal(x, y) for x, y in zip(a, b)) == same, partial
    with pytest.raises(TactileError, match="nothing shapes"):
        train_model(paired, unpaired, TrainConfig(stage1_steps=1, stage2_steps=1, batch=8,
                                                  partial_domains=(GLOVE, ROBOT, FINGERTIPS)),
                    SMALL, show=False)


def test_local_uv_encoder_starts_as_the_uv_projection_and_stays_local():
    """Untrained, a local_uv latent is the frame's UV image (unit length) and its decoder
    samples the UV image back; trained or not, a latent pixel never sees input pixels
    further than local_radius away."""
    from embodied_transfer.tactile.models import neighbourhood, sampling_matrix
    from embodied_transfer.tactile.surface import uv_grid

    model = TactileAlignment(SMALL).eval()
    assert model.latent_size == int(uv_grid(24)[1].sum()) == 302
    x = torch.rand(3, 137)
    uv = x @ torch.from_numpy(projection_matrix(load_layout(GLOVE), 24)).T
    assert torch.allclose(model.encode(GLOVE, x), torch.nn.functional.normalize(uv, dim=-1))
    z = torch.rand(2, 302)
    want = (z @ torch.from_numpy(sampling_matrix(load_layout(ROBOT), 24)).T).clamp(0, 1)
    assert torch.allclose(model.decode(ROBOT, z), want, atol=1e-6)
    near = torch.from_numpy(neighbourhood(24, SMALL.local_radius))
    assert 1 < near.sum(1).min() and near.sum(1).max() <= 25 and torch.equal(near, near.T)
    enc = model.encoders[GLOVE]
    assert enc.local_weight.numel() == int(near.sum())    # only the neighbourhood is stored
    with torch.no_grad():
        enc.local_weight.normal_()                 # any weights, as after training
    assert torch.equal(enc.dense_weight() != 0, near > 0)
    u = torch.zeros(1, 302, requires_grad=True)
    torch.nn.functional.linear(u, enc.dense_weight(), enc.bias)[0, 0].backward()
    assert torch.equal(u.grad[0] != 0, near[0] > 0)
    enc.eval()                                     # inference reuses the dense matrix ...
    x = torch.rand(3, enc.projection.shape[1])
    with torch.no_grad():
        first = enc(x)
        enc.local_weight.mul_(-1.0)                # ... until the weights change
        want = torch.nn.functional.normalize(
            torch.nn.functional.linear(enc.uv(x), enc.dense_weight(), enc.bias), dim=-1)
        assert torch.allclose(enc(x), want) and not torch.allclose(enc(x), first)
        enc.load_state_dict({k: v.clone() * 2 for k, v in enc.state_dict().items()})
        want = torch.nn.functional.normalize(
            torch.nn.functional.linear(enc.uv(x), enc.dense_weight(), enc.bias), dim=-1)
        assert torch.allclose(enc(x), want)
    with pytest.raises(TactileError, match="unknown encoder"):
        TactileAlignment(ModelConfig(resolution=24, encoder="transformer"))


def test_a_local_uv_checkpoint_with_dense_weights_still_loads(tmp_path):
    """Sessions 14-16 stored each local encoder's whole (G, G) matrix as ``weight`` (the
    forward pass used its neighbourhood only); such a checkpoint loads to the same model."""
    from safetensors.torch import load_file, save_file

    model = TactileAlignment(SMALL).eval()
    with torch.no_grad():
        for enc in model.encoders.values():
            enc.local_weight.normal_()
    save_model(model, tmp_path)
    state = load_file(str(tmp_path / "model.safetensors"))
    for d, enc in model.encoders.items():
        dense = enc.dense_weight().detach() + torch.rand(302, 302) * (enc.dense_weight() == 0)
        state[f"encoders.{d}.weight"] = dense.contiguous()   # off-neighbourhood: ignored
        del state[f"encoders.{d}.local_weight"]
    save_file(state, str(tmp_path / "model.safetensors"))
    loaded, _ = load_model(tmp_path)
    x = torch.rand(2, 137)
    assert torch.equal(loaded.encode(GLOVE, x), model.encode(GLOVE, x))
    state[f"encoders.{GLOVE}.weight"] = torch.zeros(3, 3)
    save_file(state, str(tmp_path / "model.safetensors"))
    with pytest.raises(TactileError, match="expected"):
        load_model(tmp_path)


def test_a_per_domain_mlp_model_still_trains_and_loads(tmp_path):
    """The sessions 5-13 architecture (and a config.json without "encoder") still load."""
    paired = paired_set(4, seed=0)
    unpaired = {d: unpaired_set(d, 2, seed=1) for d in (GLOVE, ROBOT, FINGERTIPS)}
    model = train_model(paired, unpaired, TrainConfig(stage1_steps=2, stage2_steps=2, batch=16,
                                                      unpaired_batch=8), SMALL_MLP, show=False)
    save_model(model, tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    del cfg["config"]["encoder"]
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    loaded, _ = load_model(tmp_path)
    assert loaded.cfg.encoder == "per_domain" and loaded.latent_size == 8
    x = torch.rand(2, 137)
    assert torch.allclose(loaded.encode(GLOVE, x), model.encode(GLOVE, x))


def test_baseline_matrices_map_between_layouts():
    uv = uv_direct_matrix(GLOVE, ROBOT, 24)
    pm = patch_match_matrix(ROBOT, GLOVE)
    assert uv.shape == (1062, 137) and pm.shape == (137, 1062)
    assert np.allclose(pm.sum(1), 1.0)            # every glove taxel has robot taxels near
    p = projection_matrix(load_layout(GLOVE), 24)
    assert (p >= 0).all() and (p.sum(1) < 1.0 + 1e-6).all()


def test_checkpoint_round_trip_and_errors(tiny_dir, tmp_path):
    model, config = load_model(tiny_dir)
    assert config["info"] == {"test": True} and config["layouts"][ROBOT]["taxels"] == 1062
    x = torch.rand(2, 137)
    again = TactileAlignment(SMALL)
    again.load_state_dict(model.state_dict())
    assert torch.allclose(again.eval().convert(GLOVE, ROBOT, x), model.convert(GLOVE, ROBOT, x))
    with pytest.raises(TactileError, match="no tactile model"):
        load_model(tmp_path / "missing")
    (tmp_path / "config.json").write_text((tiny_dir / "config.json").read_text())
    with pytest.raises(TactileError, match="no weights"):
        load_model(tmp_path)
    cfg = json.loads((tiny_dir / "config.json").read_text())
    cfg["layouts"][GLOVE]["sha256"] = "0" * 64
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(TactileError, match="another version of layout"):
        load_model(tmp_path)


def test_aligner_checks_frames_and_converts(tiny_dir):
    aligner = Aligner.load(tiny_dir)
    latent, robot = aligner.align(GLOVE, np.full(137, 0.2, np.float32), ROBOT)
    assert latent.shape == (302,) and np.isclose(np.linalg.norm(latent), 1.0, atol=1e-5)
    assert robot.shape == (1062,) and 0 <= robot.min() and robot.max() <= 1
    assert aligner.align(ROBOT, np.zeros(1062), "")[1] is None
    bad = {"unknown_domain": ("glove_9000", np.zeros(137)),
           "wrong_size": (GLOVE, np.zeros(136)),
           "not_finite": (GLOVE, np.r_[np.zeros(136), np.nan]),
           "out_of_range": (GLOVE, np.r_[np.zeros(136), 1.5])}
    for reason, (domain, values) in bad.items():
        with pytest.raises(TactileError) as info:
            aligner.align(domain, values, ROBOT)
        assert info.value.reason == reason
    with pytest.raises(TactileError, match="unknown target domain"):
        aligner.align(GLOVE, np.zeros(137), "robot_hand_9")


@pytest.mark.skipif(not (DEFAULT_MODEL / "config.json").exists(), reason="no shipped model")
def test_shipped_model_converts_a_glove_frame_quickly():
    aligner = Aligner.load()
    assert {GLOVE, ROBOT} <= set(aligner.domains)
    x = np.random.default_rng(0).random(137).astype(np.float32) * 0.3
    times = []
    for _ in range(100):
        start = time.perf_counter()
        aligner.align(GLOVE, x, ROBOT)
        times.append(time.perf_counter() - start)
    assert np.median(times) < 0.005          # the model part of the 5 ms round trip


def test_evaluate_and_cli_write_the_metrics(tiny_dir, tmp_path):
    from embodied_transfer.app import tactile_commands as commands

    parser = argparse.ArgumentParser()
    commands.add_parsers(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["tactile", "evaluate", "--json", str(tmp_path / "m.json"),
                              "--png", str(tmp_path / "uv.png"), "--model", str(tiny_dir),
                              "--episodes", "16"])
    assert commands.run(args) == 0
    result = json.loads((tmp_path / "m.json").read_text())
    for key in ("retrieval_top1", "retrieval_top5", "retrieval_hold_top1", "retrieval_hold_top5",
                "reconstruction_error"):
        assert 0.0 <= result[key] <= 1.0
    assert set(result["transfer_accuracy"]) == {"none", "uv_direct", "patch_match", "aligned"}
    assert set(result["retrieval_repeat"]) == {GLOVE, ROBOT}
    assert (tmp_path / "uv.png").stat().st_size > 10_000
    from embodied_transfer.tactile.evaluate import retrieval_only   # the bench's sweep
    assert retrieval_only(tiny_dir, episodes=16) == {"top1": result["retrieval_top1"],
                                                     "top5": result["retrieval_top5"]}
    args = parser.parse_args(["tactile", "evaluate", "--json", str(tmp_path / "x.json"),
                              "--model", str(tmp_path / "nothing")])
    with pytest.raises(TactileError, match="no tactile model"):
        commands.run(args)


def test_pooled_latents_are_unit_means_of_their_groups():
    from embodied_transfer.tactile.evaluate import _pooled

    class Identity:                  # encode = the rows themselves, unit length
        unit_latent = True

        @staticmethod
        def encode(domain, x):
            return torch.nn.functional.normalize(x, dim=-1)

    x = np.array([[1, 0], [0, 1], [3, 0], [0, 2], [1, 1]], np.float32)
    groups = [np.array([0, 1]), np.array([2]), np.array([3, 4])]
    z = _pooled(Identity(), GLOVE, x, groups)
    s = np.sqrt(0.5)
    np.testing.assert_allclose(z, [[s, s], [1, 0], [np.sin(np.pi / 8), np.cos(np.pi / 8)]],
                               atol=1e-6)

    class Raw:                       # latents that are not unit vectors: plain means
        unit_latent = False

        @staticmethod
        def encode(domain, x):
            return x

    np.testing.assert_allclose(_pooled(Raw(), GLOVE, x, groups), [[0.5, 0.5], [3, 0], [0.5, 1.5]])


def test_repeat_retrieval_finds_a_devices_own_second_reading():
    from embodied_transfer.tactile.evaluate import repeat_retrieval

    held = paired_set(16, seed=5, domains=[GLOVE, ROBOT])
    middle = np.array([np.flatnonzero((held.episode == e) & held.holding).mean()
                       for e in range(16)]).astype(int)
    top1, top5 = repeat_retrieval(held, middle, ROBOT, seed=1)
    assert top1 >= 0.8 and top5 >= top1
    # before contact the readings are noise alone: nothing to tell the grasps apart by
    before = np.array([np.flatnonzero(held.episode == e)[0] for e in range(16)])
    assert held.envelope[before].max() < 0.05
    assert repeat_retrieval(held, before, ROBOT, seed=1)[0] < 0.5


def test_train_options_set_the_loss_weights_and_reject_bad_values(capsys):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--w-adv", "0", "--temperature", "0.03", "--paired-episodes",
                              "5000"])
    cfg = config_from_args(args)
    assert (cfg.w_adv, cfg.temperature, cfg.paired_episodes) == (0.0, 0.03, 5000)
    assert (cfg.w_con, cfg.w_rec) == (TrainConfig().w_con, TrainConfig().w_rec)
    assert given_options(args) == "--seed 0 --paired-episodes 5000 --w-adv 0.0 --temperature 0.03"
    assert config_from_args(parser.parse_args([])) == TrainConfig()
    for bad in (["--temperature", "0"], ["--w-adv", "-1"], ["--w-con", "nan"],
                ["--w-rec", "ten"]):
        with pytest.raises(SystemExit):
            parser.parse_args(bad)
        assert "must be a finite number" in capsys.readouterr().err


def test_cli_train_records_the_options_it_was_given(tmp_path):
    from embodied_transfer.app import tactile_commands as commands

    parser = argparse.ArgumentParser()
    commands.add_parsers(parser.add_subparsers(dest="command"))
    out = tmp_path / "m"
    args = parser.parse_args(["tactile", "train", "--out", str(out), "--quiet", "--seed", "3",
                              "--paired-episodes", "4", "--unpaired-episodes", "2",
                              "--stage1-steps", "2", "--stage2-steps", "2", "--w-adv", "0"])
    assert commands.run(args) == 0
    info = json.loads((out / "config.json").read_text())["info"]
    assert info["command"] == (f"embodied-transfer tactile train --out {out} --seed 3 "
                               "--stage1-steps 2 --stage2-steps 2 --paired-episodes 4 "
                               "--unpaired-episodes 2 --w-adv 0.0")
    assert info["train_config"]["w_adv"] == 0.0 and info["train_config"]["seed"] == 3


def test_alignment_check_flags_a_discriminator_that_wins(tmp_path, capsys):
    from embodied_transfer.core.plotting import Curves
    from embodied_transfer.tactile.train import alignment_check, train

    curves = Curves()
    for acc in [0.5] * 90 + [0.97] * 10:
        curves.add("stage2_alignment", disc_acc=acc)
    check = alignment_check(curves)
    assert check["disc_acc_by_tenth"] == [0.5] * 9 + [0.97]
    assert check["peak_disc_acc"] == check["final_disc_acc"] == 0.97 and check["collapsed"]
    curves.data["stage2_alignment"]["disc_acc"][-10:] = [0.55] * 10
    assert alignment_check(curves)["collapsed"] is False
    curves.data["stage2_alignment"]["disc_acc"][40:50] = [1.0] * 10     # won, then lost
    check = alignment_check(curves)
    assert check["collapsed"] and check["final_disc_acc"] == 0.55
    with pytest.raises(TactileError, match="no stage-2"):
        alignment_check(Curves())
    cfg = TrainConfig(paired_episodes=4, unpaired_episodes=2, stage1_steps=2, stage2_steps=10,
                      batch=16, unpaired_batch=8)
    result = train(tmp_path / "m", cfg, SMALL, show=False)
    info = json.loads((tmp_path / "m" / "config.json").read_text())
    assert info["info"]["alignment_check"] == result["alignment_check"]
    assert ("warning: the domain discriminator" in capsys.readouterr().err) \
        == result["alignment_check"]["collapsed"]
