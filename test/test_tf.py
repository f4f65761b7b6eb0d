"""The package's TF helpers: the pure tree, message round trips, a latched /tf_static."""
from __future__ import annotations

import math

import numpy as np
import pytest

from embodied_transfer.ros.tf import Transform, TransformError, TransformTree


def rot_z(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def tree() -> TransformTree:
    t = TransformTree()
    t.set(Transform("world", "base", rot_z(math.pi / 2), np.array([1.0, 0.0, 0.0])))
    t.set(Transform("base", "camera", np.eye(3), np.array([0.0, 0.0, 2.0])))
    t.set(Transform("world", "table", np.eye(3), np.array([0.0, 3.0, 0.0])))
    return t


def test_lookups_follow_the_tree_both_ways():
    t = tree()
    rot, trans = t.lookup("world", "camera")
    np.testing.assert_allclose(rot @ [1.0, 0, 0] + trans, [1.0, 1.0, 2.0], atol=1e-12)
    rot, trans = t.lookup("camera", "world")          # the inverse
    np.testing.assert_allclose(rot @ [1.0, 1.0, 2.0] + trans, [1.0, 0, 0], atol=1e-12)
    rot, trans = t.lookup("table", "camera")          # through the common root
    np.testing.assert_allclose(rot @ [0.0, 0, 0] + trans, [1.0, -3.0, 2.0], atol=1e-12)
    rot, trans = t.lookup("camera", "camera")
    np.testing.assert_allclose(rot, np.eye(3)) and np.testing.assert_allclose(trans, 0)
    # a later transform of the same child replaces the earlier one
    t.set(Transform("base", "camera", np.eye(3), np.array([0.0, 0.0, 5.0])))
    assert t.lookup("base", "camera")[1][2] == 5.0


def test_unknown_unconnected_and_looping_frames_are_clear_errors():
    t = tree()
    with pytest.raises(TransformError, match="'moon' is not in the TF tree"):
        t.lookup("world", "moon")
    t.set(Transform("map", "odom", np.eye(3), np.zeros(3)))
    with pytest.raises(TransformError, match="not connected"):
        t.lookup("odom", "camera")
    t.set(Transform("camera", "world", np.eye(3), np.zeros(3)))
    with pytest.raises(TransformError, match="loop"):
        t.lookup("base", "table")


def test_messages_round_trip_and_bad_ones_are_refused():
    transform = Transform("world", "camera", rot_z(0.3), np.array([0.1, -0.2, 1.5]), 42)
    msg = transform.to_msg()
    assert (msg.header.frame_id, msg.child_frame_id) == ("world", "camera")
    back = Transform.from_msg(msg)
    np.testing.assert_allclose(back.rotation, transform.rotation, atol=1e-12)
    np.testing.assert_allclose(back.translation, transform.translation)
    assert back.stamp_ns == 42
    msg.transform.rotation.w = msg.transform.rotation.z = 0.0
    with pytest.raises(TransformError, match="zero"):
        Transform.from_msg(msg)
    same = Transform("a", "b", np.eye(3), np.zeros(3)).to_msg()
    same.child_frame_id = "a"
    with pytest.raises(TransformError, match="two different"):
        Transform.from_msg(same)
    nan = Transform("a", "b", np.eye(3), np.zeros(3)).to_msg()
    nan.transform.translation.x = float("nan")
    with pytest.raises(TransformError, match="non-finite"):
        Transform.from_msg(nan)


@pytest.mark.ros
def test_static_frames_reach_a_late_listener(rclpy_context):
    """StaticBroadcaster latches every frame it sent; a TfListener started later gets them,
    and a bad transform on /tf is skipped with a warning, not fatal."""
    from types import SimpleNamespace

    from rclpy.executors import SingleThreadedExecutor
    from tf2_msgs.msg import TFMessage

    from embodied_transfer.ros.qos import TF_QOS
    from embodied_transfer.ros.tf import StaticBroadcaster, TfListener
    from ros_helpers import spin

    talker = rclpy_context.create_node("tf_talker")
    static = StaticBroadcaster(talker)
    static.send([Transform("world", "base", rot_z(0.5), np.array([1.0, 2.0, 0.0]))])
    static.send([Transform("base", "camera", np.eye(3), np.array([0.0, 0.0, 1.0]))])
    bad = talker.create_publisher(TFMessage, "/tf", TF_QOS)
    listener_node = rclpy_context.create_node("tf_listener")
    listener = TfListener(listener_node)
    executor = SingleThreadedExecutor()
    running = SimpleNamespace(executor=executor)
    for n in (talker, listener_node):
        executor.add_node(n)
    try:
        spin(running, 5.0, until=lambda: "camera" in listener.tree.frames())
        rot, trans = listener.lookup("world", "camera")
        np.testing.assert_allclose(trans, [1.0, 2.0, 1.0], atol=1e-12)
        np.testing.assert_allclose(rot, rot_z(0.5), atol=1e-12)
        broken = Transform("world", "arm", np.eye(3), np.zeros(3)).to_msg()
        broken.transform.rotation.w = 0.0
        good = Transform("world", "hand", np.eye(3), np.ones(3)).to_msg()
        spin(running, 3.0, until=lambda: bad.get_subscription_count())
        bad.publish(TFMessage(transforms=[broken, good]))
        spin(running, 3.0, until=lambda: "hand" in listener.tree.frames())
        assert "arm" not in listener.tree.frames()
    finally:
        executor.shutdown()
        talker.destroy_node()
        listener_node.destroy_node()
