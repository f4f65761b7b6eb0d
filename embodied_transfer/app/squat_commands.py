"""``embodied-transfer squat ...``: simulate, csv2bag, plot, train, select, evaluate."""
from __future__ import annotations

import argparse
import sys
import time

from embodied_transfer.ros.bags import STORAGES, storage_plugin


def add_parsers(sub) -> None:
    """The ``squat`` command group on the top-level subparsers."""
    squat = sub.add_parser("squat", help="squat data: simulate, convert real recordings, plot")
    squat.set_defaults(run=run)
    commands = squat.add_subparsers(dest="squat_command", required=True)
    simulate = commands.add_parser("simulate", help="generate a simulated squat dataset (.npz)")
    simulate.add_argument("--squats", type=int, default=3000, help="episodes (one squat each)")
    simulate.add_argument("--reps", type=int, default=1, help="repetitions per episode")
    simulate.add_argument("--phone-places", nargs="+", default=[], metavar="PLACE",
                          help="where the phone may be, drawn uniformly per episode: floor, "
                               "table, bench, shelf, pocket, hand (default: the recording "
                               "app's setup, floor or sometimes a table)")
    simulate.add_argument("--seed", type=int, default=0)
    simulate.add_argument("--workers", type=int, default=None,
                          help="processes (default: all cores)")
    simulate.add_argument("--out", required=True, help="output file (.npz)")

    to_bag = commands.add_parser("csv2bag", help="convert real recordings (CSV) into a rosbag2 bag")
    to_bag.add_argument("csv", nargs="+", metavar="CSV")
    to_bag.add_argument("--out", required=True, help="bag directory to create")
    to_bag.add_argument("--storage", default="sqlite3",
                        help=f"storage plugin: {' or '.join(STORAGES)}")

    plot = commands.add_parser("plot", help="draw simulated and real signals side by side (PNG)")
    plot.add_argument("--csv", required=True, help="a real recording (CSV)")
    plot.add_argument("--sim", help="a simulated dataset (.npz); default: simulate --sim-reps "
                                    "repetitions with --seed")
    plot.add_argument("--seed", type=int, default=0)
    plot.add_argument("--sim-reps", type=int, default=6)
    plot.add_argument("--seconds", type=float, default=40.0, help="time shown of each")
    plot.add_argument("--out", required=True, help="PNG file")

    train = commands.add_parser("train", help="train the classifier and both converters")
    select = commands.add_parser("select", help="leave-one-out between real recordings: "
                                                "fine-tuning variants scored on the left-out one")
    for p, real_help in ((train, "real recordings for fine-tuning the content encoder"),
                         (select, "development recordings (at least two), each left out "
                                  "in turn")):
        p.add_argument("--real", nargs="+", required=True, metavar="CSV", help=real_help)
        p.add_argument("--sim", help="simulated dataset (.npz); default: simulate --sim-squats")
        p.add_argument("--sim-squats", type=int, default=3000)
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--steps-scale", type=float, default=1.0,
                       help="multiply every stage's steps (0.1 for a quick run)")
        for side, where, default in (("past", "before", 10), ("future", "after", 5)):
            p.add_argument(f"--cls-{side}", type=_frame_count, default=None, metavar="N",
                           help=f"classifier window: frames {where} the labelled one "
                                f"(default {default}, the authors' choice at 20 Hz)")
    train.add_argument("--out", required=True, help="models directory to write")
    select.add_argument("--variant", action="append", default=[], metavar="NAME:FIELD=V,...",
                        help="fine-tuning settings to compare with the default (repeatable)")
    select.add_argument("--json", required=True, help="result file to write")

    evaluate = commands.add_parser("evaluate", help="phase accuracy on real recordings: raw, "
                                                    "plain VAE, multi-encoder VAE")
    evaluate.add_argument("--csv", nargs="+", required=True, metavar="CSV")
    evaluate.add_argument("--json", required=True, help="result file to write")
    evaluate.add_argument("--models", default=None,
                          help="models directory (default: the package's shipped models)")
    evaluate.add_argument("--plots", default=None,
                          help="directory for confusion.png and timeline.png "
                               "(default: beside --json)")
    evaluate.add_argument("--no-placement-check", dest="placement_check", action="store_false",
                          help="feed the UWB range as recorded (no IMU-only path, no "
                               "phone-above-the-wrist check)")


def run(args: argparse.Namespace) -> int:
    """Dispatch ``embodied-transfer squat <command>``."""
    if args.squat_command == "simulate":
        from embodied_transfer.sim.dataset import generate
        from embodied_transfer.sim.episode import EpisodeConfig

        start = time.monotonic()
        dataset = generate(args.squats, seed=args.seed, workers=args.workers,
                           config=EpisodeConfig(reps=args.reps,
                                                phone_places=tuple(args.phone_places)))
        path = dataset.save(args.out)
        elapsed = time.monotonic() - start
        print(f"wrote {path}: {dataset.episodes} episodes, {len(dataset.rep_frames)} squats, "
              f"{len(dataset.t)} frames at {dataset.meta['rate_hz']:.0f} Hz "
              f"({len(dataset.t) / dataset.meta['rate_hz'] / 3600:.2f} h) in {elapsed:.1f} s")
        return 0
    if args.squat_command == "csv2bag":
        from embodied_transfer.app.csv2bag import csv2bag

        storage_plugin(args.storage)
        print(csv2bag(args.csv, args.out, storage=args.storage).summary())
        return 0
    if args.squat_command == "plot":
        from embodied_transfer.squat.plots import compare_domains

        out, gap = compare_domains(args.csv, args.out, sim_path=args.sim, seed=args.seed,
                                   sim_reps=args.sim_reps, seconds=args.seconds)
        print(f"wrote {out}")
        print(f"{'channel':<10}{'sim mean':>10}{'sim std':>10}{'real mean':>11}{'real std':>10}")
        for name, row in gap.items():
            print(f"{name:<10}{row['sim_mean']:>10.3f}{row['sim_std']:>10.3f}"
                  f"{row['real_mean']:>11.3f}{row['real_std']:>10.3f}")
        return 0
    if args.squat_command == "train":
        return _squat_train(args)
    if args.squat_command == "select":
        return _squat_select(args)
    if args.squat_command == "evaluate":
        from pathlib import Path

        from embodied_transfer.squat import evaluate as ev
        from embodied_transfer.squat.pipeline import DEFAULT_MODELS

        result = ev.evaluate(args.csv, args.models or DEFAULT_MODELS,
                             placement_check=args.placement_check)
        print(ev.table(result))
        print(f"wrote {ev.write_json(result, args.json)}")
        for png in ev.plot(result, args.plots or Path(args.json).parent):
            print(f"wrote {png}")
        return 0
    raise AssertionError(f"unhandled squat command {args.squat_command}")


def _frame_count(text: str) -> int:
    """A whole number of frames, 0 or more (an argparse type)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a whole number of frames >= 0, got {text!r}")
    return value


def _squat_training_data(args: argparse.Namespace):
    """What ``squat train`` and ``squat select`` share: the parsed real recordings, the
    simulated dataset and the TrainConfig with ``--seed``, ``--cls-past`` / ``--cls-future``
    and ``--steps-scale`` applied."""
    from dataclasses import fields

    from embodied_transfer.sim.dataset import SquatDataset, generate
    from embodied_transfer.squat.errors import SquatDataError
    from embodied_transfer.squat.real import read_real_csv
    from embodied_transfer.squat.train import TrainConfig

    recordings = [rec for path in args.real for rec in read_real_csv(path)]
    for rec in recordings:
        if rec.uwb.size == 0:
            raise SquatDataError(f"recording {rec.source} has no UWB reading; the converters "
                                 "are fine-tuned on watch + UWB recordings")
    dataset = (SquatDataset.load(args.sim) if args.sim
               else generate(args.sim_squats, seed=args.seed))
    cfg = TrainConfig(seed=args.seed)
    for name in ("cls_past", "cls_future"):
        if (value := getattr(args, name)) is not None:
            setattr(cfg, name, value)
    for f in fields(cfg):
        if f.name.endswith("_steps"):
            setattr(cfg, f.name, max(1, int(getattr(cfg, f.name) * args.steps_scale)))
    return recordings, dataset, cfg


def _squat_train(args: argparse.Namespace) -> int:
    from embodied_transfer.squat.signals import real_recording, sim_episodes
    from embodied_transfer.squat.train import train_all

    recordings, dataset, cfg = _squat_training_data(args)
    real = [real_recording(rec) for rec in recordings]
    provenance = {"command": "embodied-transfer " + " ".join(sys.argv[1:]),
                  "sim_data": {"source": args.sim or f"simulated, seed {args.seed}",
                               "episodes": dataset.episodes, "frames": int(len(dataset.t))},
                  "real_data": [str(p) for p in args.real]}
    paths = train_all(sim_episodes(dataset), real, args.out, cfg, provenance)
    for name, path in paths.items():
        print(f"{name:<18} {path}")
    return 0


def _squat_select(args: argparse.Namespace) -> int:
    from embodied_transfer.squat.evaluate import write_json
    from embodied_transfer.squat.selection import (leave_one_out, parse_variant,
                                                  per_condition, recipe, table)
    from embodied_transfer.squat.signals import sim_episodes

    variants = dict(parse_variant(v) for v in args.variant)     # before any slow work
    recordings, dataset, cfg = _squat_training_data(args)
    result = leave_one_out(sim_episodes(dataset), recordings, variants, cfg)
    result["per_condition"] = per_condition(result)
    result["recipe"] = recipe(result)
    print(table(result))
    print(f"wrote {write_json(result, args.json)}")
    return 0
