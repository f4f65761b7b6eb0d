"""``embodied-transfer tactile ...``: train, evaluate, skill, serve (argparse glue)."""
from __future__ import annotations

import argparse
import math

from embodied_transfer.app.graph_commands import graph_args, run_graph
from embodied_transfer.app.output import write_json
from embodied_transfer.tactile.errors import TactileError
from embodied_transfer.tactile.layouts import SHADOW, SHADOW_GRID
from embodied_transfer.tactile.models import ENCODERS, ModelConfig
from embodied_transfer.tactile.train import SOURCES, TrainConfig, model_config_for

SOURCE_HELP = ("where the paired frames come from: patches (synthetic contact patches; "
               "glove, robot_hand_1062, fingertips_5x40) or mujoco (the Shadow Hand grasping "
               "objects; glove and shadow_grid_600 or shadow_palmar_62)")


def add_parsers(sub) -> None:
    """The ``tactile`` command group on the top-level subparsers."""
    tactile = sub.add_parser("tactile", help="tactile alignment (glove ↔ robot hand): "
                                             "training, evaluation")
    tactile.set_defaults(run=run)
    tsub = tactile.add_subparsers(dest="tactile_command", required=True)
    train = tsub.add_parser("train", help="simulate paired/unpaired grasp data and train the "
                                          "alignment model (two stages)")
    add_arguments(train)
    evaluate = tsub.add_parser("evaluate", help="retrieval, reconstruction and transfer "
                                                "accuracy on held-out simulated grasps")
    evaluate.add_argument("--json", required=True, help="write the metrics here")
    evaluate.add_argument("--source", choices=SOURCES, default="patches", help=SOURCE_HELP)
    evaluate.add_argument("--png", help="draw UV maps of a glove frame, the matching robot "
                                        "frame and the converted frame here (patches only)")
    evaluate.add_argument("--model", default="", help="checkpoint dir (default: the shipped "
                                                      "one of the source)")
    evaluate.add_argument("--episodes", type=int, default=160, help="held-out grasps")
    skill = tsub.add_parser("skill", help="transfer of skill: a policy trained on glove data "
                                          "sorts objects the Shadow Hand holds, by touch")
    skill.add_argument("--json", required=True, help="write the success rates here")
    skill.add_argument("--model", default="", help="checkpoint dir with the glove and a "
                                                    "Shadow Hand layout (default: shipped)")
    skill.add_argument("--trials", type=int, default=160, help="held-out grasps")
    serve = tsub.add_parser("serve", help="bring up tactile_alignment (graph 'tactile')")
    graph_args(serve)


def run(args) -> int:
    """Dispatch ``embodied-transfer tactile <command>``."""
    if args.tactile_command == "train":
        from embodied_transfer.tactile import DEFAULT_MODEL, PHYSICAL_MODEL
        from embodied_transfer.tactile.train import train

        physical = args.source == "mujoco"
        out = args.out or (PHYSICAL_MODEL if physical else DEFAULT_MODEL)
        result = train(out, config_from_args(args), model_config_from_args(args),
                       show=not args.quiet,
                       command=f"embodied-transfer tactile train --out {out} "
                               f"{given_options(args)}")
        print(f"wrote {result['out']} in {result['seconds']:.0f} s")
        return 0
    if args.tactile_command == "evaluate":
        _positive_count(args.episodes, "--episodes")
        if args.source == "mujoco":
            from embodied_transfer.tactile.transfer import evaluate_physical

            if args.png:
                raise TactileError("--png draws synthetic patches: not with --source mujoco")
            result = evaluate_physical(args.model or None, episodes=args.episodes)
            extra = (f"; {result['retrieval_ceiling_ratio'] * 100:.0f} % of the perfect "
                     f"converter's {result['retrieval_ceiling'] * 100:.1f} %")
        else:
            from embodied_transfer.tactile.evaluate import evaluate

            result = evaluate(args.model or None, episodes=args.episodes, png=args.png)
            extra = f", reconstruction MAE {result['reconstruction_error']:.4f}"
        t = result["transfer_accuracy"]
        print(f"retrieval top-1 {result['retrieval_top1'] * 100:.1f} % / top-5 "
              f"{result['retrieval_top5'] * 100:.1f} % ({result['retrieval_gallery']} pairs)"
              f"{extra}; transfer accuracy " + _percentages(t))
        write_json(args.json, result)
        if args.png:
            print(f"wrote {args.png}")
        return 0
    if args.tactile_command == "skill":
        from embodied_transfer.tactile.transfer import skill

        _positive_count(args.trials, "--trials")
        result = skill(args.model or None, trials=args.trials)
        print(f"{result['task']}: success over {result['trials']} trials: "
              + _percentages(result["success"]))
        write_json(args.json, result)
        return 0
    if args.tactile_command == "serve":
        return run_graph("tactile", args)
    raise TactileError(f"unknown tactile command {args.tactile_command!r}")


def _percentages(values: dict) -> str:
    return ", ".join(f"{k} {v * 100:.1f} %" for k, v in values.items())


def _positive_count(value: int, flag: str) -> None:
    if value < 1:
        raise TactileError(f"{flag} must be at least 1, got {value}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="", help="output directory (default: the shipped "
                                                  "model's directory of the source)")
    parser.add_argument("--source", choices=SOURCES, default=None,
                        help=SOURCE_HELP + " (default patches)")
    parser.add_argument("--robot-layout", choices=(SHADOW_GRID, SHADOW), default=None,
                        help=f"--source mujoco: the Shadow Hand's skin (default {SHADOW_GRID}: "
                             f"MuJoCo touch grids; {SHADOW}: the model's own touch sites)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--encoder", choices=ENCODERS, default=None,
                        help=f"model family (default {ModelConfig().encoder}; see "
                             f"tactile.models.ModelConfig)")
    parser.add_argument("--stage1-steps", type=int, default=None)
    parser.add_argument("--stage2-steps", type=int, default=None)
    parser.add_argument("--paired-episodes", type=int, default=None)
    parser.add_argument("--unpaired-episodes", type=int, default=None)
    defaults = TrainConfig()
    for flag, kind, what in (
            ("w-con", _non_negative, "weight of L_CON (InfoNCE)"),
            ("w-rec", _non_negative, "weight of L_REC (reconstruction)"),
            ("w-adv", _non_negative, "weight of L_ADV (domain discriminator); with far more "
                                     "paired data than the default, lower it (model card)"),
            ("temperature", _positive, "InfoNCE temperature")):
        parser.add_argument(f"--{flag}", type=kind, default=None,
                            help=f"{what} (default {getattr(defaults, flag.replace('-', '_'))})")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def _number(text: str, low: float, strict: bool) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < low or (strict and value == low):
        raise argparse.ArgumentTypeError(f"must be a finite number {'>' if strict else '>='} "
                                         f"{low:g}, got {text!r}")
    return value


def _non_negative(text: str) -> float:
    return _number(text, 0.0, strict=False)


def _positive(text: str) -> float:
    return _number(text, 0.0, strict=True)


#: ``TrainConfig`` fields that ``tactile train`` options set.
OPTION_FIELDS = ("stage1_steps", "stage2_steps", "paired_episodes", "unpaired_episodes",
                 "w_con", "w_rec", "w_adv", "temperature")


def config_from_args(args) -> TrainConfig:
    cfg = TrainConfig(seed=args.seed, source=getattr(args, "source", None) or "patches")
    for name in OPTION_FIELDS:
        if getattr(args, name, None) is not None:
            setattr(cfg, name, getattr(args, name))
    return cfg


def given_options(args) -> str:
    """The ``tactile train`` options of ``args`` that were given, as command-line text (for
    the checkpoint's recorded command)."""
    return " ".join([f"--seed {args.seed}"] + [
        f"--{name.replace('_', '-')} {getattr(args, name)}"
        for name in ("source", "robot_layout", "encoder")
        + OPTION_FIELDS if getattr(args, name, None) is not None])


def model_config_from_args(args) -> ModelConfig:
    """The ModelConfig ``tactile train`` options ask for (``--encoder``)."""
    return model_config_for(getattr(args, "source", None) or "patches",
                            getattr(args, "encoder", None),
                            getattr(args, "robot_layout", None))
