"""mujoco_bridge on ROS: topics, stamps from sim time, /clock, services, lifecycle, diagnostics."""
from __future__ import annotations


from dataclasses import replace

import numpy as np
import pytest

from embodied_transfer.app import bringup
from embodied_transfer.app.bringup import BringupError
from embodied_transfer.sim.squat import JOINTS
from embodied_transfer.squat.phases import DOWN, STOP, UP
from ros_helpers import call, spin

pytestmark = pytest.mark.ros


class Listener:
    """Subscribes to everything the bridge publishes and keeps it."""

    def __init__(self, rclpy) -> None:
        from diagnostic_msgs.msg import DiagnosticArray
        from embodied_transfer_interfaces.msg import SquatPhase
        from rosgraph_msgs.msg import Clock
        from sensor_msgs.msg import Imu, JointState, Range

        from embodied_transfer.ros.qos import CLOCK_QOS, RELIABLE_QOS, SENSOR_QOS

        self.node = rclpy.create_node("bridge_listener")
        self.got: dict[str, list] = {k: [] for k in ("imu", "uwb", "phase", "clock", "joints",
                                                      "diag")}
        subs = [(Imu, "imu", "imu", SENSOR_QOS), (Range, "uwb/range", "uwb", SENSOR_QOS),
                (SquatPhase, "squat/phase_truth", "phase", RELIABLE_QOS),
                (Clock, "/clock", "clock", CLOCK_QOS),
                (JointState, "joint_states", "joints", RELIABLE_QOS),
                (DiagnosticArray, "/diagnostics", "diag", 10)]
        for msgtype, topic, key, qos in subs:
            self.node.create_subscription(msgtype, topic,
                                          lambda msg, key=key: self.got[key].append(msg), qos)

    def clear(self) -> None:
        for values in self.got.values():
            values.clear()


def stamp(msg) -> float:
    return msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9


@pytest.fixture
def bridge(rclpy_context):
    """The bridge at 4× real time plus a listener, on one executor."""
    started = bringup.bring_up([bringup.MUJOCO_BRIDGE],
                               overrides={"mujoco_bridge": {"real_time_factor": 4.0, "seed": 3,
                                                            "imu_remove_gravity": False}})
    listener = Listener(rclpy_context)
    started.executor.add_node(listener.node)
    yield started, listener
    started.shutdown()
    listener.node.destroy_node()


def test_publishes_sensors_truth_clock_and_joints_on_sim_time(bridge):
    started, listener = bridge
    spin(started, 4.0, until=lambda: len(listener.got["imu"]) >= 200)
    got = listener.got
    assert len(got["imu"]) >= 150, "4x real time at 20 Hz should give 80 frames per wall second"
    imu_t = np.array([stamp(m) for m in got["imu"]])
    # consecutive frames are 50 ms of sim time apart (best effort may lose a frame, never reorder)
    steps = np.round(np.diff(imu_t) / 0.05)
    assert np.all(steps >= 1) and np.mean(steps == 1) > 0.95
    assert np.allclose(np.diff(imu_t)[steps == 1], 0.05, atol=1e-6)
    assert {m.header.frame_id for m in got["imu"]} == {"watch_imu"}
    accel = np.array([[m.linear_acceleration.x, m.linear_acceleration.y,
                       m.linear_acceleration.z] for m in got["imu"]])
    # specific force including gravity (REP-145): about 1 g on average
    assert 8.5 < np.median(np.linalg.norm(accel, axis=1)) < 11.0

    uwb_t = np.array([stamp(m) for m in got["uwb"]])
    span = imu_t[-1] - imu_t[0]
    assert 3.0 <= len(uwb_t) / span <= 7.5          # 5–7 Hz less dropouts
    assert np.all(np.diff(uwb_t) > 0) and imu_t[0] - 0.05 <= uwb_t[0]
    assert all(m.min_range <= m.range <= m.max_range for m in got["uwb"])
    assert {m.header.frame_id for m in got["uwb"]} == {"uwb_phone"}

    truth = {stamp(m) for m in got["phase"]}
    # every IMU frame has its truth label with the same stamp (but for discovery at the start)
    assert len(set(imu_t) & truth) >= 0.95 * len(imu_t)
    assert {m.phase for m in got["phase"]} <= {STOP, DOWN, UP}
    assert all(m.confidence == 1.0 for m in got["phase"])

    clock_t = np.array([m.clock.sec + m.clock.nanosec * 1e-9 for m in got["clock"]])
    assert len(clock_t) > 10 and np.all(np.diff(clock_t) > 0)
    assert list(got["joints"][-1].name) == list(JOINTS)
    assert len(got["joints"][-1].position) == len(JOINTS)


def test_squats_are_labelled_and_counted(rclpy_context):
    started = bringup.bring_up([bringup.MUJOCO_BRIDGE],
                               overrides={"mujoco_bridge": {"real_time_factor": 40.0,
                                                            "seed": 5}})
    listener = Listener(rclpy_context)
    started.executor.add_node(listener.node)
    try:
        spin(started, 8.0, until=lambda: any(m.rep_count >= 2 for m in listener.got["phase"]))
        phases = [m.phase for m in listener.got["phase"]]
        counts = [m.rep_count for m in listener.got["phase"]]
        assert max(counts) >= 2, "40x real time for 8 s covers several squats"
        assert {STOP, DOWN, UP} <= set(phases)
        assert counts == sorted(counts)
    finally:
        started.shutdown()
        listener.node.destroy_node()


def test_pause_stops_the_clock_and_reset_continues_it(bridge):
    from std_srvs.srv import SetBool, Trigger

    started, listener = bridge
    helper = listener.node
    pause = helper.create_client(SetBool, "/mujoco_bridge/pause")
    reset = helper.create_client(Trigger, "/mujoco_bridge/reset")
    spin(started, 2.0, until=lambda: len(listener.got["imu"]) >= 20)

    assert call(started, pause, SetBool.Request(data=True)).message == "paused"
    spin(started, 0.3)
    listener.clear()
    spin(started, 0.7)
    assert listener.got["imu"] == [] and listener.got["clock"] == []
    assert call(started, pause, SetBool.Request(data=False)).message == "running"
    spin(started, 2.0, until=lambda: len(listener.got["imu"]) >= 5)
    assert listener.got["imu"]
    before = stamp(listener.got["imu"][-1])

    answer = call(started, reset, Trigger.Request())
    assert answer.success and "reset" in answer.message
    listener.clear()
    spin(started, 2.0, until=lambda: len(listener.got["phase"]) >= 5)
    after = [stamp(m) for m in listener.got["phase"]]
    assert after and min(after) > before, "sim time must not run backwards after a reset"
    assert listener.got["phase"][0].rep_count == 0


def test_diagnostics_report_the_loaded_scene(bridge):
    started, listener = bridge
    spin(started, 4.0, until=lambda: any(
        s.name.endswith("mujoco_bridge") for a in listener.got["diag"] for s in a.status))
    status = [s for a in listener.got["diag"] for s in a.status
              if s.name.endswith("mujoco_bridge")][-1]
    values = {kv.key: kv.value for kv in status.values}
    assert values["model_loaded"] == "true"
    assert "scene squat" in values["model"]
    assert float(values["input_rate_hz"]) > 0


def test_the_watch_imu_is_published_the_rep145_way_with_its_orientation(bridge):
    """Specific force with gravity plus the watch's orientation: removing gravity with the
    orientation (what the converter does) leaves the small user acceleration."""
    from embodied_transfer.squat.gravity import gravity_from_orientation

    started, listener = bridge
    spin(started, 3.0, until=lambda: len(listener.got["imu"]) >= 40)
    msgs = listener.got["imu"]
    assert len(msgs) >= 20 and all(m.orientation_covariance[0] != -1.0 for m in msgs)
    user = [np.array([m.linear_acceleration.x, m.linear_acceleration.y,
                      m.linear_acceleration.z])
            - gravity_from_orientation((m.orientation.x, m.orientation.y, m.orientation.z,
                                        m.orientation.w)) for m in msgs]
    assert np.median(np.linalg.norm(user, axis=1)) < 2.0


def test_gravity_removed_on_request(rclpy_context):
    started = bringup.bring_up([bringup.MUJOCO_BRIDGE], overrides={
        "mujoco_bridge": {"real_time_factor": 4.0, "imu_remove_gravity": True}})
    listener = Listener(rclpy_context)
    started.executor.add_node(listener.node)
    try:
        spin(started, 3.0, until=lambda: len(listener.got["imu"]) >= 40)
        accel = np.array([[m.linear_acceleration.x, m.linear_acceleration.y,
                           m.linear_acceleration.z] for m in listener.got["imu"]])
        assert len(accel) >= 20
        assert np.median(np.linalg.norm(accel, axis=1)) < 2.0   # user acceleration only
    finally:
        started.shutdown()
        listener.node.destroy_node()


@pytest.mark.parametrize("override", [{"scene": "moon"}, {"real_time_factor": 0.0},
                                      {"imu_rate_hz": 30.0}])
def test_bad_configuration_fails_the_bringup(rclpy_context, override):
    with pytest.raises(BringupError, match="mujoco_bridge failed to start"):
        bringup.bring_up([bringup.MUJOCO_BRIDGE], overrides={"mujoco_bridge": override})


def test_tabletop_scene_streams_camera_and_executes_grasps(rclpy_context):
    """The controller's path: a Grasp3D in the camera's optical frame, executed by the
    gripper after a TF lookup of the camera frames the bridge latches on /tf_static."""
    from embodied_transfer_interfaces.msg import GraspOutcome
    from embodied_transfer_interfaces.msg import Grasp3D as Grasp3DMsg
    from sensor_msgs.msg import CameraInfo, Image
    from std_msgs.msg import String
    from tf2_msgs.msg import TFMessage

    from embodied_transfer.grasp.geometry import grasp_3d
    from embodied_transfer.ros.conversions import camera_info_to_intrinsics, make_header
    from embodied_transfer.ros.grasp_msgs import grasp_3d_to_msg
    from embodied_transfer.ros.qos import RELIABLE_QOS, SENSOR_QOS, TF_STATIC_QOS
    from embodied_transfer.ros.tf import Transform, TransformTree
    from embodied_transfer.sim.tabletop_camera import camera_pose

    started = bringup.bring_up([bringup.TABLETOP_BRIDGE], overrides={
        "mujoco_bridge": {"camera_rate_hz": 5.0, "seed": 4}})
    node = rclpy_context.create_node("tabletop_peer")
    started.executor.add_node(node)
    got: dict[str, list] = {"image": [], "depth": [], "info": [], "instruction": [],
                            "outcome": [], "tf_static": []}
    for msgtype, topic, key, qos in ((Image, "image_raw", "image", SENSOR_QOS),
                                     (Image, "depth", "depth", SENSOR_QOS),
                                     (CameraInfo, "camera_info", "info", SENSOR_QOS),
                                     (String, "instruction", "instruction", RELIABLE_QOS),
                                     (GraspOutcome, "grasp_outcome", "outcome", RELIABLE_QOS),
                                     (TFMessage, "/tf_static", "tf_static", TF_STATIC_QOS)):
        node.create_subscription(msgtype, topic, lambda m, key=key: got[key].append(m), qos)
    grasps = node.create_publisher(Grasp3DMsg, "grasp_3d", RELIABLE_QOS)
    bridge = started.nodes[0]
    try:
        spin(started, 5.0, until=lambda: got["instruction"] and got["image"] and got["depth"]
             and got["info"] and got["tf_static"] and grasps.get_subscription_count())
        task = bridge.sim
        image, depth, info = got["image"][-1], got["depth"][-1], got["info"][-1]
        assert (image.encoding, depth.encoding) == ("rgb8", "32FC1")
        assert (image.width, image.height) == (info.width, info.height) == (320, 240)
        assert image.header == depth.header == info.header
        assert image.header.frame_id == "overhead_camera_optical_frame"
        assert info.k[0] > 0 and got["instruction"][0].data == task.instruction
        # /tf_static (latched, received by this late subscriber): world → link → optical,
        # the optical frame where the simulator's camera is
        tree = TransformTree()
        for t in got["tf_static"][-1].transforms:
            tree.set(Transform.from_msg(t))
        rot, trans = tree.lookup("world", image.header.frame_id)
        pos, optical = camera_pose(task.model)
        np.testing.assert_allclose(trans, pos, atol=1e-6)
        np.testing.assert_allclose(rot, optical, atol=1e-6)
        assert tree.lookup("overhead_camera_link", image.header.frame_id)[0][0, 2] == 1.0

        first_target = task.target.name
        true = task.true_grasps()[first_target][0]
        k = camera_info_to_intrinsics(info)["K"]
        depth_m = np.frombuffer(bytes(depth.data), np.float32).reshape(240, 320)
        header = make_header(123_000_000, image.header.frame_id)
        grasps.publish(grasp_3d_to_msg(grasp_3d(true, depth_m, k), header))
        spin(started, 10.0, until=lambda: got["outcome"] and len(got["instruction"]) >= 2)
        outcome = got["outcome"][0]
        assert outcome.success and outcome.target == outcome.lifted == first_target, outcome
        assert outcome.header == header and outcome.lift_height > 0.1
        assert len(got["instruction"]) == 2 and task.index == 1    # the next scene is up

        # a frame TF does not know: not executed, the reason on /diagnostics
        unknown = grasp_3d_to_msg(grasp_3d(true, depth_m, k), make_header(0, "elsewhere"))
        grasps.publish(unknown)
        spin(started, 3.0, until=lambda: "elsewhere" in bridge.health.last_rejection)
        assert "'elsewhere' is not in the TF tree" in bridge.health.last_rejection
        assert len(got["outcome"]) == 1 and not bridge.io._executing
        # an approach along the table (the optical x axis) is not top-down: failure, why
        sideways = grasp_3d_to_msg(grasp_3d(true, depth_m, k), header)
        o = sideways.pose.orientation
        o.x, o.y, o.z, o.w = 0.0, 0.0, 0.0, 1.0       # grasp frame = optical frame
        grasps.publish(sideways)
        spin(started, 10.0, until=lambda: len(got["outcome"]) >= 2)
        assert not got["outcome"][1].success and "top-down" in got["outcome"][1].message
        # a grasp far from every object fails and says so
        far = grasp_3d(true, depth_m, k)
        grasps.publish(grasp_3d_to_msg(replace(far, position=far.position + [0.3, 0.0, 0.0]),
                                       header))
        spin(started, 10.0, until=lambda: len(got["outcome"]) >= 3)
        assert not got["outcome"][2].success and got["outcome"][2].message
    finally:
        started.shutdown()
        node.destroy_node()
