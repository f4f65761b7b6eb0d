"""Controller-ready grasps: image rectangle → Grasp3D (optical frame) → TF → gripper (pure)."""
from __future__ import annotations

import math

import mujoco
import numpy as np
import pytest

from embodied_transfer.core.geometry import matrix_from_quaternion, quaternion_from_matrix
from embodied_transfer.grasp.errors import GraspError
from embodied_transfer.grasp.geometry import Grasp3D, grasp_3d
from embodied_transfer.grasp.rectangles import Grasp
from embodied_transfer.sim.errors import SimError
from embodied_transfer.sim.tabletop import TABLE_TOP
from embodied_transfer.sim.tabletop_labels import MIN_GRASP_Z
from embodied_transfer.sim.tabletop_gripper import world_grasp_from_pose


def random_rotation(rng) -> np.ndarray:
    q = rng.normal(size=4)
    m = np.zeros(9)
    mujoco.mju_quat2Mat(m, q / np.linalg.norm(q))          # mujoco: (w, x, y, z)
    return m.reshape(3, 3)


def test_quaternions_agree_with_mujoco():
    rng = np.random.default_rng(0)
    for _ in range(500):
        rot = random_rotation(rng)
        x, y, z, w = quaternion_from_matrix(rot)
        back = np.zeros(9)
        mujoco.mju_quat2Mat(back, np.array([w, x, y, z]))
        np.testing.assert_allclose(back.reshape(3, 3), rot, atol=1e-9)
        np.testing.assert_allclose(matrix_from_quaternion((x, y, z, w)), rot, atol=1e-9)
        assert w >= 0
    for flip in (np.diag([1.0, -1, -1]), np.diag([-1.0, 1, -1]), np.diag([-1.0, -1, 1])):
        np.testing.assert_allclose(matrix_from_quaternion(quaternion_from_matrix(flip)), flip,
                                   atol=1e-12)
    with pytest.raises(ValueError, match="not a rotation"):
        quaternion_from_matrix(np.diag([1.0, 1, -1]))
    with pytest.raises(ValueError, match="zero"):
        matrix_from_quaternion((0.0, 0.0, 0.0, 0.0))


K = np.array([[100.0, 0.0, 40.0], [0.0, 120.0, 30.0], [0.0, 0.0, 1.0]])   # fx != fy


def depth_scene() -> np.ndarray:
    depth = np.full((60, 80), 0.75, np.float32)       # the table
    depth[20:40, 30:50] = 0.70                        # a box, 5 cm high
    depth[0:5, 0:5] = np.nan                          # a hole
    return depth


def test_a_rectangle_reads_the_pixels_it_covers_and_clips_at_the_edges():
    rows, cols = Grasp(5.5, 2.5, 0.0, 4.0, 2.0).sample_pixels(10, 20)
    assert len(rows) == len(cols) == 55
    assert (cols.min(), cols.max(), rows.min(), rows.max()) == (3, 7, 1, 3)
    rows, cols = Grasp(0.5, 9.5, math.pi / 2, 6.0, 1.0).sample_pixels(10, 20)
    assert rows.min() == 6 and rows.max() == 9 and cols.min() == 0   # clipped at the bottom


def test_grasp_3d_lies_on_the_nearest_surface_with_documented_axes():
    g = grasp_3d(Grasp(40.0, 30.0, math.radians(30), 30.0, 10.0), depth_scene(), K,
                 grasp_depth=0.02, standoff=0.12, score=0.8)
    approach, closing = g.approach, g.closing
    np.testing.assert_allclose(approach, [0, 0, 1], atol=1e-12)
    np.testing.assert_allclose(g.rotation.T @ g.rotation, np.eye(3), atol=1e-12)
    assert np.linalg.det(g.rotation) == pytest.approx(1.0)
    # the closing axis is the rectangle's, through the intrinsics (fx != fy)
    expected = np.array([math.cos(math.radians(30)) / 100, math.sin(math.radians(30)) / 120, 0])
    np.testing.assert_allclose(closing, expected / np.linalg.norm(expected), atol=1e-12)
    np.testing.assert_allclose(g.position, [0.0, 0.0, 0.72], atol=1e-7)   # box top + 2 cm
    half = 15.0 * np.array([math.cos(math.radians(30)) / 100, math.sin(math.radians(30)) / 120])
    assert g.width == pytest.approx(2 * 0.70 * np.linalg.norm(half))
    np.testing.assert_allclose(g.pre_grasp, [0.0, 0.0, 0.60], atol=1e-7)
    assert (g.standoff, g.score) == (0.12, pytest.approx(0.8))
    np.testing.assert_allclose(matrix_from_quaternion(g.orientation), g.rotation, atol=1e-12)
    # on the bare table
    table = grasp_3d(Grasp(10.0, 50.0, 0.0, 8.0, 4.0), depth_scene(), K)
    assert table.position[2] == pytest.approx(0.77) and table.width == pytest.approx(0.06)


def test_grasp_3d_refuses_what_it_cannot_place():
    with pytest.raises(GraspError, match="no valid depth"):
        grasp_3d(Grasp(2.0, 2.0, 0.0, 2.0, 2.0), depth_scene(), K)
    with pytest.raises(GraspError, match="outside"):
        grasp_3d(Grasp(90.0, 2.0, 0.0, 2.0, 2.0), depth_scene(), K)
    with pytest.raises(GraspError, match="standoff"):
        grasp_3d(Grasp(40.0, 30.0, 0.0, 20.0, 5.0), depth_scene(), K, standoff=-0.1)
    with pytest.raises(GraspError, match="focal"):
        grasp_3d(Grasp(40.0, 30.0, 0.0, 20.0, 5.0), depth_scene(), np.zeros((3, 3)))


def test_transformed_grasp_keeps_its_geometry():
    rng = np.random.default_rng(1)
    g = grasp_3d(Grasp(40.0, 30.0, 0.4, 20.0, 5.0), depth_scene(), K)
    rot, trans = random_rotation(rng), rng.normal(size=3)
    moved = g.transformed(rot, trans)
    np.testing.assert_allclose(moved.position, rot @ g.position + trans)
    np.testing.assert_allclose(moved.pre_grasp, rot @ g.pre_grasp + trans)
    np.testing.assert_allclose(moved.approach, rot @ g.approach)
    assert (moved.width, moved.standoff) == (g.width, g.standoff)


def test_world_grasp_needs_a_top_down_approach():
    down, closing = np.array([0.0, 0.0, -1.0]), np.array([0.0, 1.0, 0.0])
    w = world_grasp_from_pose([0.1, 0.2, TABLE_TOP + 0.05], down, closing, 0.04)
    assert (w.x, w.y, w.z, w.opening) == (0.1, 0.2, pytest.approx(TABLE_TOP + 0.05), 0.04)
    assert w.yaw == pytest.approx(math.pi / 2)
    tilted = np.array([math.sin(math.radians(15)), 0.0, -math.cos(math.radians(15))])
    assert world_grasp_from_pose([0, 0, TABLE_TOP + 0.05], tilted, closing, 0.04).yaw == \
        pytest.approx(math.pi / 2)
    too_far = np.array([math.sin(math.radians(30)), 0.0, -math.cos(math.radians(30))])
    with pytest.raises(SimError, match="top-down"):
        world_grasp_from_pose([0, 0, TABLE_TOP + 0.05], too_far, closing, 0.04)
    with pytest.raises(SimError, match="vertical"):
        world_grasp_from_pose([0, 0, TABLE_TOP + 0.05], down, down, 0.04)
    with pytest.raises(SimError, match="opening"):
        world_grasp_from_pose([0, 0, TABLE_TOP + 0.05], down, closing, 0.0)
    low = world_grasp_from_pose([0, 0, TABLE_TOP - 0.1], down, closing, 0.04)
    assert low.z == pytest.approx(TABLE_TOP + MIN_GRASP_Z)       # kept off the table


@pytest.mark.parametrize("randomise", [False, True])
def test_3d_path_matches_the_image_path_and_lifts(randomise):
    """True image grasp → Grasp3D (optical) → world through the camera's frames → the same
    world grasp as the depth-image path, and the gripper lifts the object with it."""
    from embodied_transfer.grasp.scene_labels import grasp_from_image
    from embodied_transfer.grasp.tabletop_task import LiveTabletop
    from embodied_transfer.sim.tabletop_camera import OPTICAL_IN_LINK

    task = LiveTabletop(5, randomise=randomise)
    obs = task.observe()
    k = np.array([[obs.intrinsics.fx, 0, obs.intrinsics.cx],
                  [0, obs.intrinsics.fy, obs.intrinsics.cy], [0, 0, 1]])
    rect = task.true_grasps()[task.target.name][0]
    pos, link = task.camera_link_pose()
    world = grasp_3d(rect, obs.depth, k).transformed(link @ OPTICAL_IN_LINK, pos)
    a = world_grasp_from_pose(world.position, world.approach, world.closing, world.width)
    b = grasp_from_image(rect, obs.depth, obs.intrinsics, task.model)
    np.testing.assert_allclose(a.centre, b.centre, atol=1e-4)
    assert a.opening == pytest.approx(b.opening, abs=1e-4)
    assert math.cos(2 * (a.yaw - b.yaw)) == pytest.approx(1.0, abs=1e-6)
    outcome = task.execute_3d(world)
    assert outcome.success and outcome.lifted == task.target.name, outcome.reason


def test_grasp3d_is_a_plain_value():
    g = Grasp3D(np.zeros(3), np.eye(3), 0.05, 0.1)
    assert math.isnan(g.score) and g.orientation == (0.0, 0.0, 0.0, 1.0)


def test_grasp_3d_messages_round_trip_and_bad_ones_are_refused():
    from embodied_transfer.ros.conversions import ConversionError, make_header
    from embodied_transfer.ros.grasp_msgs import grasp_3d_to_msg, msg_to_grasp_3d

    g = grasp_3d(Grasp(40.0, 30.0, 0.4, 20.0, 5.0), depth_scene(), K, score=0.5)
    msg = grasp_3d_to_msg(g, make_header(7, "cam_optical_frame"))
    back = msg_to_grasp_3d(msg)
    np.testing.assert_allclose(back.position, g.position)
    np.testing.assert_allclose(back.rotation, g.rotation, atol=1e-12)
    assert (back.width, back.standoff, back.score) == (g.width, g.standoff, 0.5)

    def broken(**change):
        bad = grasp_3d_to_msg(g, make_header(7, "cam_optical_frame"))
        for key, value in change.items():
            if key == "frame":
                bad.header.frame_id = value
            elif key == "x":
                bad.pose.position.x = value
            elif key == "qw":
                bad.pose.orientation.w = value
            else:
                setattr(bad, key, value)
        return bad

    for change, reason in (({"frame": ""}, "frame_id"), ({"x": float("nan")}, "not finite"),
                           ({"qw": 3.0}, "unit quaternion"), ({"width": 0.0}, "width"),
                           ({"width": float("nan")}, "width"), ({"standoff": -1.0}, "standoff")):
        with pytest.raises(ConversionError, match=reason):
            msg_to_grasp_3d(broken(**change))
