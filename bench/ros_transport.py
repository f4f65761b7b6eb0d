"""Cross-process ROS 2 transport: latency and throughput of Imu and Image topics.

The parent process subscribes; for each case it starts this file again as a child
(``--publish KIND QOS RATE DURATION``) in the same isolated environment. The child waits
until its publisher is matched, then publishes on a fixed-rate deadline schedule, stamping
``header.stamp`` with ``time.time_ns()`` just before each publish and ``header.frame_id``
with the sequence number. Latency is ``time.time_ns()`` in the subscriber callback minus
that stamp (both processes read the same host clock), so it includes serialisation, the
Fast DDS transport, executor wake-up and deserialisation into a Python message.

Cases: sensor_msgs/Imu at 1 kHz and 640x480 rgb8 sensor_msgs/Image at 30 Hz, each with
SENSOR_QOS (best effort, keep last 5) and RELIABLE_QOS (reliable, keep last 10).

    python -m bench.ros_transport [--duration 5]      # prints the result as JSON
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
CASES = (("imu", 1000.0), ("image", 30.0))
QOS_NAMES = ("best_effort", "reliable")
IMAGE_SHAPE = (480, 640, 3)
MATCH_TIMEOUT_S = 30.0
SETTLE_S = 0.5
DRAIN_IDLE_S = 0.5  # after the child exits, stop once no message arrived for this long

#: (header, key path into a case dict) for run_all's table.
TABLE_COLUMNS = (
    ("sent", "sent"), ("recv", "received"), ("lost", "lost"),
    ("pub Hz", "publish_rate_hz"), ("rx Hz", "receive_rate_hz"), ("MB/s", "mb_per_s"),
    ("p50 ms", "latency_ms.p50"), ("p99 ms", "latency_ms.p99"), ("max ms", "latency_ms.max"),
    ("ooo", "out_of_order"),
)


def _qos(name: str):
    from embodied_transfer.ros.qos import RELIABLE_QOS, SENSOR_QOS

    return {"best_effort": SENSOR_QOS, "reliable": RELIABLE_QOS}[name]


def _msg_type(kind: str):
    from sensor_msgs.msg import Image, Imu

    return {"imu": Imu, "image": Image}[kind]


def _topic(kind: str, qos: str) -> str:
    return f"/bench/{kind}_{qos}"


def _payloads(kind: str, count: int) -> list:
    """Messages to publish (headers are filled in at publish time).

    Imu: one message per sample, gravity plus noise, built before publishing starts.
    Image: a single frame of random bytes, generated once and reused for every publish.
    """
    from embodied_transfer.ros.conversions import numpy_to_image, numpy_to_imu

    rng = np.random.default_rng(0)
    if kind == "image":
        frame = rng.integers(0, 256, size=IMAGE_SHAPE, dtype=np.uint8)
        return [numpy_to_image(frame, "rgb8")]
    accel = rng.normal([0.0, 0.0, 9.80665], 0.05, size=(count, 3))
    gyro = rng.normal(0.0, 0.01, size=(count, 3))
    return [numpy_to_imu(a, g) for a, g in zip(accel, gyro)]


# ---------------------------------------------------------------------------------------
# Child: publisher
# ---------------------------------------------------------------------------------------


def publish(kind: str, qos: str, rate_hz: float, duration_s: float) -> dict:
    import rclpy
    from rclpy.duration import Duration

    from embodied_transfer.ros.conversions import make_header
    from embodied_transfer.ros.isolation import apply_isolation

    apply_isolation(int(os.environ["ROS_DOMAIN_ID"]))
    count = max(1, round(rate_hz * duration_s))
    payloads = _payloads(kind, count)
    rclpy.init()
    node = rclpy.create_node("bench_publisher", enable_rosout=False,
                             start_parameter_services=False)
    pub = node.create_publisher(_msg_type(kind), _topic(kind, qos), _qos(qos))
    try:
        deadline = time.monotonic() + MATCH_TIMEOUT_S
        while pub.get_subscription_count() == 0:
            if time.monotonic() > deadline:
                return {"sent": 0, "error": f"no subscriber within {MATCH_TIMEOUT_S:.0f} s"}
            time.sleep(0.01)
        time.sleep(SETTLE_S)

        period = 1.0 / rate_hz
        late = 0
        max_late = 0.0
        t0 = time.perf_counter()
        t_first = t_last = t0
        for seq in range(count):
            due = t0 + seq * period  # absolute schedule: sleep overshoot does not accumulate
            remaining = due - time.perf_counter()
            while remaining > 0:
                time.sleep(remaining)
                remaining = due - time.perf_counter()
            msg = payloads[seq % len(payloads)]
            msg.header = make_header(time.time_ns(), str(seq))
            pub.publish(msg)
            t_last = time.perf_counter()
            if seq == 0:
                t_first = t_last
            behind = t_last - due
            max_late = max(max_late, behind)
            late += behind > period
        acked = None
        if qos == "reliable":
            acked = pub.wait_for_all_acked(Duration(seconds=5))
        return {"sent": count, "publish_span_s": t_last - t_first,
                "late_over_one_period": int(late), "max_late_ms": max_late * 1e3,
                "all_acked": acked}
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


# ---------------------------------------------------------------------------------------
# Parent: subscriber and statistics
# ---------------------------------------------------------------------------------------


def _run_case(rclpy, context, env: dict, kind: str, qos: str, rate_hz: float,
              duration_s: float) -> dict:
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.serialization import serialize_message

    from embodied_transfer.ros.conversions import make_header, stamp_to_ns

    sample = _payloads(kind, 1)[0]
    sample.header = make_header(time.time_ns(), str(round(rate_hz * duration_s) // 2))
    msg_bytes = len(serialize_message(sample))  # CDR payload size of one message

    recv_ns: list[int] = []
    stamp_ns: list[int] = []
    seqs: list[int] = []

    def on_msg(msg) -> None:
        now = time.time_ns()
        recv_ns.append(now)
        stamp_ns.append(stamp_to_ns(msg.header.stamp))
        seqs.append(int(msg.header.frame_id))

    node = rclpy.create_node(f"bench_subscriber_{kind}_{qos}", context=context,
                             enable_rosout=False, start_parameter_services=False)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    node.create_subscription(_msg_type(kind), _topic(kind, qos), on_msg, _qos(qos))
    cmd = [sys.executable, "-m", "bench.ros_transport", "--publish",
           kind, qos, repr(rate_hz), repr(duration_s)]
    errfile = tempfile.TemporaryFile("w+")  # a pipe could fill up and block the child
    child = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE,
                             stderr=errfile, text=True)
    try:
        hard_deadline = time.monotonic() + MATCH_TIMEOUT_S + duration_s + 30.0
        while child.poll() is None:
            if time.monotonic() > hard_deadline:
                raise TimeoutError(f"publisher for {kind}/{qos} did not finish")
            executor.spin_once(timeout_sec=0.05)
        last_count, idle_since = len(recv_ns), time.monotonic()
        while time.monotonic() - idle_since < DRAIN_IDLE_S:
            executor.spin_once(timeout_sec=0.05)
            if len(recv_ns) != last_count:
                last_count, idle_since = len(recv_ns), time.monotonic()
        out, _ = child.communicate(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
        executor.shutdown()
        node.destroy_node()
        errfile.seek(0)
        err = errfile.read()
        errfile.close()

    lines = [line for line in out.splitlines() if line.startswith("{")]
    if child.returncode != 0 or not lines:
        raise RuntimeError(f"publisher {kind}/{qos} failed (rc {child.returncode}): "
                           f"{(out + err).strip()[-800:]}")
    pub = json.loads(lines[-1])
    if pub.get("error"):
        raise RuntimeError(f"publisher {kind}/{qos}: {pub['error']}")

    sent, received = pub["sent"], len(recv_ns)
    latency_ms = (np.asarray(recv_ns, np.int64) - np.asarray(stamp_ns, np.int64)) / 1e6
    rx_span_s = (recv_ns[-1] - recv_ns[0]) / 1e9 if received > 1 else 0.0
    out_of_order = duplicates = 0
    highest = -1
    seen: set[int] = set()
    for seq in seqs:
        duplicates += seq in seen
        seen.add(seq)
        out_of_order += seq < highest
        highest = max(highest, seq)

    def rate(n: int, span: float) -> float | None:
        return round((n - 1) / span, 2) if n > 1 and span > 0 else None

    return {
        "kind": kind, "qos": qos, "topic": _topic(kind, qos),
        "target_rate_hz": rate_hz, "message_bytes": msg_bytes,
        "sent": sent, "received": received, "lost": sent - received,
        "publish_rate_hz": rate(sent, pub["publish_span_s"]),
        "receive_rate_hz": rate(received, rx_span_s),
        "mb_per_s": round(received * msg_bytes / rx_span_s / 1e6, 3) if rx_span_s else None,
        "latency_ms": {name: round(float(fn(latency_ms)), 3) if received else None
                       for name, fn in (("p50", lambda a: np.percentile(a, 50)),
                                        ("p99", lambda a: np.percentile(a, 99)),
                                        ("max", np.max), ("mean", np.mean))},
        "out_of_order": int(out_of_order), "duplicates": int(duplicates),
        "publisher": {k: pub[k] for k in ("late_over_one_period", "max_late_ms", "all_acked")},
    }


def run(duration_s: float = 5.0, domain_id: int | None = None) -> dict:
    """Run every case; returns ``{"domain_id", "duration_s", "cases": {name: stats}}``."""
    from embodied_transfer.ros.isolation import apply_isolation, pick_domain_id

    domain_id = pick_domain_id() if domain_id is None else domain_id
    env = apply_isolation(domain_id)  # before rclpy.init(); the children get the same env
    import rclpy

    context = rclpy.Context()
    rclpy.init(context=context)
    cases = {}
    try:
        for kind, rate_hz in CASES:
            for qos in QOS_NAMES:
                cases[f"{kind}_{rate_hz:g}hz_{qos}"] = _run_case(
                    rclpy, context, env, kind, qos, rate_hz, duration_s)
    finally:
        rclpy.try_shutdown(context=context)
    return {"domain_id": domain_id, "duration_s": duration_s,
            "image_shape": list(IMAGE_SHAPE), "cases": cases}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--publish", nargs=4, metavar=("KIND", "QOS", "RATE", "DURATION"),
                        help="child mode: publish KIND (imu|image) with QOS "
                             "(best_effort|reliable) at RATE Hz for DURATION s")
    parser.add_argument("--duration", type=float, default=5.0)
    args = parser.parse_args(argv)
    if args.publish:
        kind, qos, rate_hz, duration_s = args.publish
        if kind not in dict(CASES) or qos not in QOS_NAMES:
            parser.error(f"bad KIND/QOS: {kind} {qos}")
        result = publish(kind, qos, float(rate_hz), float(duration_s))
        print(json.dumps(result), flush=True)
        return 0 if result.get("sent") else 1
    print(json.dumps(run(args.duration), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
