"""Each custom message and service crosses a process boundary over Fast DDS."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

import ros_samples

HERE = Path(__file__).resolve().parent
pytestmark = pytest.mark.ros


def start_peer(mode: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(HERE / "ros_peer.py"), mode], cwd=HERE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def stop(proc: subprocess.Popen) -> str:
    """SIGTERM the peer; it must end cleanly (status 0) through the package's shutdown path."""
    proc.terminate()
    try:
        out, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"peer still running 30 s after SIGTERM: {out + err}") from None
    assert proc.returncode == 0, f"peer exited with {proc.returncode}: {out + err}"
    return out + err


def test_every_custom_message_crosses_processes(rclpy_context):
    from embodied_transfer.ros.qos import RELIABLE_QOS

    rclpy = rclpy_context
    node = rclpy.create_node("receiver")
    expected = ros_samples.samples()
    received: dict[str, object] = {}
    for topic, msg in expected.items():
        node.create_subscription(type(msg), topic,
                                 lambda m, t=topic: received.setdefault(t, m), RELIABLE_QOS)
    peer = start_peer("publish")
    try:
        deadline = time.monotonic() + 30.0
        while len(received) < len(expected) and time.monotonic() < deadline:
            rclpy.spin_once(node, timeout_sec=0.05)
    finally:
        log = stop(peer)
    assert set(received) == set(expected), f"missing {set(expected) - set(received)}; peer: {log}"
    for topic, msg in expected.items():
        got = ros_samples.fields(received[topic])
        want = ros_samples.fields(msg)
        if topic in ("features", "tactile"):  # float32[] arrives as float32
            got["values"] = pytest.approx(want["values"], rel=1e-6)
        if "score" in want or "confidence" in want:
            key = "score" if "score" in want else "confidence"
            assert got.pop(key) == pytest.approx(want.pop(key))
        assert got == want, topic


def test_every_custom_service_crosses_processes(rclpy_context):
    from embodied_transfer_interfaces.msg import TactileFrame
    from embodied_transfer_interfaces.srv import AlignTactile, PlanGrasp
    from sensor_msgs.msg import Image

    rclpy = rclpy_context
    node = rclpy.create_node("caller")
    align = node.create_client(AlignTactile, "align_tactile")
    plan = node.create_client(PlanGrasp, "plan_grasp")
    peer = start_peer("serve")
    try:
        assert align.wait_for_service(timeout_sec=30) and plan.wait_for_service(timeout_sec=30)

        def call(client, request):
            future = client.call_async(request)
            rclpy.spin_until_future_complete(node, future, timeout_sec=10)
            assert future.done(), "no response within 10 s"
            return future.result()

        frame = TactileFrame(header=ros_samples.header("glove_base"), domain="glove_137",
                             values=[0.5, 0.25, 1.0])
        ok = call(align, AlignTactile.Request(frame=frame, target_domain="robot_hand_1062"))
        assert ok.success and ok.message == "glove_137->robot_hand_1062"
        assert list(ok.latent) == [1.0, 0.25, 0.5]
        assert ok.converted.domain == "robot_hand_1062"
        assert list(ok.converted.values) == [1.0, 0.5, 2.0]
        assert ok.converted.header.frame_id == "glove_base"
        refused = call(align, AlignTactile.Request(frame=frame, target_domain=""))
        assert not refused.success and refused.message == "no target domain"

        image = Image(header=ros_samples.header("cam"), width=640, height=480, encoding="rgb8",
                      step=1920, data=bytes(640 * 480 * 3))
        grasp = call(plan, PlanGrasp.Request(image=image, instruction="pick up the red mug"))
        assert grasp.success
        assert (grasp.grasp.x, grasp.grasp.y, grasp.grasp.width) == (320.0, 240.0, 19.0)
        assert grasp.grasp.reasoning == "pick up the red mug"
        assert grasp.grasp.header.stamp.nanosec == 123_456_789
    finally:
        stop(peer)
