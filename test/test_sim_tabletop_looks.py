"""Domain randomisation of the tabletop (:mod:`embodied_transfer.sim.tabletop_looks`): a look
changes the picture, never the scene or its labels."""
from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")   # before mujoco is imported (rendering off-screen)

import mujoco  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from embodied_transfer.grasp import scene_labels  # noqa: E402
from embodied_transfer.grasp.tabletop_task import LiveTabletop, scene_seed  # noqa: E402
from embodied_transfer.sim import tabletop as tt  # noqa: E402
from embodied_transfer.sim.errors import SimError  # noqa: E402
from embodied_transfer.sim.tabletop_camera import render  # noqa: E402
from embodied_transfer.sim.tabletop_gripper import reset  # noqa: E402
from embodied_transfer.sim.tabletop_looks import (SIZES, Distractor, Look,  # noqa: E402
                                                  view_half_extents)


def _render(scene, look=None, size=(160, 120)):
    model = tt.build_model(scene, look=look)
    data = mujoco.MjData(model)
    reset(model, data)
    return model, data, render(model, data, *size)


def test_the_nominal_look_is_the_xml_scene():
    scene = tt.TabletopScene.sample(np.random.default_rng(2), 3)
    _, _, (rgb, depth) = _render(scene)
    _, _, (rgb_look, depth_look) = _render(scene, Look())
    assert Look().nominal
    np.testing.assert_array_equal(rgb, rgb_look)
    np.testing.assert_array_equal(depth, depth_look)


def test_same_seed_same_look_and_looks_vary_within_their_ranges():
    looks = [Look.sample(np.random.default_rng(s), 3) for s in range(30)]
    assert Look.sample(np.random.default_rng(4), 3) == looks[4]
    assert len({look.table_texture for look in looks}) == 3
    assert len({look.shadows for look in looks}) == 2
    assert any(look.distractors for look in looks) and any(not look.distractors for look in looks)
    heights = [look.cam_height for look in looks]
    assert 0.55 <= min(heights) < 0.7 and 0.85 < max(heights) <= 1.0
    for look in looks:
        half_y = view_half_extents(look.fovy, look.cam_height)[1]
        assert 0.24 <= half_y <= 0.45 and len(look.shades) == 3 and not look.nominal


def test_a_look_changes_the_picture_but_not_the_physics():
    scene = tt.TabletopScene.sample(np.random.default_rng(5), 2)
    sheet = Distractor("sheet", 0.0, 0.0, 0.3, 0.1, 0.07, 0.002, (0.2, 0.3, 0.9))
    look = Look(sun=0.3, table_rgb=(0.9, 0.9, 0.9), table_texture="grain", shadows=False,
                distractors=(sheet,))
    model, data, (rgb, _) = _render(scene, look)
    nominal_model, nominal_data, (nominal_rgb, _) = _render(scene)
    assert np.abs(rgb.astype(int) - nominal_rgb).mean() > 10
    sheet = model.geom("distractor_0")
    assert sheet.contype[0] == 0 and sheet.conaffinity[0] == 0
    for name in tt.object_names(model):       # the objects settle where they did
        np.testing.assert_allclose(data.body(name).xpos, nominal_data.body(name).xpos, atol=1e-6)


@pytest.mark.parametrize("index", range(6))
def test_randomised_scenes_keep_objects_and_labels_in_view(index):
    seed = scene_seed(11, index)
    s = scene_labels.sample_scene(seed, randomise=True)
    h, w = s.depth.shape
    assert (w, h) in SIZES and s.rgb.shape == (h, w, 3)
    plain = scene_labels.sample_scene(seed)
    assert len(s.scene.objects) == len(plain.scene.objects)     # the same draw of a count
    for info in s.objects:
        assert 0 <= info.u < w and 0 <= info.v < h
    table = np.median(s.depth)
    centres = [(g.x, g.y) for gs in s.grasps.values() for g in gs]
    assert centres and all(0 <= x < w and 0 <= y < h for x, y in centres)
    # the labels sit on their objects: nearer to the camera than the table is
    above = [s.depth[int(y), int(x)] < table - 0.01 for x, y in centres]
    assert np.mean(above) > 0.8


def test_live_task_scenes_follow_the_randomise_switch():
    plain, random = LiveTabletop(3, 160, 120), LiveTabletop(3, 160, 120, randomise=True)
    assert len(plain.scene.objects) == len(random.scene.objects)
    assert plain.model.cam_fovy[0] == 45.0 and random.model.cam_fovy[0] != 45.0


def test_bad_looks_are_refused():
    with pytest.raises(SimError, match="texture"):
        Look(table_texture="marble")
    with pytest.raises(SimError, match="camera height"):
        Look(cam_height=5.0)
    with pytest.raises(SimError, match="shine down"):
        Look(sun_dir=(0.0, 0.0, 1.0))
    with pytest.raises(SimError, match="distractor"):
        Distractor("cube", 0, 0, 0, 0.1, 0.1, 0.01, (1, 1, 1))
