"""``embodied-transfer``: bring up graphs in one process, record and replay bags.

Errors of the package's own types end the command with a one-line message and exit
status 2; Ctrl-C ends it cleanly with status 0.
"""
from __future__ import annotations

import argparse
import sys
import time
from typing import Sequence

from embodied_transfer.bringup import bring_up, domain_summary, graph
from embodied_transfer.errors import PACKAGE_ERRORS
from embodied_transfer.editing import commands as edit_commands
from embodied_transfer.grasp import commands as grasp_commands
from embodied_transfer.tactile import commands as tactile_commands
from embodied_transfer.ros.bags import STORAGES, BagReader, storage_plugin


def _graph_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--namespace", default="", help="namespace for every node")
    parser.add_argument("--params-file", help="ROS 2 parameter YAML applied over config/")
    parser.add_argument("--use-sim-time", action="store_true", help="nodes follow /clock")
    parser.add_argument("--duration", type=float, default=None,
                        help="stop after this many seconds (default: run until Ctrl-C)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="embodied-transfer", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    sim = sub.add_parser("sim", help="bring up the simulated graph in this process")
    sim.add_argument("--quiet", action="store_true", help="no status lines")
    sim.add_argument("--scene", choices=("squat", "tabletop"), default="squat",
                     help="squat: bridge + Real2Sim converter + phase classifier (graph 'sim'); "
                          "tabletop: bridge + grasp_reasoning in a grasp loop (graph "
                          "'grasp_sim')")
    sim.add_argument("--grasp-backend", choices=("tiny-vlm", "vlm", "cnn"),
                     help="tabletop: the grasp_reasoning backend (default: its config)")
    sim.add_argument("--grasp-refine", choices=("none", "cnn"),
                     help="tabletop: refine the text backend's grasps with the cnn "
                          "(grasp_reasoning's refine; default: its config)")
    _graph_args(sim)

    real2sim = sub.add_parser("real2sim", help="bring up the converter and the classifier "
                                                "(for a replayed bag or real sensors)")
    _graph_args(real2sim)

    replay = sub.add_parser("replay", help="play a rosbag2 bag with its recorded timing")
    replay.add_argument("bag")
    replay.add_argument("--rate", type=float, default=1.0, help="speed factor")
    replay.add_argument("--clock", action="store_true", help="publish /clock from bag time")
    replay.add_argument("--loop", action="store_true", help="play again at the end")
    replay.add_argument("--topics", nargs="+", default=[], help="only these topics")
    replay.add_argument("--delay", type=float, default=0.0, help="seconds before playing")
    replay.add_argument("--wait-for-subscribers", type=float, default=0.0, metavar="S",
                        help="wait up to S seconds for every topic to have a subscriber")
    _graph_args(replay)

    record = sub.add_parser("record", help="record topics into a new rosbag2 bag")
    record.add_argument("topics", nargs="+", metavar="TOPIC")
    record.add_argument("--out", required=True, help="bag directory to create")
    record.add_argument("--storage", default="sqlite3",
                        help=f"storage plugin: {' or '.join(STORAGES)}")
    _graph_args(record)

    info = sub.add_parser("info", help="print a bag's topics, types and counts")
    info.add_argument("bag")

    export = sub.add_parser("export-images", help="write a bag's sensor_msgs/Image frames as PNG")
    export.add_argument("bag")
    export.add_argument("--topic", required=True, help="an image topic of the bag")
    export.add_argument("--out", required=True, help="directory for NNNNNN.png files")
    _squat_parsers(sub)
    grasp_commands.add_parsers(sub)
    tactile_commands.add_parsers(sub)
    edit_commands.add_parsers(sub)
    return parser


def _squat_parsers(sub) -> None:
    squat = sub.add_parser("squat", help="squat data: simulate, convert real recordings, plot")
    commands = squat.add_subparsers(dest="squat_command", required=True)
    simulate = commands.add_parser("simulate", help="generate a simulated squat dataset (.npz)")
    simulate.add_argument("--squats", type=int, default=3000, help="episodes (one squat each)")
    simulate.add_argument("--reps", type=int, default=1, help="repetitions per episode")
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
                         (select, "development recordings (at least two; never the "
                                  "held-out one)")):
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


def _squat(args: argparse.Namespace) -> int:
    if args.squat_command == "simulate":
        from embodied_transfer.sim.dataset import generate
        from embodied_transfer.sim.episode import EpisodeConfig

        start = time.monotonic()
        dataset = generate(args.squats, seed=args.seed, workers=args.workers,
                           config=EpisodeConfig(reps=args.reps))
        path = dataset.save(args.out)
        elapsed = time.monotonic() - start
        print(f"wrote {path}: {dataset.episodes} episodes, {len(dataset.rep_frames)} squats, "
              f"{len(dataset.t)} frames at {dataset.meta['rate_hz']:.0f} Hz "
              f"({len(dataset.t) / dataset.meta['rate_hz'] / 3600:.2f} h) in {elapsed:.1f} s")
        return 0
    if args.squat_command == "csv2bag":
        from embodied_transfer.squat.csv2bag import csv2bag

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

        result = ev.evaluate(args.csv, args.models or DEFAULT_MODELS)
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
    from embodied_transfer.squat.real import read_real_csv
    from embodied_transfer.squat.train import TrainConfig

    recordings = [rec for path in args.real for rec in read_real_csv(path)]
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
    from embodied_transfer.squat.selection import leave_one_out, parse_variant, table
    from embodied_transfer.squat.signals import sim_episodes

    variants = dict(parse_variant(v) for v in args.variant)     # before any slow work
    recordings, dataset, cfg = _squat_training_data(args)
    result = leave_one_out(sim_episodes(dataset), recordings, variants, cfg)
    print(table(result))
    print(f"wrote {write_json(result, args.json)}")
    return 0


def _run_graph(name: str, args: argparse.Namespace, overrides: dict | None = None,
               until=None) -> int:
    """Bring up graph ``name``, spin until Ctrl-C, ``--duration`` or ``until(nodes)``."""
    from embodied_transfer.nodes.common import ros_context, spin_until

    specs = graph(name)
    started = monitor = None
    with ros_context():
        try:
            started = bring_up(specs, namespace=args.namespace, params_file=args.params_file,
                               use_sim_time=args.use_sim_time, overrides=overrides)
            print(f"graph '{name}' up ({domain_summary()}):")
            for spec, node in zip(specs, started.nodes):
                print(f"  {node.get_fully_qualified_name():<28} {spec.description}")
            sys.stdout.flush()
            if name in ("sim", "grasp_sim") and not args.quiet:
                from embodied_transfer.ros.monitor import GraspMonitor, SquatMonitor

                monitor = (SquatMonitor if name == "sim" else GraspMonitor)(
                    namespace=args.namespace)
                started.executor.add_node(monitor)
            future = until(started.nodes) if until else None
            deadline = None if args.duration is None else time.monotonic() + args.duration
            spin_until(started.executor,
                       lambda: (future is not None and future.done())
                       or (deadline is not None and time.monotonic() >= deadline),
                       period=0.05)
            if future is not None and future.done() and future.exception() is not None:
                raise future.exception()
        finally:
            if started is not None:
                started.shutdown()
            if monitor is not None:
                monitor.destroy_node()
    return 0


def _info(path: str) -> int:
    with BagReader(path) as bag:
        print(f"bag {bag.path}: {bag.duration_ns * 1e-9:.3f} s")
        counts = bag.message_counts
        for topic, msgtype in sorted(bag.topics.items()):
            print(f"  {topic:<32} {msgtype:<48} {counts[topic]}")
    return 0


def _export_images(path: str, topic: str, out: str) -> int:
    """Decode every Image on ``topic`` (package converter) and write it as a PNG."""
    from pathlib import Path

    import cv2
    from rclpy.serialization import deserialize_message
    from sensor_msgs.msg import Image

    from embodied_transfer.ros.bags import BagError
    from embodied_transfer.ros.conversions import convert_color, image_to_numpy

    out_dir = Path(out)
    with BagReader(path) as bag:
        bag.check_topics([topic])
        if bag.topics[topic] != "sensor_msgs/msg/Image":
            raise BagError(f"{topic} carries {bag.topics[topic]}, not sensor_msgs/msg/Image")
        out_dir.mkdir(parents=True, exist_ok=True)
        count = 0
        for count, message in enumerate(bag.messages([topic]), start=1):
            msg = deserialize_message(message.data, Image)
            array = image_to_numpy(msg)
            if msg.encoding == "rgb8":
                array = convert_color(array, "rgb8", "bgr8")  # OpenCV writes BGR
            cv2.imwrite(str(out_dir / f"{count:06d}.png"), array)
    print(f"wrote {count} image(s) to {out_dir}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "sim":
            if args.scene == "squat":
                return _run_graph("sim", args)
            chosen = {k: v for k, v in (("backend", args.grasp_backend),
                                        ("refine", args.grasp_refine)) if v}
            overrides = {"grasp_reasoning": chosen} if chosen else None
            return _run_graph("grasp_sim", args, overrides)
        if args.command == "real2sim":
            return _run_graph(args.command, args)
        if args.command == "replay":
            params = {"bag": args.bag, "rate": args.rate, "clock": args.clock,
                      "loop": args.loop, "topics": args.topics, "start_delay": args.delay,
                      "wait_for_subscribers": args.wait_for_subscribers}
            return _run_graph("replay", args, {"bag_player": params},
                              until=lambda nodes: nodes[0].finished)
        if args.command == "record":
            storage_plugin(args.storage)  # reject an unknown storage before starting ROS
            params = {"out": args.out, "storage": args.storage, "topics": args.topics}
            return _run_graph("record", args, {"bag_recorder": params})
        if args.command == "info":
            return _info(args.bag)
        if args.command == "export-images":
            return _export_images(args.bag, args.topic, args.out)
        if args.command == "squat":
            return _squat(args)
        if args.command == "grasp":
            return grasp_commands.run(args)
        if args.command == "tactile":
            return tactile_commands.run(args)
        if args.command in edit_commands.COMMANDS:
            return edit_commands.run(args)
    except PACKAGE_ERRORS as exc:
        print(f"embodied-transfer: error: {exc}", file=sys.stderr)
        return 2
    raise AssertionError(f"unhandled command {args.command}")


if __name__ == "__main__":
    sys.exit(main())

