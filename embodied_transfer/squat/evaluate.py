"""``squat evaluate``: the sim-trained classifier on real recordings, raw and converted.

For each recording and each condition (``raw``: real frames as they are; ``vae``: through
the plain-VAE converter; ``proposed``: through the multi-encoder VAE) it computes frame
accuracy on Down/Up frames (Stop excluded, as published), 3-class accuracy, and the
repetitions counted; pooled over all frames of all recordings given. Predictions are
those the nodes publish: the classifier's output through its phase filter (when the
checkpoint has one); ``accuracy_unfiltered`` is the per-window argmax without it. Plots:
confusion matrices per condition and a timeline of predicted against true phases.

Each recording goes through :func:`~embodied_transfer.squat.placement.run_any_placement`
(unless ``placement_check`` is off): a recording without UWB takes the IMU-only path, and a
phone above the wrist is recognised from the data and its range mirrored. Each file's row
says which path the proposed pipeline took (``mode``: uwb / imu_only; ``placement``:
below / above, "" without UWB).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from embodied_transfer.squat.config import MIN_REP, MIN_RUN
from embodied_transfer.squat.errors import SquatDataError
from embodied_transfer.squat.phases import PHASE_NAMES, STOP, count_repetitions
from embodied_transfer.squat.pipeline import DEFAULT_MODELS, RepCounter, load_pipelines
from embodied_transfer.squat.placement import run_any_placement
from embodied_transfer.squat.real import read_real_csv
from embodied_transfer.squat.signals import real_recording

CONDITIONS = ("raw", "vae", "proposed")


def confusion(truth: np.ndarray, pred: np.ndarray, n: int = 3) -> np.ndarray:
    m = np.zeros((n, n), dtype=np.int64)
    np.add.at(m, (truth, pred), 1)
    return m


def evaluate(csv_paths: list[str | Path], models: str | Path = DEFAULT_MODELS,
             min_run: int = MIN_RUN, min_rep: int = MIN_REP,
             placement_check: bool = True) -> dict:
    """The evaluation record (see the module docstring) for ``csv_paths``."""
    recordings = [rec for path in csv_paths for rec in read_real_csv(path)]
    return {**score(load_pipelines(models), recordings, min_run, min_rep, placement_check),
            "models": str(models)}


def score(pipelines: dict, recordings: list, min_run: int = MIN_RUN,
          min_rep: int = MIN_REP, placement_check: bool = True) -> dict:
    """The evaluation record of ``pipelines`` (condition → :class:`~.pipeline.Pipeline`,
    e.g. from :func:`~.pipeline.load_pipelines`) on parsed real recordings."""
    truth_all, preds_all = [], {c: [] for c in CONDITIONS}
    unfiltered_all = {c: [] for c in CONDITIONS}
    reps, timelines = [], []
    for rec in recordings:
        x, y = real_recording(rec)
        truth_all.append(y)
        row = {"file": rec.source, "true": count_repetitions(y)}
        timeline = {"file": rec.source, "t": rec.t - rec.t[0], "truth": y}
        if not placement_check and rec.uwb.size == 0:
            raise SquatDataError(f"recording {rec.source} has no UWB reading; only the "
                                 "placement check's IMU-only path can score it")
        for name in CONDITIONS:
            if placement_check:
                _, probs, path = run_any_placement(pipelines[name], x, filtered=False)
            else:
                probs, path = pipelines[name].run(x, filtered=False)[1], None
            if name == "proposed":
                row["mode"] = path.mode if path else "uwb"
                row["placement"] = path.placement if path else "below"
            unfiltered_all[name].append(probs.argmax(axis=1))
            pred = pipelines[name].filter(probs).argmax(axis=1)
            preds_all[name].append(pred)
            timeline[name] = pred
            counter = RepCounter(min_run, min_rep)
            row[f"counted_{name}"] = counter.count_all(pred)
            row[f"suppressed_{name}"] = counter.suppressed
        row["counted"] = row["counted_proposed"]
        reps.append(row)
        timelines.append(timeline)
    truth = np.concatenate(truth_all)
    moving = truth != STOP
    result = {"accuracy": {}, "accuracy_3class": {}, "accuracy_unfiltered": {},
              "confusion": {}, "reps": reps,
              "frames": int(len(truth)), "moving_frames": int(moving.sum()),
              "phase_filters": {c: pipelines[c].phase_filter.settings
                                if pipelines[c].phase_filter else None for c in CONDITIONS}}
    for name in CONDITIONS:
        pred = np.concatenate(preds_all[name])
        result["accuracy"][name] = float(np.mean(pred[moving] == truth[moving]))
        raw_pred = np.concatenate(unfiltered_all[name])
        result["accuracy_unfiltered"][name] = float(np.mean(raw_pred[moving] == truth[moving]))
        result["accuracy_3class"][name] = float(np.mean(pred == truth))
        result["confusion"][name] = confusion(truth, pred).tolist()
    result["_timelines"] = timelines
    return result


def table(result: dict) -> str:
    lines = [f"{'condition':<10}{'Down/Up acc':>12}{'3-class acc':>12}{'unfiltered':>12}",
             *(f"{c:<10}{result['accuracy'][c] * 100:>11.2f}%"
               f"{result['accuracy_3class'][c] * 100:>11.2f}%"
               f"{result['accuracy_unfiltered'][c] * 100:>11.2f}%" for c in CONDITIONS),
             "", f"{'recording':<48}{'true':>5}" + "".join(f"{c:>10}" for c in CONDITIONS)]
    lines[-1] += "  path"
    for r in result["reps"]:
        lines.append(f"{r['file']:<48}{r['true']:>5}"
                     + "".join(f"{r['counted_' + c]:>10}" for c in CONDITIONS)
                     + f"  {r['mode']}{' ' + r['placement'] if r['placement'] else ''}")
    return "\n".join(lines)


def plot(result: dict, out_dir: str | Path) -> list[Path]:
    """confusion.png and timeline.png (the first recording) under ``out_dir``."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    for ax, name in zip(axes, CONDITIONS):
        m = np.asarray(result["confusion"][name], dtype=float)
        rates = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
        ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
        for i in range(3):
            for j in range(3):
                ax.text(j, i, f"{rates[i, j]:.2f}\n({int(m[i, j])})", ha="center", va="center",
                        color="white" if rates[i, j] > 0.5 else "black", fontsize=8)
        ax.set_xticks(range(3), PHASE_NAMES)
        ax.set_yticks(range(3), PHASE_NAMES)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"{name}: Down/Up {result['accuracy'][name] * 100:.1f}%", fontsize=10)
    fig.tight_layout()
    confusion_png = out_dir / "confusion.png"
    fig.savefig(confusion_png, dpi=100)
    plt.close(fig)

    tl = result["_timelines"][0]
    fig, ax = plt.subplots(figsize=(14, 3.6))
    rows = ["truth", *CONDITIONS]
    for k, name in enumerate(rows):
        ax.scatter(tl["t"], np.full(len(tl["t"]), len(rows) - 1 - k) + 0.25 * (tl[name] - 1),
                   c=np.asarray(tl[name]), cmap="viridis", vmin=0, vmax=2, s=3)
    ax.set_yticks(range(len(rows)), list(reversed(rows)))
    ax.set_xlabel("time [s]")
    ax.set_title(f"{Path(tl['file']).name}: phase per frame (offset within a row: "
                 "Stop low, Down middle, Up high)", fontsize=10)
    fig.tight_layout()
    timeline_png = out_dir / "timeline.png"
    fig.savefig(timeline_png, dpi=100)
    plt.close(fig)
    return [confusion_png, timeline_png]


def write_json(result: dict, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    public = {k: v for k, v in result.items() if not k.startswith("_")}
    path.write_text(json.dumps(public, indent=2) + "\n")
    return path
