"""Real2Sim on real recordings: accuracy of the shipped models, per-frame latency, 10× replay.

* ``accuracy``: ``squat evaluate`` on each development recording (recordings 1 and 2 were
  used to fine-tune the content encoder; 3 is held out) and targets: proposed ≥ 85 % on
  held-out Down/Up frames, raw < vae < proposed, repetition counts exact. Predictions go
  through the classifier's phase filter, as the nodes publish them;
  ``accuracy_unfiltered`` is the per-window argmax. The held-out recording is also scored
  with its UWB range mirrored (a phone above the wrist), held constant and absent
  (``squat.selection.UWB_STRESS``), through the placement check of ``squat evaluate``
  (IMU-only path, mirrored range recognised) and, for reference, without it. Targets:
  proposed ≥ 80 % mirrored and absent, counts within one repetition without UWB.
* ``simulated_placements``: the phone in each simulated place (``sim.squat.PHONE_PLACES``),
  8 episodes of 4 repetitions each: how often the placement check's answer (below / above)
  agrees with the sign of the range trend over the *true* phases, and the sim-trained
  classifier's Down/Up accuracy on the simulated signals with and without the check (no
  target; the converters are for real signals, so the raw pipeline is used).
* ``latency``: converter + classifier per frame, as the nodes run them (online streams,
  NumPy inference), over a whole recording; target p99 ≤ 2 ms.
* ``replay_10x``: the recording's bag played at 10× through ``real2sim_converter`` and
  ``squat_phase_classifier`` in one process; frames in vs labels out (target: none lost).
"""
from __future__ import annotations

from embodied_transfer.squat.data import real_squat_dir

import tempfile
import time
from pathlib import Path

import numpy as np

REAL = real_squat_dir()
HELD_OUT = "recording_3.csv"
TABLE_COLUMNS = (("Down/Up raw", "accuracy.raw"), ("vae", "accuracy.vae"),
                 ("proposed", "accuracy.proposed"),
                 ("unfiltered", "accuracy_unfiltered.proposed"), ("reps true", "reps_true"),
                 ("reps counted", "reps_counted"), ("p50 ms", "p50_ms"), ("p99 ms", "p99_ms"),
                 ("frames in", "frames_in"), ("labels out", "labels_out"))


def _case(r: dict) -> dict:
    return {"accuracy": r["accuracy"], "accuracy_3class": r["accuracy_3class"],
            "accuracy_unfiltered": r["accuracy_unfiltered"],
            "reps_true": r["reps"][0]["true"], "reps_counted": r["reps"][0]["counted"],
            "mode": r["reps"][0]["mode"],
            "reps_counted_all": {k: r["reps"][0][f"counted_{k}"] for k in r["accuracy"]}}


def accuracy() -> dict:
    from embodied_transfer.squat.evaluate import evaluate, score
    from embodied_transfer.squat.pipeline import load_pipelines
    from embodied_transfer.squat.real import load_real_csv
    from embodied_transfer.squat.selection import UWB_STRESS, uwb_stressed

    cases = {}
    for path in sorted(REAL.glob("recording_*.csv")):
        cases[path.name + (" (held out)" if path.name == HELD_OUT else " (fine-tuning)")] = \
            _case(evaluate([path]))
    pipelines, held_rec = load_pipelines(), load_real_csv(REAL / HELD_OUT)
    for mode in UWB_STRESS:
        stressed = uwb_stressed(held_rec, mode)
        cases[f"{HELD_OUT} (held out), {mode}"] = _case(score(pipelines, [stressed]))
        if mode != "uwb_absent":
            cases[f"{HELD_OUT} (held out), {mode}, no placement check"] = _case(
                score(pipelines, [stressed], placement_check=False))
    held = cases[f"{HELD_OUT} (held out)"]
    acc = held["accuracy"]
    mirrored = cases[f"{HELD_OUT} (held out), uwb_mirrored"]
    absent = cases[f"{HELD_OUT} (held out), uwb_absent"]
    targets = {"proposed_ge_85": acc["proposed"] >= 0.85,
               "ordering": acc["raw"] < acc["vae"] < acc["proposed"],
               "reps_exact": held["reps_true"] == held["reps_counted"],
               "mirrored_proposed_ge_80": mirrored["accuracy"]["proposed"] >= 0.80,
               "absent_proposed_ge_80": absent["accuracy"]["proposed"] >= 0.80,
               "absent_reps_within_1": abs(absent["reps_true"] - absent["reps_counted"]) <= 1}
    return cases, targets


def simulated_placements(episodes: int = 8, reps: int = 4) -> dict:
    from embodied_transfer.sim.episode import EpisodeConfig, simulate_episode
    from embodied_transfer.sim.squat import PHONE_PLACES
    from embodied_transfer.squat.phases import STOP
    from embodied_transfer.squat.pipeline import load_pipelines
    from embodied_transfer.squat.placement import range_trend, run_any_placement
    from embodied_transfer.squat.signals import stack

    raw = load_pipelines()["raw"]
    out = {}
    for place in PHONE_PLACES:
        config = EpisodeConfig(reps=reps, phone_places=(place,))
        agree, truth_above, checked, plain, swing = 0, 0, [], [], []
        for i in range(episodes):
            ep = simulate_episode(np.random.SeedSequence(100, spawn_key=(i,)), config)
            x, y = stack(ep.accel - ep.gravity, ep.gyro, ep.uwb_at_imu), ep.phase.astype(int)
            above = range_trend(x[:, 6], y) > 0
            _, probs, path = run_any_placement(raw, x)
            agree += path.placement == ("above" if above else "below")
            truth_above += above
            moving = y != STOP
            checked.append(float(np.mean(probs.argmax(1)[moving] == y[moving])))
            plain.append(float(np.mean(raw.run(x)[1].argmax(1)[moving] == y[moving])))
            swing.append(float(np.ptp(x[:, 6])))
        out[place] = {"episodes": episodes, "truly_above": int(truth_above),
                      "placement_told": int(agree),
                      "accuracy_checked": float(np.mean(checked)),
                      "accuracy_as_recorded": float(np.mean(plain)),
                      "uwb_swing_m": float(np.median(swing))}
    return out


def latency(path: Path) -> dict:
    import torch

    from embodied_transfer.squat.online import ClassifierStream, ConverterStream
    from embodied_transfer.squat.pipeline import DEFAULT_MODELS, Classifier, Converter
    from embodied_transfer.squat.real import load_real_csv
    from embodied_transfer.squat.signals import real_recording

    torch.set_num_threads(1)
    x, _ = real_recording(load_real_csv(path))
    conv = ConverterStream(Converter.load(DEFAULT_MODELS / "multi_encoder_vae"))
    cls = ClassifierStream(Classifier.load(DEFAULT_MODELS / "classifier"))
    times = []
    for i, frame in enumerate(x):
        start = time.perf_counter()
        sim = conv.push(i * 50_000_000, frame)
        cls.push(i * 50_000_000, sim)
        times.append(time.perf_counter() - start)
    ms = np.asarray(times[20:]) * 1e3          # after warm-up
    return {"frames": len(x), "p50_ms": float(np.percentile(ms, 50)),
            "p99_ms": float(np.percentile(ms, 99)), "max_ms": float(ms.max()),
            "target_p99_ms": 2.0, "target_met": bool(np.percentile(ms, 99) <= 2.0)}


def replay_10x(path: Path) -> dict:
    import rclpy
    from embodied_transfer_interfaces.msg import SquatPhase

    from embodied_transfer.app import bringup
    from embodied_transfer.ros.bags import BagReader
    from embodied_transfer.ros.isolation import apply_isolation
    from embodied_transfer.ros.qos import BAG_QOS
    from embodied_transfer.app.csv2bag import csv2bag

    apply_isolation(None)
    with tempfile.TemporaryDirectory() as tmp:
        bag = Path(tmp) / "bag"
        csv2bag([path], bag)
        with BagReader(bag) as reader:
            frames = reader.message_counts["/imu"]
        rclpy.init()
        started = None
        try:
            labels = []
            listener = rclpy.create_node("replay_listener")
            listener.create_subscription(SquatPhase, "squat/phase", labels.append, BAG_QOS)
            started = bringup.bring_up(
                [bringup.REAL2SIM_CONVERTER, bringup.SQUAT_PHASE_CLASSIFIER, bringup.BAG_PLAYER],
                overrides={"bag_player": {"bag": str(bag), "rate": 10.0,
                                          "topics": ["/imu", "/uwb/range"],
                                          "wait_for_subscribers": 10.0}})
            started.executor.add_node(listener)
            player = started.nodes[-1]
            start = time.monotonic()
            while not player.finished.done() and time.monotonic() - start < 120:
                started.executor.spin_once(timeout_sec=0.05)
            end = time.monotonic() + 3.0          # classifier flushes after 1 s of silence
            while time.monotonic() < end and len(labels) < frames:
                started.executor.spin_once(timeout_sec=0.05)
            return {"frames_in": frames, "labels_out": len(labels),
                    "lost": frames - len(labels), "play_s": round(time.monotonic() - start, 2),
                    "target_met": len(labels) == frames}
        finally:
            if started is not None:
                started.shutdown()
            rclpy.shutdown()


def run() -> dict:
    if not REAL.is_dir():
        return {"error": f"real recordings not found at {REAL}"}
    cases, targets = accuracy()
    cases["simulated phone places (sim-trained classifier)"] = simulated_placements()
    cases["latency (recording_3, online streams)"] = latency(REAL / HELD_OUT)
    cases["replay 10x through the nodes (recording_3)"] = replay_10x(REAL / HELD_OUT)
    return {"cases": cases, "targets": targets}
