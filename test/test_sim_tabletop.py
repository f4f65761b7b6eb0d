"""The tabletop grasping scene: camera model, scene sampling, rendering, ground-truth grasps
and grasp execution."""
from __future__ import annotations

import math
import os

os.environ.setdefault("MUJOCO_GL", "egl")   # before mujoco is imported (rendering off-screen)

import mujoco  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from embodied_transfer.grasp import scene_labels  # noqa: E402
from embodied_transfer.grasp.reasoning import CATEGORY_TEXT  # noqa: E402
from embodied_transfer.grasp.rectangles import Grasp  # noqa: E402
from embodied_transfer.sim import tabletop as tt  # noqa: E402
from embodied_transfer.sim import tabletop_camera as cam  # noqa: E402
from embodied_transfer.sim import tabletop_gripper as gripper  # noqa: E402
from embodied_transfer.sim import tabletop_labels as labels  # noqa: E402
from embodied_transfer.sim.errors import SimError  # noqa: E402
from embodied_transfer.sim.tabletop_looks import view_half_extents  # noqa: E402

#: One tilted camera over a floor; a red ball at a known place.
CAMERA_XML = """
<mujoco>
  <worldbody>
    <light pos="0 0 3" dir="0 0 -1" directional="true"/>
    <geom type="plane" size="5 5 0.1" rgba="0.2 0.2 0.2 1"/>
    {ball}
    <camera name="overhead" pos="0.05 -0.1 1.2" xyaxes="0.96 0.28 0 -0.28 0.96 0" fovy="50"/>
  </worldbody>
</mujoco>
"""
BALL = '<geom type="sphere" size="0.02" pos="0.2 0.1 0.1" rgba="1 0 0 1"/>'


@pytest.fixture(scope="module")
def scene_seven():
    """A built five-object scene and its rendered sample (shared: rendering is slow on CPU)."""
    sample = scene_labels.sample_scene(7, n_objects=5)
    model = tt.build_model(sample.scene)
    return sample, model


# -- the camera model, on a tiny model ----------------------------------------------------------


def test_intrinsics_come_from_fovy_with_the_principal_point_at_the_centre():
    model = mujoco.MjModel.from_xml_string(CAMERA_XML.format(ball=""))
    k = cam.camera_intrinsics(model, 320, 240)
    f = 120 / math.tan(math.radians(25))
    assert k == pytest.approx((f, f, 160.0, 120.0))
    assert k.fx == k[0] and k.cy == k[3]


def test_pixel_world_round_trip_and_optical_frame_axes():
    model = mujoco.MjModel.from_xml_string(CAMERA_XML.format(ball=""))
    k = cam.camera_intrinsics(model, 320, 240)
    rng = np.random.default_rng(0)
    u, v, depth = rng.uniform(0, 320, 50), rng.uniform(0, 240, 50), rng.uniform(0.2, 2.0, 50)
    points = cam.pixel_to_world(u, v, depth, k, model)
    u2, v2, d2 = cam.world_to_pixel(points, k, model)
    np.testing.assert_allclose(np.stack([u2, v2, d2]), np.stack([u, v, depth]), atol=1e-9)
    # REP-105 optical frame: z forward (down here), x right (camera +x), y down (camera -y)
    centre = cam.pixel_to_world(160.0, 120.0, 1.0, k, model)
    np.testing.assert_allclose(centre, [0.05, -0.1, 0.2], atol=1e-9)
    right = cam.pixel_to_world(260.0, 120.0, 1.0, k, model) - centre
    down = cam.pixel_to_world(160.0, 220.0, 1.0, k, model) - centre
    np.testing.assert_allclose(right / np.linalg.norm(right), [0.96, 0.28, 0], atol=1e-3)
    np.testing.assert_allclose(down / np.linalg.norm(down), [0.28, -0.96, 0], atol=1e-3)
    with pytest.raises(SimError, match="behind the camera"):
        cam.world_to_pixel(np.array([0.0, 0.0, 2.0]), k, model)


def test_rendered_pixels_and_depth_follow_the_camera_model():
    model = mujoco.MjModel.from_xml_string(CAMERA_XML.format(ball=BALL))
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    rgb, depth = cam.render(model, data, 320, 240)
    assert rgb.shape == (240, 320, 3) and rgb.dtype == np.uint8
    assert depth.shape == (240, 320) and depth.dtype == np.float32
    k = cam.camera_intrinsics(model, 320, 240)
    rows, cols = np.nonzero((rgb[..., 0] > 150) & (rgb[..., 1] < 80))
    u, v, z = cam.world_to_pixel(np.array([0.2, 0.1, 0.1]), k, model)
    assert abs(cols.mean() + 0.5 - u) < 0.7 and abs(rows.mean() + 0.5 - v) < 0.7
    # depth along the optical axis: the ball's nearest point, and the flat floor 1.2 m away
    assert depth[rows, cols].min() == pytest.approx(z - 0.02, abs=3e-3)
    floor = cam.pixel_to_world(np.arange(320) + 0.5, np.full(320, 5.5), depth[5], k, model)
    np.testing.assert_allclose(floor[:, 2], 0.0, atol=2e-3)


# -- scenes ---------------------------------------------------------------------------------------


def test_scenes_have_distinct_colour_category_pairs_inside_the_view():
    half_x, half_y = view_half_extents(45.0, tt.CAM_HEIGHT)
    for seed in range(40):
        rng = np.random.default_rng(seed)
        scene = tt.TabletopScene.sample(rng, int(rng.integers(1, tt.MAX_OBJECTS + 1)))
        pairs = [(o.colour, o.category) for o in scene.objects]
        assert len(set(pairs)) == len(pairs)
        assert all(o.category in CATEGORY_TEXT and o.colour in tt.PALETTE for o in scene.objects)
        for i, a in enumerate(scene.objects):
            assert abs(a.x) + a.footprint < half_x and abs(a.y) + a.footprint < half_y
            for b in scene.objects[i + 1:]:
                assert math.hypot(a.x - b.x, a.y - b.y) >= a.footprint + b.footprint


def test_build_model_adds_named_free_bodies():
    scene = tt.TabletopScene.sample(np.random.default_rng(3), 4)
    model = tt.build_model(scene)
    assert tt.object_names(model) == [o.name for o in scene.objects]
    for obj in scene.objects:
        body = model.body(obj.name)
        assert body.mass[0] == pytest.approx(obj.mass)
        assert model.jnt_type[body.jntadr[0]] == mujoco.mjtJoint.mjJNT_FREE
    data = mujoco.MjData(model)
    gripper.reset(model, data)
    for obj in scene.objects:     # each object rests on the table where the scene put it
        np.testing.assert_allclose(data.body(obj.name).xpos, [obj.x, obj.y, tt.TABLE_TOP],
                                   atol=1e-9)


def test_same_seed_same_scene_and_image(scene_seven):
    sample, _ = scene_seven
    again = scene_labels.sample_scene(7, n_objects=5)
    assert again.scene == sample.scene
    np.testing.assert_array_equal(again.rgb, sample.rgb)
    np.testing.assert_array_equal(again.depth, sample.depth)
    assert again.objects == sample.objects and again.grasps == sample.grasps
    assert tt.TabletopScene.sample(np.random.default_rng(8), 5) != sample.scene
    assert sample.rgb.shape == (240, 320, 3) and sample.depth.shape == (240, 320)
    # every object stands out from the table in depth (a mug's or bowl's base by 6 mm)
    table_depth = 0.75
    assert sample.depth.max() == pytest.approx(table_depth, abs=2e-3)
    for info in sample.objects:
        assert sample.depth[int(info.v), int(info.u)] < table_depth - 0.005


def test_ground_truth_rectangles_lie_on_their_objects(scene_seven):
    sample, model = scene_seven
    k = sample.intrinsics
    assert set(sample.grasps) == {o.name for o in sample.scene.objects}
    infos = {info.name: info for info in sample.objects}
    for obj in sample.scene.objects:
        grasps = sample.grasps[obj.name]
        assert len(grasps) >= 3
        info = infos[obj.name]
        assert (info.category, info.colour) == (obj.category, obj.colour)
        # object radius in pixels at its top (the closest, largest scale)
        radius_px = obj.footprint * k.fx / (tt.CAM_HEIGHT - obj.height)
        for g in grasps:
            assert isinstance(g, Grasp) and g.inside(320, 240)
            assert all(g.inside(320, 240) for g in [Grasp(*c, 0.0, 1.0) for c in g.corners()])
            assert math.hypot(g.x - info.u, g.y - info.v) <= radius_px + 1.0
        for wg, g in zip(labels.world_grasps(obj), grasps):
            assert wg.opening <= labels.MAX_GRASP_OPENING
            distance = tt.TABLE_TOP + tt.CAM_HEIGHT - wg.image_plane
            assert g.width == pytest.approx(wg.opening * k.fx / distance, rel=1e-6)
            assert g.theta == pytest.approx(-wg.yaw, abs=1e-9) or \
                abs(abs(g.theta + wg.yaw) - math.pi) < 1e-9    # image v is world -y here


def test_image_grasp_back_to_the_world_grasp(scene_seven):
    sample, model = scene_seven
    for obj in sample.scene.objects:
        for wg, g in zip(labels.world_grasps(obj), sample.grasps[obj.name]):
            back = scene_labels.grasp_from_image(g, sample.depth, sample.intrinsics, model)
            assert math.hypot(back.x - wg.x, back.y - wg.y) < 0.01
            assert back.opening == pytest.approx(wg.opening, abs=0.003)
            assert abs(math.remainder(back.yaw - wg.yaw, math.pi)) < 1e-6
            assert back.z >= tt.TABLE_TOP + labels.MIN_GRASP_Z - 1e-9


# -- executing grasps ------------------------------------------------------------------------------


def _first(scene: tt.TabletopScene, category: str) -> tt.ObjectSpec | None:
    return next((o for o in scene.objects if o.category == category), None)


def test_ground_truth_grasps_lift_their_targets():
    rng = np.random.default_rng(11)
    wanted = {"box": 0, "mug": -1, "bowl": 0, "sphere": 1}    # -1: the mug's handle grasp
    found = {}
    while len(found) < len(wanted):
        scene = tt.TabletopScene.sample(rng, 5)
        for category in wanted:
            obj = _first(scene, category)
            if obj is not None and category not in found:
                found[category] = (scene, obj)
    for category, (scene, obj) in found.items():
        model = tt.build_model(scene)
        data = mujoco.MjData(model)
        gripper.reset(model, data)
        outcome = gripper.execute_grasp(model, data, labels.world_grasps(obj)[wanted[category]],
                                        obj.name)
        assert outcome.success, (category, outcome)
        assert outcome.lifted == obj.name and outcome.lift_height > gripper.LIFT_SUCCESS


def test_execution_is_deterministic_and_reset_puts_the_scene_back(scene_seven):
    sample, model = scene_seven
    obj = sample.scene.objects[0]
    grasp = labels.world_grasps(obj)[0]
    data = mujoco.MjData(model)
    gripper.reset(model, data)
    start = data.qpos.copy()
    first = gripper.execute_grasp(model, data, grasp, obj.name)
    after = data.qpos.copy()
    gripper.reset(model, data)
    np.testing.assert_array_equal(data.qpos, start)
    assert gripper.execute_grasp(model, data, grasp, obj.name) == first
    np.testing.assert_array_equal(data.qpos, after)


def test_a_predicted_image_grasp_executes(scene_seven):
    sample, model = scene_seven
    obj = sample.scene.objects[1]
    world = scene_labels.grasp_from_image(sample.grasps[obj.name][0], sample.depth,
                                          sample.intrinsics, model)
    data = mujoco.MjData(model)
    gripper.reset(model, data)
    assert gripper.execute_grasp(model, data, world, None).lifted == obj.name


def test_grasps_in_empty_space_or_on_another_object_fail(scene_seven):
    sample, model = scene_seven
    data = mujoco.MjData(model)
    # a point of the table far from every object
    xy = max(((x, y) for x in np.linspace(-0.3, 0.3, 13) for y in np.linspace(-0.2, 0.2, 9)),
             key=lambda p: min(math.hypot(p[0] - o.x, p[1] - o.y) - o.footprint
                               for o in sample.scene.objects))
    gripper.reset(model, data)
    empty = gripper.execute_grasp(model, data,
                                  labels.WorldGrasp(*xy, tt.TABLE_TOP + 0.03, 0.3, 0.06))
    assert not empty.success and empty.lifted is None and "nothing" in empty.reason
    a, b = sample.scene.objects[:2]
    gripper.reset(model, data)
    wrong = gripper.execute_grasp(model, data, labels.world_grasps(a)[0], b.name)
    assert not wrong.success and wrong.lifted == a.name and "not the target" in wrong.reason


# -- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [0, tt.MAX_OBJECTS + 1, 2.5, True, -1])
def test_bad_object_counts_are_rejected(n):
    with pytest.raises(SimError, match=r"n_objects must be an integer in 1\.\.5"):
        tt.TabletopScene.sample(np.random.default_rng(0), n)


@pytest.mark.parametrize("width, height", [(0, 240), (320, -1), (320.0, 240)])
def test_bad_image_sizes_are_rejected(width, height):
    model = mujoco.MjModel.from_xml_string(CAMERA_XML.format(ball=""))
    with pytest.raises(SimError, match="width and height must be positive integers"):
        cam.camera_intrinsics(model, width, height)
    with pytest.raises(SimError, match="width and height must be positive integers"):
        scene_labels.sample_scene(0, 1, width, height)


def test_other_bad_input_is_rejected(scene_seven):
    sample, model = scene_seven
    data = mujoco.MjData(model)
    with pytest.raises(SimError, match="no object 'green_teapot'"):
        gripper.execute_grasp(model, data, labels.WorldGrasp(0, 0, 0.8, 0, 0.05), "green_teapot")
    with pytest.raises(SimError, match="outside the gripper's workspace"):
        gripper.execute_grasp(model, data, labels.WorldGrasp(0.9, 0, 0.8, 0, 0.05))
    with pytest.raises(SimError, match="opening and jaw must be > 0"):
        labels.WorldGrasp(0, 0, 0.8, 0, 0.0)
    with pytest.raises(SimError, match="unknown category 'teapot'"):
        tt.ObjectSpec("red_teapot", "teapot", "red", tt.PALETTE["red"], (0.05,), 0.2)
    with pytest.raises(SimError, match="a box needs 3 positive sizes"):
        tt.ObjectSpec("red_box", "box", "red", tt.PALETTE["red"], (0.05, 0.02), 0.2)
    with pytest.raises(SimError, match="no camera 'side'"):
        cam.camera_intrinsics(model, 320, 240, camera="side")
    with pytest.raises(SimError, match="exceeds the model's off-screen buffer"):
        cam.render(model, data, 4000, 3000)
    with pytest.raises(SimError, match="depth must be an"):
        scene_labels.grasp_from_image(Grasp(10, 10, 0, 5), np.zeros(5), sample.intrinsics, model)
