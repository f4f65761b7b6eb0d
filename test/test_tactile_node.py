"""tactile_alignment on ROS: service round trip, bad input, streaming, diagnostics, lifecycle.

The model is a tiny one trained for a few steps (what it converts to does not matter here,
only what the node does with it).
"""
from __future__ import annotations


import numpy as np
import pytest

from embodied_transfer.app import bringup
from embodied_transfer.app.bringup import BringupError
from ros_helpers import call, spin

pytestmark = pytest.mark.ros

TACTILE_ALIGNMENT = bringup.NodeSpec("tactile_alignment",
                                     "embodied_transfer.nodes.tactile_alignment",
                                     "TactileAlignment", lifecycle=True)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from embodied_transfer.tactile.data import paired_set, unpaired_set
    from embodied_transfer.tactile.layouts import FINGERTIPS, GLOVE, ROBOT
    from embodied_transfer.tactile.models import ModelConfig, save_model
    from embodied_transfer.tactile.train import TrainConfig, train_model

    paired = paired_set(8, seed=0)
    unpaired = {d: unpaired_set(d, 2, seed=1) for d in (GLOVE, ROBOT, FINGERTIPS)}
    model = train_model(paired, unpaired, TrainConfig(stage2_steps=2, batch=16,
                                                      unpaired_batch=8, lr=1e-5),
                        ModelConfig(encoder="glove_space"), show=False)   # the shipped kind
    return save_model(model, tmp_path_factory.mktemp("tactile"))


class Peer:
    """Publishes glove frames, keeps converted frames and diagnostics, calls the service."""

    def __init__(self, rclpy) -> None:
        from diagnostic_msgs.msg import DiagnosticArray
        from embodied_transfer_interfaces.msg import TactileFrame
        from embodied_transfer_interfaces.srv import AlignTactile

        from embodied_transfer.ros.qos import RELIABLE_QOS, SENSOR_QOS

        self.node = rclpy.create_node("tactile_peer")
        self.input = self.node.create_publisher(TactileFrame, "tactile/input", SENSOR_QOS)
        self.got: dict[str, list] = {"converted": [], "diag": []}
        self.node.create_subscription(TactileFrame, "tactile/converted",
                                      self.got["converted"].append, RELIABLE_QOS)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self.got["diag"].append,
                                      RELIABLE_QOS)
        self.client = self.node.create_client(AlignTactile, "align_tactile")
        self.TactileFrame, self.AlignTactile = TactileFrame, AlignTactile

    def frame(self, domain="glove_137", values=None, stamp_s=7):
        from embodied_transfer.ros.conversions import make_header

        values = np.full(137, 0.25, np.float32) if values is None else values
        return self.TactileFrame(header=make_header(stamp_s * 1_000_000_000, "hand"),
                                 domain=domain, values=[float(v) for v in values])

    def diagnostics(self) -> dict[str, str]:
        for array in reversed(self.got["diag"]):
            for status in array.status:
                if status.name.endswith("tactile_alignment"):
                    return {kv.key: kv.value for kv in status.values}
        return {}


@pytest.fixture
def node(rclpy_context, model_dir):
    started = bringup.bring_up([TACTILE_ALIGNMENT], overrides={
        "tactile_alignment": {"model_path": str(model_dir)}})
    peer = Peer(rclpy_context)
    started.executor.add_node(peer.node)
    spin(started, 5.0, until=lambda: peer.input.get_subscription_count() > 0)
    yield started, peer
    started.shutdown()
    peer.node.destroy_node()


def test_service_converts_and_rejects_bad_frames(node, model_dir):
    from embodied_transfer.tactile.models import Aligner

    started, peer = node
    request = peer.AlignTactile.Request(frame=peer.frame(), target_domain="robot_hand_1062")
    ok = call(started, peer.client, request, wait_s=5.0)
    assert ok.success, ok.message
    latent_size = 137                         # glove_space: the glove's whitened readings
    assert len(ok.latent) == latent_size
    latent, converted = Aligner.load(model_dir).align("glove_137", np.full(137, 0.25),
                                                      "robot_hand_1062")
    np.testing.assert_allclose(ok.latent, latent, rtol=1e-6)
    np.testing.assert_allclose(ok.converted.values, converted, rtol=1e-6)
    assert ok.converted.domain == "robot_hand_1062" and len(ok.converted.values) == 1062
    assert ok.converted.header == request.frame.header
    assert all(0.0 <= v <= 1.0 for v in ok.converted.values)
    latent_only = call(started, peer.client, peer.AlignTactile.Request(frame=peer.frame()))
    assert latent_only.success and len(latent_only.latent) == latent_size
    assert len(latent_only.converted.values) == 0
    bad = {"unknown domain": peer.frame(domain="glove_9000"),
           "has 137 taxels, got 3": peer.frame(values=np.zeros(3)),
           "NaN": peer.frame(values=np.r_[np.zeros(136), np.nan]),
           "[0, 1]": peer.frame(values=np.r_[np.zeros(136), 2.0])}
    for expected, frame in bad.items():
        answer = call(started, peer.client, peer.AlignTactile.Request(
            frame=frame, target_domain="robot_hand_1062"))
        assert not answer.success and expected in answer.message, answer.message
    answer = call(started, peer.client, peer.AlignTactile.Request(
        frame=peer.frame(), target_domain="robot_hand_9"))
    assert not answer.success and "unknown target domain" in answer.message
    assert call(started, peer.client, request).success              # still serving
    spin(started, 2.5, until=lambda: "rejected_out_of_range" in peer.diagnostics())
    diag = peer.diagnostics()
    assert diag["rejected_unknown_domain"] == "2" and diag["rejected_wrong_size"] == "1"
    assert diag["rejected_not_finite"] == "1" and diag["model_loaded"] == "true"


def test_stream_converts_glove_frames_with_their_header(node):
    started, peer = node
    frames = [peer.frame(stamp_s=s) for s in (1, 2, 3)]
    for f in frames:
        peer.input.publish(f)
        spin(started, 0.1)
    peer.input.publish(peer.frame(values=np.zeros(5)))               # rejected, not published
    spin(started, 3.0, until=lambda: len(peer.got["converted"]) >= 3
         and "rejected_wrong_size" in peer.diagnostics())
    out = peer.got["converted"]
    assert [m.header for m in out] == [f.header for f in frames]
    assert all(m.domain == "robot_hand_1062" and len(m.values) == 1062 for m in out)
    assert peer.diagnostics()["rejected_wrong_size"] == "1"


def test_missing_model_or_unknown_stream_target_fails_configure(rclpy_context, tmp_path,
                                                                model_dir):
    with pytest.raises(BringupError, match="tactile_alignment failed to start"):
        bringup.bring_up([TACTILE_ALIGNMENT], overrides={
            "tactile_alignment": {"model_path": str(tmp_path / "none")}})
    with pytest.raises(BringupError):
        bringup.bring_up([TACTILE_ALIGNMENT], overrides={
            "tactile_alignment": {"model_path": str(model_dir),
                                  "stream_target_domain": "octopus_arm"}})


def test_a_glove_shadow_hand_model_serves_the_shadow_layout(rclpy_context, tmp_path):
    from embodied_transfer.tactile.train import TrainConfig, train

    train(tmp_path, TrainConfig(source="mujoco", paired_episodes=8), show=False)
    started = bringup.bring_up([TACTILE_ALIGNMENT], overrides={"tactile_alignment": {
        "model_path": str(tmp_path), "stream_target_domain": "shadow_grid_600"}})
    peer = Peer(rclpy_context)
    started.executor.add_node(peer.node)
    try:
        spin(started, 5.0, until=lambda: peer.input.get_subscription_count() > 0)
        ok = call(started, peer.client, peer.AlignTactile.Request(
            frame=peer.frame(), target_domain="shadow_grid_600"), wait_s=5.0)
        assert ok.success and len(ok.converted.values) == 600, ok.message
        wrong = call(started, peer.client, peer.AlignTactile.Request(
            frame=peer.frame(domain="shadow_grid_600", values=np.zeros(62))))
        assert not wrong.success and "has 600 taxels, got 62" in wrong.message
        old = call(started, peer.client, peer.AlignTactile.Request(
            frame=peer.frame(), target_domain="robot_hand_1062"))
        assert not old.success and "unknown target domain" in old.message
        peer.input.publish(peer.frame(stamp_s=4))
        spin(started, 3.0, until=lambda: peer.got["converted"])
        assert [len(m.values) for m in peer.got["converted"]] == [600]
    finally:
        started.shutdown()
        peer.node.destroy_node()
