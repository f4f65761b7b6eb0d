"""The Shadow Hand layout, training on physical contacts, their evaluation and the
transfer-of-skill measure, on tiny sets (what the numbers are is the bench's job)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from embodied_transfer.tactile.errors import TactileError
from embodied_transfer.tactile.layouts import GLOVE, SHADOW, SHADOW_GRID, load_layout
from embodied_transfer.tactile.surface import segments


@pytest.fixture(scope="module")
def physical_model(tmp_path_factory):
    from embodied_transfer.tactile.train import train, TrainConfig

    out = tmp_path_factory.mktemp("tactile_shadow")
    train(out, TrainConfig(source="mujoco", paired_episodes=16), show=False)
    return out


def test_shadow_layout_puts_each_touch_site_on_its_phalanx():
    from embodied_transfer.tactile.physical import palmar_sensors

    lay = load_layout(SHADOW)
    _, names = palmar_sensors()
    assert lay.size == len(names) == 62
    seg = [segments()[i].name for i in lay.segment]
    for name, where, (s, t) in zip(names, seg, lay.st):
        finger = {"ff": "index", "mf": "middle", "rf": "ring", "lf": "little"}.get(name[:2])
        if name.startswith(("palm", "thproximal", "lfmetacarpal")):
            assert where == "palm", name
        elif name.startswith("th"):
            assert where.startswith("thumb_"), name
        else:
            assert where.startswith(f"{finger}_"), name
        if name.endswith("_tip") and where != "palm":   # the sphere at the phalanx's end
            assert (s, t) == (0.5, 1.0)
    assert 20 < lay.area.min() and lay.area.max() < 3000          # mm², 5-50 mm across


def test_touch_grid_bins_light_where_the_layout_puts_them():
    """Each grid's force-weighted place on the hand (from the layout) follows the contacts
    the simulation reports on that body in the same frame (placed by contact_st)."""
    from embodied_transfer.sim.hand_grasp import simulate_grasp
    from embodied_transfer.sim.shadow_hand import TOUCH_GRIDS
    from embodied_transfer.tactile.physical import contact_st

    lay = load_layout(SHADOW_GRID)
    assert lay.size == sum(g.size for g in TOUCH_GRIDS) == 600
    ep = simulate_grasp(4, seed=2, touch_grids=True)           # a thin cylinder
    start, checked = np.cumsum([0] + [g.size for g in TOUCH_GRIDS]), 0
    for k in range(20, 60, 5):
        for i, g in enumerate(TOUCH_GRIDS):
            force = ep.grid[k, start[i]:start[i + 1]]
            on = (ep.contact_frame == k) & (ep.contact_body == g.body)
            places = [contact_st(g.body, p) for p in ep.contact_point[on]]
            weights = [f for f, p in zip(ep.contact_force[on], places) if p is not None]
            places = [p for p in places if p is not None]
            if force.sum() < 0.05 or not places or g.body == "palm":
                continue
            seen = (lay.st[start[i]:start[i + 1]] * force[:, None]).sum(0) / force.sum()
            true = np.average([p[1:] for p in places], axis=0, weights=weights)
            assert np.abs(seen - true).max() < 0.25, (g.body, k, seen, true)
            checked += 1
    assert checked >= 5


def test_training_on_physical_contacts_writes_a_glove_shadow_checkpoint(physical_model):
    from embodied_transfer.tactile.models import Aligner

    aligner = Aligner.load(physical_model)
    assert aligner.domains == [GLOVE, SHADOW_GRID]
    info = json.loads((physical_model / "config.json").read_text())["info"]
    assert info["train_config"]["source"] == "mujoco"
    assert info["data"]["paired_frames"] == 16 * 80 and info["data"]["unpaired_frames"] == {}
    _, robot = aligner.align(GLOVE, np.full(137, 0.2), SHADOW_GRID)
    assert robot.shape == (600,)
    with pytest.raises(TactileError, match="has 600 taxels, got 62"):
        aligner.align(SHADOW_GRID, np.zeros(62))


def test_a_source_must_match_its_domains():
    from embodied_transfer.tactile.physical import physical_paired_set
    from embodied_transfer.tactile.train import TrainConfig, make_data, model_config_for

    with pytest.raises(TactileError, match="unknown data source 'kinect'"):
        model_config_for("kinect")
    with pytest.raises(TactileError, match="for source mujoco only"):
        model_config_for("patches", robot=SHADOW)
    with pytest.raises(TactileError, match="unknown Shadow Hand layout"):
        physical_paired_set(1, robot="robot_hand_1062")
    with pytest.raises(TactileError, match="source mujoco does not pair glove_137 with one"):
        make_data(TrainConfig(source="mujoco", paired_episodes=1), [GLOVE, "robot_hand_1062"])


def test_physical_evaluation_reports_retrieval_against_its_ceiling(physical_model):
    from embodied_transfer.tactile.transfer import evaluate_physical

    r = evaluate_physical(physical_model, episodes=8, classifier_episodes=8)
    assert set(r["transfer_accuracy"]) == {"aligned", "uv_direct", "patch_match", "none"}
    assert all(0.0 <= v <= 1.0 for v in r["transfer_accuracy"].values())
    assert 0 < r["retrieval_gallery"] <= 8 and 0.0 < r["retrieval_ceiling"] <= 1.0
    assert r["retrieval_ceiling_ratio"] == pytest.approx(r["retrieval_top1"]
                                                         / r["retrieval_ceiling"])


def test_skill_scores_every_input_on_the_same_trials(physical_model):
    from embodied_transfer.tactile.transfer import skill

    r = skill(physical_model, trials=16, train_episodes=16)
    assert set(r["success"]) == {"aligned", "uv_direct", "patch_match", "none", "robot_trained"}
    assert r["trials"] + r["grasps_without_hold"] == 16
    # without touch the policy picks one bin: right for that class's share of the trials
    assert r["success"]["none"] in {k / r["trials"] for k in range(3)}
    assert r["success"]["robot_trained"] > r["success"]["none"]
    # one grasp of a small sphere, and it is never held: a clear error, not NaN rates
    with pytest.raises(TactileError, match="held its object in any frame"):
        skill(physical_model, trials=1, train_episodes=16, seed=7)


def test_a_model_without_the_shadow_hand_is_refused_by_name(tmp_path):
    from embodied_transfer.tactile.transfer import load_physical

    with pytest.raises(TactileError, match="does not pair glove_137 with one Shadow Hand "
                                           "layout .*--source mujoco"):
        load_physical(_patches_model(tmp_path))
    with pytest.raises(TactileError, match="tactile model"):
        load_physical(tmp_path / "nowhere")


def _patches_model(tmp_path):
    from embodied_transfer.tactile.data import paired_set
    from embodied_transfer.tactile.models import ModelConfig, save_model
    from embodied_transfer.tactile.train import TrainConfig, train_model

    model = train_model(paired_set(4, seed=0), {}, TrainConfig(), ModelConfig(), show=False)
    return save_model(model, tmp_path / "patches")
