"""real2sim_converter and squat_phase_classifier on ROS: a replayed stream gives the offline
pipeline's result; bad input is rejected, reported on /diagnostics and never published."""
from __future__ import annotations

from embodied_transfer.squat.data import real_squat_dir

import math

import numpy as np
import pytest

from embodied_transfer.app import bringup
from embodied_transfer.app.bringup import NodeSpec
from embodied_transfer.app.bringup import BringupError
from embodied_transfer.squat.signals import FEATURE_CHANNELS
from conftest import require_real_data
from ros_helpers import spin

pytestmark = pytest.mark.ros

CONVERTER = NodeSpec("real2sim_converter", "embodied_transfer.nodes.real2sim_converter",
                     "Real2SimConverter", lifecycle=True)
CLASSIFIER = NodeSpec("squat_phase_classifier", "embodied_transfer.nodes.squat_phase_classifier",
                      "SquatPhaseClassifier", lifecycle=True)
REAL = real_squat_dir() / "recording_1.csv"
START_NS = 1_700_000_000 * 1_000_000_000
MS = 1_000_000


def recorded_stream(frames: int = 200):
    """(IMU stamps ns, accel, gyro, UWB stamps ns, UWB) — the start of a real recording, or
    a synthetic 20 Hz stream with UWB at 5 Hz where the recordings are not available."""
    if REAL.is_file():
        from embodied_transfer.squat.real import load_real_csv

        rec = load_real_csv(REAL)
        t = START_NS + np.round(rec.t[:frames] * 1e9).astype(np.int64)
        keep = rec.uwb_t <= rec.t[frames - 1]
        return (t, rec.accel[:frames], rec.gyro[:frames],
                START_NS + np.round(rec.uwb_t[keep] * 1e9).astype(np.int64), rec.uwb[keep])
    rng = np.random.default_rng(0)
    t = START_NS + np.arange(frames) * 50 * MS + 3 * MS
    phase = np.linspace(0, 6 * np.pi, frames)
    accel = np.column_stack([np.sin(phase), np.cos(phase), 0.5 * np.sin(2 * phase)])
    gyro = 0.3 * np.column_stack([np.cos(phase), np.sin(phase), np.cos(2 * phase)])
    uwb_t = t[::4]
    return (t, accel + rng.normal(0, 0.05, accel.shape), gyro,
            uwb_t, 0.7 + 0.2 * np.sin(phase[::4]))


def offline(models, t, accel, gyro, uwb_t, uwb):
    """The offline pipeline on the same stream: (sim-domain frames, probabilities)."""
    from embodied_transfer.squat.pipeline import Pipeline
    from embodied_transfer.squat.signals import stack

    at_imu = np.interp((t - t[0]).astype(np.float64), (uwb_t - t[0]).astype(np.float64), uwb)
    x = stack(accel, gyro, at_imu)
    return Pipeline(models["classifier"], models["converter"]).run(x)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Small random-init checkpoints on disk, and the same models loaded back."""
    import torch

    from embodied_transfer.squat.models import (Checkpoint, ModelConfig, MultiEncoderVAE,
                                                PhaseClassifier)
    from embodied_transfer.squat.pipeline import Classifier, Converter
    from embodied_transfer.squat.signals import Normalizer

    t, accel, gyro, _, uwb = recorded_stream()
    norm = Normalizer.fit(np.column_stack([accel, gyro, np.full(len(t), uwb.mean())]))
    torch.manual_seed(1)
    root = tmp_path_factory.mktemp("models")
    Checkpoint(MultiEncoderVAE(ModelConfig("multi_encoder_vae", hidden=32, past=15)),
               norm, norm).save(root / "converter")
    Checkpoint(PhaseClassifier(ModelConfig("phase_classifier", hidden=32, past=10, future=5)),
               norm).save(root / "classifier")
    return {"converter_path": str(root / "converter"),
            "classifier_path": str(root / "classifier"),
            "converter": Converter.load(root / "converter"),
            "classifier": Classifier.load(root / "classifier")}


class Io:
    """The test's node: publishes sensor input, keeps every output."""

    def __init__(self, rclpy) -> None:
        from diagnostic_msgs.msg import DiagnosticArray
        from embodied_transfer_interfaces.msg import SimDomainFeatures, SquatPhase
        from sensor_msgs.msg import Imu, Range

        from embodied_transfer.ros.qos import BAG_QOS, SENSOR_QOS

        self.node = rclpy.create_node("squat_nodes_io")
        self.imu = self.node.create_publisher(Imu, "imu", SENSOR_QOS)
        self.uwb = self.node.create_publisher(Range, "uwb/range", SENSOR_QOS)
        self.features_pub = self.node.create_publisher(SimDomainFeatures, "real2sim/features",
                                                       BAG_QOS)
        self.features: list = []
        self.phases: list = []
        self.diag: dict[str, dict[str, str]] = {}
        self.node.create_subscription(SimDomainFeatures, "real2sim/features",
                                      self.features.append, BAG_QOS)
        self.node.create_subscription(SquatPhase, "squat/phase", self.phases.append, BAG_QOS)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, 10)

    def phases_ready(self) -> bool:
        return self.node.count_publishers("squat/phase") >= 1

    def _on_diag(self, msg) -> None:
        for status in msg.status:
            self.diag[status.name.rsplit("/", 1)[-1]] = {kv.key: kv.value for kv in status.values}


def ns(msg) -> int:
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


@pytest.fixture
def graph(rclpy_context, models, request):
    # the recordings hold user acceleration (gravity removed), as the real watch's CSV does
    gravity = getattr(request, "param", False)
    started = bringup.bring_up([CONVERTER, CLASSIFIER], overrides={
        "real2sim_converter": {"model_path": models["converter_path"], "flush_after_s": 0.3,
                               "imu_includes_gravity": gravity, "placement_check": False},
        "squat_phase_classifier": {"model_path": models["classifier_path"],
                                   "flush_after_s": 0.6}})
    io = Io(rclpy_context)
    started.executor.add_node(io.node)
    converter, classifier = started.nodes
    spin(started, 5.0, until=lambda: io.imu.get_subscription_count() >= 1
         and io.uwb.get_subscription_count() >= 1 and converter._pub.get_subscription_count() >= 2
         and classifier._pub.get_subscription_count() >= 1
         and io.features_pub.get_subscription_count() >= 2)
    yield started, io
    started.shutdown()
    io.node.destroy_node()


def send(started, io, messages) -> None:
    """Publish (publisher, message) pairs one at a time, each once the converter got the last
    (so best-effort delivery loses nothing)."""
    converter = started.nodes[0]
    for pub, msg in messages:
        expected = converter.health.inputs + 1
        pub.publish(msg)
        spin(started, 2.0, until=lambda: converter.health.inputs >= expected)
        assert converter.health.inputs == expected, "the converter did not receive an input"


def sensor_messages(io, t, accel, gyro, uwb_t, uwb, frame_id="watch_imu"):
    """IMU and Range messages in stamp order (a UWB reading after the IMU frame it shares
    a stamp with, as csv2bag writes them)."""
    from embodied_transfer.ros.conversions import make_header, numpy_to_imu, numpy_to_range

    readings = dict(zip(uwb_t.tolist(), uwb.tolist()))
    out = []
    events = sorted([(s, 0, i) for i, s in enumerate(t.tolist())]
                    + [(s, 1, s) for s in uwb_t.tolist()])
    for stamp, kind, i in events:
        if kind == 0:
            out.append((io.imu, numpy_to_imu(accel[i], gyro[i],
                                             header=make_header(stamp, frame_id))))
        else:
            out.append((io.uwb, numpy_to_range(readings[i], make_header(stamp, "uwb_phone"),
                                               min_range=0.1, max_range=50.0)))
    return out


def diagnostics(started, io, node: str, until) -> dict[str, str]:
    spin(started, 4.0, until=lambda: node in io.diag and until(io.diag[node]))
    assert node in io.diag, f"no diagnostics from {node}"
    return io.diag[node]


def test_a_replayed_stream_gives_the_offline_result(graph, models):
    from std_srvs.srv import Trigger

    from embodied_transfer.squat.pipeline import RepCounter

    started, io = graph
    t, accel, gyro, uwb_t, uwb = stream = recorded_stream()
    send(started, io, sensor_messages(io, *stream))
    spin(started, 5.0, until=lambda: len(io.phases) >= len(t))   # the rest after the flush
    sim, probs = offline(models, *stream)

    assert [ns(m) for m in io.features] == t.tolist()
    assert all(list(m.channels) == list(FEATURE_CHANNELS) for m in io.features)
    assert {m.header.frame_id for m in io.features} == {"watch_imu"}
    np.testing.assert_allclose(np.array([m.values for m in io.features]), sim,
                               atol=1e-5, rtol=1e-5)

    assert [ns(m) for m in io.phases] == t.tolist()
    assert {m.header.frame_id for m in io.phases} == {"watch_imu"}
    phases = np.array([m.phase for m in io.phases])
    top2 = np.sort(probs, axis=1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 1e-4
    assert np.array_equal(phases[clear], probs.argmax(1)[clear])
    np.testing.assert_allclose([m.confidence for m in io.phases], probs.max(1), atol=1e-5)
    counts = [m.rep_count for m in io.phases]
    counter = RepCounter(3)
    assert counts == sorted(counts) and counts[-1] == counter.count_all(phases)

    values = diagnostics(started, io, "real2sim_converter",
                         lambda v: v["outputs"] == str(len(t)))
    assert values["model_loaded"] == "true" and values["rejected_inputs"] == "0"
    assert "events_uwb_stale" not in values
    values = diagnostics(started, io, "squat_phase_classifier",
                         lambda v: v["outputs"] == str(len(t)))
    assert values["rep_count"] == str(counts[-1]) and values["rejected_inputs"] == "0"
    assert values["suppressed_reps"] == str(counter.suppressed)

    client = io.node.create_client(Trigger, "/squat_phase_classifier/reset_count")
    assert client.wait_for_service(timeout_sec=5.0)
    for _ in range(5):   # a request sent before the response reader matched gets no answer
        future = client.call_async(Trigger.Request())
        spin(started, 1.0, until=future.done)
        if future.done():
            break
        client.remove_pending_request(future)
    assert future.result().success and started.nodes[1].stream.rep_count == 0


@pytest.mark.parametrize("graph", [True], indirect=True)
def test_rep145_input_with_gravity_and_orientation_gives_the_user_acceleration_result(
        graph, models):
    """A REP-145 IMU (specific force with gravity, orientation given): the converter removes
    gravity with the orientation and gives what the gravity-removed stream gives."""
    from embodied_transfer.ros.conversions import make_header, numpy_to_imu

    started, io = graph
    t, accel, gyro, uwb_t, uwb = stream = recorded_stream(60)
    messages = sensor_messages(io, *stream)
    tilt = np.array([0.0, np.sin(0.2), 0.0, np.cos(0.2)])           # x, y, z, w: 0.4 rad
    x, y, z, w = tilt
    up = 9.80665 * np.array([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)])
    rep145 = [(pub, numpy_to_imu(accel[list(t).index(ns(msg))] + up,
                                 gyro[list(t).index(ns(msg))], orientation=tilt,
                                 header=make_header(ns(msg), msg.header.frame_id)))
              if pub is io.imu else (pub, msg) for pub, msg in messages]
    send(started, io, rep145)
    spin(started, 5.0, until=lambda: len(io.features) >= len(t))
    sim, _ = offline(models, *stream)
    np.testing.assert_allclose(np.array([m.values for m in io.features]), sim,
                               atol=1e-4, rtol=1e-4)


def test_a_second_replay_publishes_again_and_says_so(graph):
    """`replay` twice or `--loop`: the stamps start again; the nodes restart their streams
    (logged, and counted on /diagnostics) instead of rejecting every frame."""
    started, io = graph
    t, *_ = stream = recorded_stream(60)
    for _ in range(2):
        send(started, io, sensor_messages(io, *stream))
        spin(started, 5.0, until=lambda: len(io.phases) >= len(t) * (1 + (_ == 1)))
    assert [ns(m) for m in io.features] == t.tolist() * 2
    assert [ns(m) for m in io.phases] == t.tolist() * 2
    np.testing.assert_allclose([m.values for m in io.features[:len(t)]],
                               [m.values for m in io.features[len(t):]], atol=1e-6)
    values = diagnostics(started, io, "real2sim_converter",
                         lambda v: v.get("events_time_jump_back", "0") != "0")
    assert values["rejected_inputs"] == "0"
    values = diagnostics(started, io, "squat_phase_classifier",
                         lambda v: v.get("events_time_jump_back") == "1")
    assert values["rejected_inputs"] == "0"


def test_a_burst_of_sensor_input_loses_no_frame(graph):
    """A 10x replay or a stalled executor delivers many frames at once: the converter's
    best-effort inputs keep them all (qos_profile_sensor_data's 5-deep queue did not)."""
    started, io = graph
    t, accel, gyro, uwb_t, uwb = stream = recorded_stream(60)
    messages = sensor_messages(io, *stream)
    for pub, msg in messages:          # all published before the executor runs once
        pub.publish(msg)
    converter = started.nodes[0]
    spin(started, 5.0, until=lambda: len(io.features) >= len(t))
    assert converter.health.inputs == len(messages)
    assert [ns(m) for m in io.features] == t.tolist()


def test_bad_input_is_rejected_reported_and_never_published(graph):
    from embodied_transfer_interfaces.msg import SimDomainFeatures

    from embodied_transfer.ros.conversions import make_header, numpy_to_imu, numpy_to_range

    started, io = graph
    # 8 s at 20 Hz; UWB at 5 Hz but silent from 2 s to 5 s
    t = START_NS + np.arange(160) * 50 * MS
    uwb_t = np.array([s for s in t[::4] if not 2000 <= (s - START_NS) // MS < 5000])
    rng = np.random.default_rng(2)
    good = sensor_messages(io, t, rng.normal(0, 1, (160, 3)), rng.normal(0, 1, (160, 3)),
                           uwb_t, 0.5 + rng.uniform(0, 1, uwb_t.size))
    nan_imu = numpy_to_imu(np.zeros(3), np.zeros(3),
                           header=make_header(int(t[20]) + 10 * MS, "watch_imu"))
    nan_imu.linear_acceleration.y = math.nan
    late_imu = numpy_to_imu(np.ones(3), np.ones(3), header=make_header(int(t[10]), "watch_imu"))
    nan_uwb = numpy_to_range(math.nan, make_header(int(t[30]) + 20 * MS), min_range=0.1,
                             max_range=50.0, allow_nan=True)
    i20 = next(i for i, (pub, m) in enumerate(good) if ns(m) > t[20])
    i30 = next(i for i, (pub, m) in enumerate(good) if ns(m) > t[30])
    messages = (good[:i20] + [(io.imu, nan_imu)] + good[i20:i30]
                + [(io.imu, late_imu), (io.uwb, nan_uwb)] + good[i30:])
    send(started, io, messages)
    spin(started, 5.0, until=lambda: len(io.phases) >= len(t))

    assert [ns(m) for m in io.features] == t.tolist()      # every good frame, nothing else
    assert np.all(np.isfinite([m.values for m in io.features]))
    assert [ns(m) for m in io.phases] == t.tolist()
    values = diagnostics(started, io, "real2sim_converter",
                         lambda v: v["outputs"] == str(len(t)))
    assert values["rejected_imu_non_finite"] == "1"
    assert values["rejected_imu_out_of_order"] == "1"
    assert values["rejected_uwb_invalid"] == "1"
    assert values["rejected_inputs"] == "3" and values["last_rejection"].startswith("uwb_invalid")
    # frames after the 1.8 s reading, from 1.85 s to 3.95 s, wait a full second for UWB and
    # go out with the range held; later ones are interpolated once the 5.0 s reading arrives
    assert int(values["events_uwb_stale"]) == len(range(37, 80))
    assert float(values["max_hold_ms"]) <= 1050.0

    bad = SimDomainFeatures(header=make_header(int(t[-1]) + 50 * MS, "watch_imu"),
                            channels=list(reversed(FEATURE_CHANNELS)), values=[0.0] * 7)
    short = SimDomainFeatures(header=make_header(int(t[-1]) + 100 * MS, "watch_imu"),
                              channels=list(FEATURE_CHANNELS), values=[0.0] * 6)
    io.features_pub.publish(bad)
    io.features_pub.publish(short)
    values = diagnostics(started, io, "squat_phase_classifier",
                         lambda v: v.get("rejected_bad_length") == "1")
    assert values["rejected_bad_channels"] == "1" and values["rejected_inputs"] == "2"
    spin(started, 1.0)
    assert len(io.phases) == len(t)


@pytest.mark.parametrize("node, override", [
    ("real2sim_converter", {"model_path": "/nonexistent/model"}),
    ("real2sim_converter", {"model_path": "classifier"}),      # not a converter
    ("squat_phase_classifier", {"model_path": "converter"}),   # not a classifier
    ("real2sim_converter", {"queue_size": 0}),
    ("squat_phase_classifier", {"min_rep": -1}),
])
def test_a_missing_or_wrong_model_fails_the_bringup(rclpy_context, models, node, override):
    override = {k: models.get(f"{v}_path", v) for k, v in override.items()}
    overrides = {"real2sim_converter": {"model_path": models["converter_path"]},
                 "squat_phase_classifier": {"model_path": models["classifier_path"]}}
    overrides[node].update(override)
    with pytest.raises(BringupError, match=f"{node} failed to start"):
        bringup.bring_up([CONVERTER, CLASSIFIER], overrides=overrides)


def test_end_of_stream_flush_follows_the_node_clock(rclpy_context, models):
    """Under use_sim_time the classifier waits flush_after_s of *sim* time (a slow replay is
    not cut short by wall time), and flushes on the wall clock once /clock stops."""
    from embodied_transfer_interfaces.msg import SimDomainFeatures
    from rosgraph_msgs.msg import Clock

    from embodied_transfer.ros.conversions import make_header
    from embodied_transfer.ros.qos import CLOCK_QOS

    started = bringup.bring_up([CLASSIFIER], use_sim_time=True, overrides={
        "squat_phase_classifier": {"model_path": models["classifier_path"],
                                   "flush_after_s": 0.5}})
    io = Io(rclpy_context)
    clock = io.node.create_publisher(Clock, "/clock", CLOCK_QOS)
    started.executor.add_node(io.node)
    future = models["classifier"].future
    sim_ns = START_NS

    def tick(seconds: float, sim_per_wall: float) -> None:
        """Publish /clock every 20 ms of wall time for ``seconds``, sim time advancing at
        ``sim_per_wall``."""
        nonlocal sim_ns
        for _ in range(int(seconds / 0.02)):
            sim_ns += int(0.02 * sim_per_wall * 1e9)
            clock.publish(Clock(clock=make_header(sim_ns).stamp))
            spin(started, 0.02)

    def feed(n: int) -> None:
        nonlocal sim_ns
        for _ in range(n):
            sim_ns += 50 * MS
            clock.publish(Clock(clock=make_header(sim_ns).stamp))
            io.features_pub.publish(SimDomainFeatures(
                header=make_header(sim_ns, "watch_imu"), channels=list(FEATURE_CHANNELS),
                values=[0.1] * len(FEATURE_CHANNELS)))
            spin(started, 0.01)

    try:
        spin(started, 5.0, until=lambda: io.features_pub.get_subscription_count() >= 1
             and clock.get_subscription_count() >= 1 and io.phases_ready())
        feed(20)
        spin(started, 2.0, until=lambda: len(io.phases) >= 20 - future)
        assert len(io.phases) == 20 - future
        tick(1.0, sim_per_wall=0.1)       # a 0.1x replay paused between frames: 0.1 s sim
        assert len(io.phases) == 20 - future, "flushed on wall time while sim time ran"
        tick(0.3, sim_per_wall=3.0)       # sim time passes flush_after_s: end of stream
        spin(started, 1.0, until=lambda: len(io.phases) >= 20)
        assert len(io.phases) == 20
        feed(10)                          # the stream goes on, then /clock stops for good
        spin(started, 2.0, until=lambda: len(io.phases) >= 30 - future)
        assert len(io.phases) == 30 - future
        spin(started, 0.3)
        assert len(io.phases) == 30 - future
        spin(started, 2.0, until=lambda: len(io.phases) >= 30)
        assert len(io.phases) == 30
    finally:
        started.shutdown()
        io.node.destroy_node()


def test_uwb_dropping_out_switches_to_imu_only_and_back_losing_nothing(rclpy_context, models):
    """UWB silent for 3 s in the middle, then back, and two readings metres off
    (multipath): every IMU frame still gives features and a label; those made without a
    usable range say imu_only, in the features, in SquatPhase and on /diagnostics, the
    switches are counted and the multipath readings rejected."""
    started = bringup.bring_up([CONVERTER, CLASSIFIER], overrides={
        "real2sim_converter": {"model_path": models["converter_path"], "flush_after_s": 0.3,
                               "imu_includes_gravity": False, "max_uwb_wait_s": 0.5,
                               "max_uwb_age_s": 1.0, "placement_check": False},
        "squat_phase_classifier": {"model_path": models["classifier_path"],
                                   "flush_after_s": 0.6}})
    io = Io(rclpy_context)
    started.executor.add_node(io.node)
    converter = started.nodes[0]
    try:
        spin(started, 5.0, until=lambda: io.imu.get_subscription_count() >= 1
             and io.uwb.get_subscription_count() >= 1 and io.phases_ready()
             and converter._pub.get_subscription_count() >= 2)
        t, accel, gyro, uwb_t, uwb = recorded_stream()
        gap = (uwb_t > t[40]) & (uwb_t < t[40] + 3 * 1_000_000_000)
        uwb = uwb.copy()
        uwb[[3, -4]] += 2.5                                  # multipath, before and after
        send(started, io, sensor_messages(io, t, accel, gyro, uwb_t[~gap], uwb[~gap]))
        spin(started, 5.0, until=lambda: len(io.phases) >= len(t))
        assert len(io.features) == len(io.phases) == len(t)
        modes = [f.mode for f in io.features]
        silent_from = int(uwb_t[~gap][uwb_t[~gap] <= t[40]].max())
        expected = ["imu_only" if s - silent_from > 1_000_000_000 and s < uwb_t[gap].max()
                    else "uwb" for s in t.tolist()]
        first = expected.index("imu_only")
        assert "imu_only" in modes and modes[:first] == expected[:first]
        assert modes[-1] == "uwb" and modes.count("imu_only") >= 20
        assert [p.mode for p in io.phases] == modes                 # label ↔ its frame
        assert all(np.isfinite(f.values).all() for f in io.features)
        values = diagnostics(started, io, "real2sim_converter",
                             until=lambda v: v.get("events_mode_switch") == "2")
        assert values["events_mode_switch"] == "2" and values["mode"] == "uwb"
        assert int(values["events_imu_only"]) == modes.count("imu_only")
        assert "rejected_uwb_lost" not in values and "rejected_no_uwb_yet" not in values
        assert values["rejected_uwb_multipath"] == "2"
    finally:
        started.shutdown()
        io.node.destroy_node()


def test_the_converter_finds_a_phone_above_the_wrist_and_mirrors_the_range(rclpy_context):
    """The shipped models on recording_1 with its range mirrored (a phone above the wrist):
    the placement check decides 'above', says so on /diagnostics, and from then on the
    features are those of the recording as recorded (0.04 apart without the check)."""
    from embodied_transfer.squat.pipeline import load_pipelines
    from embodied_transfer.squat.real import load_real_csv
    from embodied_transfer.squat.selection import uwb_stressed
    from embodied_transfer.squat.signals import real_recording

    rec = load_real_csv(require_real_data(REAL))
    mirrored = uwb_stressed(rec, "uwb_mirrored")
    started = bringup.bring_up([CONVERTER], overrides={"real2sim_converter": {
        "flush_after_s": 0.3, "imu_includes_gravity": False}})
    io = Io(rclpy_context)
    started.executor.add_node(io.node)
    converter = started.nodes[0]
    try:
        spin(started, 5.0, until=lambda: io.imu.get_subscription_count() >= 1
             and converter._pub.get_subscription_count() >= 1)
        t = START_NS + np.round(mirrored.t * 1e9).astype(np.int64)
        uwb_t = START_NS + np.round(mirrored.uwb_t * 1e9).astype(np.int64)
        send(started, io, sensor_messages(io, t, mirrored.accel, mirrored.gyro, uwb_t,
                                          mirrored.uwb))
        spin(started, 5.0, until=lambda: len(io.features) >= len(t))
        assert len(io.features) == len(t)
        values = diagnostics(started, io, "real2sim_converter",
                             until=lambda v: v.get("placement") == "above")
        assert values["placement"] == "above"
        # after the decision (and the adaptation's horizon), close to the unmirrored run
        x, _ = real_recording(rec)
        offline = load_pipelines()["proposed"].converter.convert(x)
        online = np.array([f.values for f in io.features])
        late = slice(len(t) // 2, None)
        assert np.median(np.abs(online[late] - offline[late])) < 0.01 * np.std(offline)
    finally:
        started.shutdown()
        io.node.destroy_node()
