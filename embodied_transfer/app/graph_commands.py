"""``embodied-transfer sim | real2sim | replay | record``: bring up a graph in this process.

Also the helpers every ``serve`` command uses (:func:`graph_args`, :func:`run_graph`).
"""
from __future__ import annotations

import argparse
import sys
import time

from embodied_transfer.app.bringup import bring_up, domain_summary, graph, uses_sim_time
from embodied_transfer.core.runtime import NODE_TORCH_THREADS, configure_process
from embodied_transfer.grasp.backends import BACKENDS, REFINERS
from embodied_transfer.ros.bags import STORAGES, storage_plugin


def graph_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--namespace", default="", help="namespace for every node")
    parser.add_argument("--params-file", help="ROS 2 parameter YAML applied over config/")
    parser.add_argument("--use-sim-time", action=argparse.BooleanOptionalAction, default=None,
                        help="nodes follow /clock (default: yes in the sim graphs, whose "
                             "bridge publishes it; no otherwise)")
    parser.add_argument("--duration", type=float, default=None,
                        help="stop after this many seconds (default: run until Ctrl-C)")


def add_parsers(sub) -> None:
    """``sim``, ``real2sim``, ``replay`` and ``record`` on the top-level subparsers."""
    sim = sub.add_parser("sim", help="bring up the simulated graph in this process")
    sim.add_argument("--quiet", action="store_true", help="no status lines")
    sim.add_argument("--scene", choices=("squat", "tabletop"), default="squat",
                     help="squat: bridge + Real2Sim converter + phase classifier (graph 'sim'); "
                          "tabletop: bridge + grasp_reasoning in a grasp loop (graph "
                          "'grasp_sim')")
    sim.add_argument("--grasp-backend", choices=BACKENDS,
                     help="tabletop: the grasp_reasoning backend (default: its config)")
    sim.add_argument("--grasp-refine", choices=REFINERS,
                     help="tabletop: refine the text backend's grasps with the cnn "
                          "(grasp_reasoning's refine; default: its config)")
    graph_args(sim)
    sim.set_defaults(run=_sim)

    real2sim = sub.add_parser("real2sim", help="bring up the converter and the classifier "
                                                "(for a replayed bag or real sensors)")
    graph_args(real2sim)
    real2sim.set_defaults(run=lambda args: run_graph("real2sim", args))

    replay = sub.add_parser("replay", help="play a rosbag2 bag with its recorded timing")
    replay.add_argument("bag")
    replay.add_argument("--rate", type=float, default=1.0, help="speed factor")
    replay.add_argument("--clock", action="store_true", help="publish /clock from bag time")
    replay.add_argument("--loop", action="store_true", help="play again at the end")
    replay.add_argument("--topics", nargs="+", default=[], help="only these topics")
    replay.add_argument("--delay", type=float, default=0.0, help="seconds before playing")
    replay.add_argument("--wait-for-subscribers", type=float, default=0.0, metavar="S",
                        help="wait up to S seconds for every topic to have a subscriber")
    graph_args(replay)
    replay.set_defaults(run=_replay)

    record = sub.add_parser("record", help="record topics into a new rosbag2 bag")
    record.add_argument("topics", nargs="+", metavar="TOPIC")
    record.add_argument("--out", required=True, help="bag directory to create")
    record.add_argument("--storage", default="sqlite3",
                        help=f"storage plugin: {' or '.join(STORAGES)}")
    graph_args(record)
    record.set_defaults(run=_record)


def _sim(args: argparse.Namespace) -> int:
    if args.scene == "squat":
        return run_graph("sim", args)
    chosen = {k: v for k, v in (("backend", args.grasp_backend),
                                ("refine", args.grasp_refine)) if v}
    return run_graph("grasp_sim", args, {"grasp_reasoning": chosen} if chosen else None)


def _replay(args: argparse.Namespace) -> int:
    params = {"bag": args.bag, "rate": args.rate, "clock": args.clock,
              "loop": args.loop, "topics": args.topics, "start_delay": args.delay,
              "wait_for_subscribers": args.wait_for_subscribers}
    return run_graph("replay", args, {"bag_player": params},
                     until=lambda nodes: nodes[0].finished)


def _record(args: argparse.Namespace) -> int:
    storage_plugin(args.storage)  # reject an unknown storage before starting ROS
    params = {"out": args.out, "storage": args.storage, "topics": args.topics}
    return run_graph("record", args, {"bag_recorder": params})


def run_graph(name: str, args: argparse.Namespace, overrides: dict | None = None,
               until=None) -> int:
    """Bring up graph ``name``, spin until Ctrl-C, ``--duration`` or ``until(nodes)``."""
    from embodied_transfer.nodes.common import ros_context, spin_until

    configure_process(torch_threads=NODE_TORCH_THREADS)     # the graph's nodes share it
    specs = graph(name)
    started = monitor = None
    with ros_context():
        try:
            sim_time = uses_sim_time(name) if args.use_sim_time is None else args.use_sim_time
            started = bring_up(specs, namespace=args.namespace, params_file=args.params_file,
                               use_sim_time=sim_time, overrides=overrides)
            print(f"graph '{name}' up ({domain_summary()}):")
            for spec, node in zip(specs, started.nodes):
                print(f"  {node.get_fully_qualified_name():<28} {spec.description}")
            sys.stdout.flush()
            if name in ("sim", "grasp_sim") and not args.quiet:
                from embodied_transfer.app.monitor import GraspMonitor, SquatMonitor

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
