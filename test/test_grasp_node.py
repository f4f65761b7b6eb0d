"""grasp_reasoning on ROS: topics with the image's header, 3-D grasp, service, bad input, lifecycle.

The backend is a real GR-ConvNet-style model (untrained weights saved to a temporary
directory and loaded like the shipped one); what it predicts does not matter here, only what
the node does with it. Unparseable VLM output is covered with a tiny untrained VLM.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from embodied_transfer.app import bringup
from embodied_transfer.app.bringup import BringupError
from ros_helpers import call, spin

pytestmark = pytest.mark.ros

W, H = 96, 72
K = np.array([[80.0, 0.0, W / 2], [0.0, 80.0, H / 2], [0.0, 0.0, 1.0]])


@pytest.fixture(scope="module")
def cnn_dir(tmp_path_factory):
    from embodied_transfer.grasp.backends.cnn import CnnBackend, CnnConfig

    out = tmp_path_factory.mktemp("cnn")
    CnnBackend.create(CnnConfig(input_size=64, channels=8, res_blocks=1), seed=0).save(out)
    return out


def scene():
    rgb = np.full((H, W, 3), 90, np.uint8)
    rgb[30:45, 40:60] = (200, 30, 30)
    depth = np.full((H, W), 0.75, np.float32)
    depth[30:45, 40:60] = 0.70
    return rgb, depth


def messages(stamp_ns: int = 1_500_000_000, frame: str = "camera_optical_frame",
             depth_size=(H, W)):
    from embodied_transfer.ros.conversions import (intrinsics_to_camera_info, make_header,
                                                   numpy_to_image)

    rgb, depth = scene()
    header = make_header(stamp_ns, frame)
    depth = np.full(depth_size, 0.75, np.float32) if depth_size != (H, W) else depth
    return (numpy_to_image(rgb, "rgb8", header), numpy_to_image(depth, "32FC1", header),
            intrinsics_to_camera_info(K, W, H, header=header))


class Peer:
    """Publishes camera + instruction and keeps what grasp_reasoning publishes."""

    def __init__(self, rclpy) -> None:
        from diagnostic_msgs.msg import DiagnosticArray
        from embodied_transfer_interfaces.msg import Grasp3D, GraspPose
        from embodied_transfer_interfaces.srv import PlanGrasp
        from geometry_msgs.msg import PoseStamped
        from sensor_msgs.msg import CameraInfo, Image
        from std_msgs.msg import String

        from embodied_transfer.ros.qos import RELIABLE_QOS, SENSOR_QOS

        self.node = rclpy.create_node("grasp_peer")
        self.image = self.node.create_publisher(Image, "image_raw", SENSOR_QOS)
        self.depth = self.node.create_publisher(Image, "depth", SENSOR_QOS)
        self.info = self.node.create_publisher(CameraInfo, "camera_info", SENSOR_QOS)
        self.instruction = self.node.create_publisher(String, "instruction", RELIABLE_QOS)
        self.got: dict[str, list] = {"grasp": [], "3d": [], "pose": [], "image": [],
                                     "diag": []}
        for msgtype, topic, key in ((GraspPose, "grasp", "grasp"),
                                    (Grasp3D, "grasp_3d", "3d"),
                                    (PoseStamped, "grasp_pose", "pose"),
                                    (Image, "grasp_image", "image"),
                                    (DiagnosticArray, "/diagnostics", "diag")):
            self.node.create_subscription(msgtype, topic,
                                          lambda m, key=key: self.got[key].append(m),
                                          RELIABLE_QOS)
        self.client = self.node.create_client(PlanGrasp, "plan_grasp")
        self.String, self.PlanGrasp = String, PlanGrasp

    def diagnostics(self) -> dict[str, str]:
        for array in reversed(self.got["diag"]):
            for status in array.status:
                if status.name.endswith("grasp_reasoning"):
                    return {kv.key: kv.value for kv in status.values}
        return {}


@pytest.fixture
def node(rclpy_context, cnn_dir):
    started = bringup.bring_up([bringup.GRASP_REASONING], overrides={
        "grasp_reasoning": {"backend": "cnn", "model_path": str(cnn_dir)}})
    peer = Peer(rclpy_context)
    started.executor.add_node(peer.node)
    spin(started, 5.0, until=lambda: peer.instruction.get_subscription_count() > 0
         and peer.image.get_subscription_count() > 0)
    yield started, peer
    started.shutdown()
    peer.node.destroy_node()


def send_camera(started, peer, msgs) -> None:
    image, depth, info = msgs
    peer.info.publish(info)
    peer.depth.publish(depth)
    spin(started, 0.2)
    peer.image.publish(image)


def check_grasp_3d(grasp, g3, header) -> None:
    """The 3-D grasp of an image grasp on scene(): optical frame, approach along the optical
    axis, closing axis at theta, opening and standoff in m (node defaults)."""
    from embodied_transfer.core.geometry import matrix_from_quaternion

    assert g3.header == header
    p, q = g3.pose.position, g3.pose.orientation
    rot = matrix_from_quaternion((q.x, q.y, q.z, q.w))
    np.testing.assert_allclose(rot[:, 0], [0.0, 0.0, 1.0], atol=1e-9)       # approach
    np.testing.assert_allclose(rot[:, 1], [math.cos(grasp.theta), math.sin(grasp.theta), 0.0],
                               atol=1e-9)                                   # closing
    top = p.z - 0.02                        # grasp_depth_m beyond the nearest surface seen
    assert top in (pytest.approx(0.70), pytest.approx(0.75))
    assert p.x == pytest.approx((grasp.x - K[0, 2]) * top / K[0, 0], rel=1e-6)
    assert p.y == pytest.approx((grasp.y - K[1, 2]) * top / K[1, 1], rel=1e-6)
    assert g3.width == pytest.approx(grasp.width * top / K[0, 0], rel=1e-6)
    assert g3.standoff == pytest.approx(0.1) and g3.score == pytest.approx(grasp.score)


def test_instruction_and_image_give_3d_grasp_and_annotated_image(node):
    started, peer = node
    msgs = messages()
    send_camera(started, peer, msgs)
    spin(started, 0.3)
    peer.instruction.publish(peer.String(data="pick up the red box"))
    spin(started, 10.0, until=lambda: peer.got["grasp"] and peer.got["3d"]
         and peer.got["pose"] and peer.got["image"])
    grasp, pose, image = peer.got["grasp"][0], peer.got["pose"][0], peer.got["image"][0]
    assert grasp.header == msgs[0].header            # the image's stamp and optical frame
    assert 0 <= grasp.x < W and 0 <= grasp.y < H and -math.pi / 2 < grasp.theta <= math.pi / 2
    assert grasp.width > 0 and 0.0 <= grasp.score <= 1.0
    check_grasp_3d(grasp, peer.got["3d"][0], msgs[0].header)
    assert pose.header == msgs[0].header and pose.pose == peer.got["3d"][0].pose
    assert (image.width, image.height, image.encoding) == (W, H, "rgb8")
    # once per instruction: more images without a new instruction give no new grasp
    for _ in range(3):
        peer.image.publish(msgs[0])
        spin(started, 0.2)
    assert len(peer.got["grasp"]) == 1


def test_service_answers_and_bad_input_gives_a_reason(node):
    started, peer = node
    image, depth, info = messages()
    ok = call(started, peer.client, peer.PlanGrasp.Request(
        image=image, depth=depth, camera_info=info, instruction="grasp the red box"), wait_s=5.0)
    assert ok.success and ok.message.startswith("ok")
    assert ok.grasp.header == image.header and ok.has_grasp_3d
    check_grasp_3d(ok.grasp, ok.grasp_3d, image.header)
    # wrong sizes, an empty image, an unsupported encoding: no grasp, a reason, node stays up
    _, small_depth, _ = messages(depth_size=(10, 10))
    cases = {"aligned": peer.PlanGrasp.Request(image=image, depth=small_depth,
                                               instruction="grasp the red box"),
             "empty": peer.PlanGrasp.Request(instruction="grasp the red box")}
    bad_encoding = messages()[0]
    bad_encoding.encoding = "yuv422"
    cases["yuv422"] = peer.PlanGrasp.Request(image=bad_encoding, instruction="x")
    for expected, request in cases.items():
        answer = call(started, peer.client, request, wait_s=5.0)
        assert not answer.success and expected in answer.message, answer.message
    # depth without CameraInfo: a grasp but no 3-D pose, and the reason is reported
    no_info = call(started, peer.client, peer.PlanGrasp.Request(
        image=image, depth=depth, instruction="grasp the red box"), wait_s=5.0)
    assert no_info.success and "no CameraInfo" in no_info.message and not no_info.has_grasp_3d
    spin(started, 2.5, until=lambda: "rejected_bad_input" in peer.diagnostics())
    diag = peer.diagnostics()
    assert diag["rejected_bad_input"] == "3" and diag["rejected_no_camera_info"] == "1"
    assert diag["model_loaded"] == "true" and diag["backend"] == "cnn"
    no_depth = call(started, peer.client, peer.PlanGrasp.Request(
        image=image, instruction="grasp the red box"), wait_s=5.0)   # this CNN needs depth
    assert not no_depth.success and "depth" in no_depth.message
    assert call(started, peer.client, peer.PlanGrasp.Request(
        image=image, depth=depth, camera_info=info, instruction="grasp it"), wait_s=5.0).success


def test_empty_instruction_is_rejected(node):
    started, peer = node
    send_camera(started, peer, messages())
    peer.instruction.publish(peer.String(data="   "))
    spin(started, 2.5, until=lambda: "rejected_empty_instruction" in peer.diagnostics())
    assert peer.diagnostics()["rejected_empty_instruction"] == "1"
    assert peer.got["grasp"] == []


def test_unparseable_vlm_answer_publishes_nothing(rclpy_context, tmp_path):
    from embodied_transfer.grasp.vlm_train import build_tiny_vlm

    model = build_tiny_vlm(tmp_path / "vlm", image_size=32, patch_size=16, vision_hidden=32,
                           vision_layers=1, text_hidden=32, text_layers=1, vocab_size=300)
    started = bringup.bring_up([bringup.GRASP_REASONING], overrides={
        "grasp_reasoning": {"backend": "tiny-vlm", "model_path": str(model),
                            "max_new_tokens": 8}})
    peer = Peer(rclpy_context)
    started.executor.add_node(peer.node)
    try:
        image, _, _ = messages()
        answer = call(started, peer.client, peer.PlanGrasp.Request(
            image=image, instruction="pick up the red box"), wait_s=10.0)
        assert not answer.success
        assert answer.message.startswith("no grasp") and "raw answer" in answer.message
    finally:
        started.shutdown()
        peer.node.destroy_node()


def test_missing_model_fails_configure(rclpy_context, tmp_path):
    for backend in ("cnn", "tiny-vlm"):
        with pytest.raises(BringupError, match="grasp_reasoning failed to start"):
            bringup.bring_up([bringup.GRASP_REASONING], overrides={
                "grasp_reasoning": {"backend": backend, "model_path": str(tmp_path / "none")}})
    with pytest.raises(BringupError):
        bringup.bring_up([bringup.GRASP_REASONING], overrides={
            "grasp_reasoning": {"backend": "llava-9000"}})


def test_grasp_loop_graph_executes_grasps(rclpy_context):
    """Graph grasp_sim: bridge camera + instruction → grasp_reasoning → bridge → outcome."""
    from embodied_transfer_interfaces.msg import GraspOutcome, GraspPose

    from embodied_transfer.ros.qos import RELIABLE_QOS

    started = bringup.bring_up(bringup.graph("grasp_sim"), overrides={
        "mujoco_bridge": {"camera_rate_hz": 5.0, "seed": 7},
        "grasp_reasoning": {"backend": "cnn"}})               # the shipped CNN
    node = rclpy_context.create_node("loop_peer")
    started.executor.add_node(node)
    got: dict[str, list] = {"grasp": [], "outcome": []}
    node.create_subscription(GraspPose, "grasp", got["grasp"].append, RELIABLE_QOS)
    node.create_subscription(GraspOutcome, "grasp_outcome", got["outcome"].append, RELIABLE_QOS)
    try:
        spin(started, 30.0, until=lambda: len(got["outcome"]) >= 2)
        assert len(got["outcome"]) >= 2 and got["grasp"]
        assert [o.header for o in got["outcome"][:2]] == [g.header for g in got["grasp"][:2]]
        assert all(o.target and o.message for o in got["outcome"])
    finally:
        started.shutdown()
        node.destroy_node()


def test_refined_grasps_and_unrefinable_requests(rclpy_context):
    """The shipped tiny-vlm, refined by the shipped cnn by default: with depth the grasp is
    the cnn's near the VLM's; without depth the VLM's own grasp is answered and the reason
    counted."""
    from embodied_transfer.ros.conversions import (intrinsics_to_camera_info, make_header,
                                                   numpy_to_image)
    from embodied_transfer.grasp.tabletop_task import LiveTabletop

    task = LiveTabletop(seed=3)
    obs = task.observe()
    h, w = obs.rgb.shape[:2]
    header = make_header(1_700_000_000, "camera_optical_frame")
    image = numpy_to_image(obs.rgb, "rgb8", header)
    depth = numpy_to_image(obs.depth.astype(np.float32), "32FC1", header)
    i = obs.intrinsics
    k = np.array([[i.fx, 0.0, i.cx], [0.0, i.fy, i.cy], [0.0, 0.0, 1.0]])
    info = intrinsics_to_camera_info(k, w, h, header=header)
    started = bringup.bring_up([bringup.GRASP_REASONING], overrides={
        "grasp_reasoning": {"backend": "tiny-vlm", "views": 1}})      # refined by default
    peer = Peer(rclpy_context)
    started.executor.add_node(peer.node)
    try:
        refined = call(started, peer.client, peer.PlanGrasp.Request(
            image=image, depth=depth, camera_info=info, instruction=task.instruction),
            wait_s=20.0)
        assert refined.success and refined.message == "ok", refined.message
        plain = call(started, peer.client, peer.PlanGrasp.Request(
            image=image, instruction=task.instruction), wait_s=20.0)
        assert plain.success and "not refined" in plain.message and "depth" in plain.message
        a, b = refined.grasp, plain.grasp
        assert math.hypot(a.x - b.x, a.y - b.y) <= 10.5 and (a.x, a.y) != (b.x, b.y)
        assert a.reasoning == b.reasoning and a.reasoning
        spin(started, 2.5, until=lambda: "rejected_not_refined" in peer.diagnostics())
        assert peer.diagnostics()["rejected_not_refined"] == "1"
    finally:
        started.shutdown()
        peer.node.destroy_node()
    with pytest.raises(BringupError, match="grasp_reasoning failed to start"):
        bringup.bring_up([bringup.GRASP_REASONING], overrides={
            "grasp_reasoning": {"refine": "cnn", "refine_model_path": "/nonexistent/cnn"}})
