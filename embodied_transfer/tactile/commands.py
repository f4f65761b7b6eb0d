"""``embodied-transfer tactile ...``: train, evaluate (argparse glue)."""
from __future__ import annotations

import json
from pathlib import Path

from embodied_transfer.tactile.errors import TactileError


def add_parsers(sub) -> None:
    """The ``tactile`` command group on the top-level subparsers."""
    from embodied_transfer.tactile.train import add_arguments

    tactile = sub.add_parser("tactile", help="tactile alignment (glove ↔ robot hand): "
                                             "training, evaluation")
    tsub = tactile.add_subparsers(dest="tactile_command", required=True)
    train = tsub.add_parser("train", help="simulate paired/unpaired grasp data and train the "
                                          "alignment model (two stages)")
    add_arguments(train)
    evaluate = tsub.add_parser("evaluate", help="retrieval, reconstruction and transfer "
                                                "accuracy on held-out simulated grasps")
    evaluate.add_argument("--json", required=True, help="write the metrics here")
    evaluate.add_argument("--png", help="draw UV maps of a glove frame, the matching robot "
                                        "frame and the converted frame here")
    evaluate.add_argument("--model", default="", help="checkpoint dir (default: shipped)")
    evaluate.add_argument("--episodes", type=int, default=160, help="held-out grasps")
    serve = tsub.add_parser("serve", help="bring up tactile_alignment (graph 'tactile')")
    from embodied_transfer.cli import _graph_args

    _graph_args(serve)


def run(args) -> int:
    """Dispatch ``embodied-transfer tactile <command>``."""
    if args.tactile_command == "train":
        from embodied_transfer.tactile import DEFAULT_MODEL
        from embodied_transfer.tactile.train import (config_from_args, given_options,
                                                     model_config_from_args, train)

        out = args.out or DEFAULT_MODEL
        result = train(out, config_from_args(args), model_config_from_args(args),
                       show=not args.quiet,
                       command=f"embodied-transfer tactile train --out {out} "
                               f"{given_options(args)}")
        print(f"wrote {result['out']} in {result['seconds']:.0f} s")
        return 0
    if args.tactile_command == "evaluate":
        from embodied_transfer.tactile.evaluate import evaluate

        result = evaluate(args.model or None, episodes=args.episodes, png=args.png)
        t = result["transfer_accuracy"]
        print(f"retrieval top-1 {result['retrieval_top1'] * 100:.1f} % / top-5 "
              f"{result['retrieval_top5'] * 100:.1f} % ({result['retrieval_gallery']} pairs), "
              f"reconstruction MAE {result['reconstruction_error']:.4f}; transfer accuracy "
              + ", ".join(f"{k} {v * 100:.1f} %" for k, v in t.items()))
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.json}" + (f" and {args.png}" if args.png else ""))
        return 0
    if args.tactile_command == "serve":
        from embodied_transfer.cli import _run_graph

        return _run_graph("tactile", args)
    raise TactileError(f"unknown tactile command {args.tactile_command!r}")
