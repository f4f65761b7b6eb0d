"""``embodied-transfer editing edit | train | directions`` (argparse glue).

The former top-level verbs ``edit``, ``edit-train`` and ``edit-directions`` stay as
deprecated aliases of these (they print a note and run the same command).
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import fields
from pathlib import Path

from embodied_transfer.app.output import write_json
from embodied_transfer.editing.edit import DEFAULT_SOURCE, DEFAULT_TARGET

#: Deprecated top-level verb → its ``editing`` subcommand.
ALIASES = {"edit": "edit", "edit-train": "train", "edit-directions": "directions"}


def _model_args(p: argparse.ArgumentParser, inpaint: bool = True) -> None:
    from embodied_transfer.editing.clip import DEFAULT_CLIP

    p.add_argument("--clip-model", default=DEFAULT_CLIP,
                   help="BiomedCLIP: hub id (hf-hub:...) or local open_clip dir")
    if inpaint:
        from embodied_transfer.editing.inpaint import DEFAULT_INPAINT

        p.add_argument("--inpaint-model", default=DEFAULT_INPAINT,
                       help="diffusers inpainting pipeline: hub id or local dir")
    p.add_argument("--allow-download", action="store_true",
                   help="fetch missing models from the Hugging Face hub")
    p.add_argument("--device", default=None, help="cuda / cpu (default: cuda if present)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")


def _prompt_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source-prompt", default=DEFAULT_SOURCE)
    p.add_argument("--target-prompt", default=DEFAULT_TARGET)
    p.add_argument("--prompt", default=None,
                   help="text conditioning of the U-Net (default: the target prompt)")
    p.add_argument("--size", type=int, default=None,
                   help="working resolution of the longer side (default: the image's)")
    p.add_argument("--seed", type=int, default=0)


def add_parsers(sub) -> None:
    """The ``editing`` group, and its deprecated top-level aliases, on the subparsers."""
    editing = sub.add_parser("editing", help="zero-shot concept editing: guided inpainting, "
                                             "LoRA tuning, direction tables")
    editing.set_defaults(run=run)
    group = editing.add_subparsers(dest="editing_command", required=True)
    _add_commands(group, {name: name for name in ALIASES.values()})
    _add_commands(sub, {alias: name for alias, name in ALIASES.items()}, deprecated=True)


def _add_commands(sub, names: dict[str, str], deprecated: bool = False) -> None:
    """``edit``, ``train`` and ``directions`` under ``names`` (name as shown → command)."""
    def parser(command: str, help: str) -> argparse.ArgumentParser:
        shown = next(k for k, v in names.items() if v == command)
        note = f" (deprecated: use 'editing {command}')" if deprecated else ""
        p = sub.add_parser(shown, help=help + note)
        p.set_defaults(run=run, editing_command=command, deprecated_alias=deprecated)
        return p

    edit = parser("edit", help="edit the masked region of an image along a BiomedCLIP "
                               "text direction (guided SD inpainting)")
    edit.add_argument("--image", required=True)
    edit.add_argument("--mask", required=True, help="binary mask, white = edit, same size")
    edit.add_argument("--out", required=True, help="output directory (edited.png, "
                                                   "side_by_side.png, report.json)")
    _prompt_args(edit)
    edit.add_argument("--guidance-scale", type=float, default=1.0,
                      help="directional-loss guidance per step (0: plain inpainting)")
    edit.add_argument("--cfg-scale", type=float, default=7.5, help="classifier-free guidance")
    edit.add_argument("--steps", type=int, default=25)
    edit.add_argument("--lora", default=None, help="LoRA dir written by editing train")
    edit.add_argument("--no-baseline", action="store_true",
                      help="skip the unguided run (L_dir before is then that of the original)")
    _model_args(edit)

    train = parser("train", help="LoRA fine-tune of the inpainting U-Net with "
                                 "noise MSE + λ·L_dir")
    train.add_argument("--data", required=True, help="folder of NAME.png + NAME_mask.png pairs")
    train.add_argument("--out", required=True, help="LoRA output directory")
    _prompt_args(train)
    train.add_argument("--train-steps", type=int, default=100)
    train.add_argument("--lr", type=float, default=1e-4)
    train.add_argument("--rank", type=int, default=4)
    train.add_argument("--lambda-dir", type=float, default=0.1)
    _model_args(train)

    directions = parser("directions", help="do state directions agree across organs? "
                                           "(cosine table)")
    directions.add_argument("--organs", nargs="+", default=["brain", "breast", "lung", "liver"])
    directions.add_argument("--states", nargs="+", default=["healthy", "tumor"])
    directions.add_argument("--json", default=None, help="write the tables here")
    _model_args(directions, inpaint=False)


def _threads(args) -> None:
    """``--threads``: torch's process-wide CPU thread count, set once here."""
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)


def _setup(args):
    from embodied_transfer.editing.clip import load_clip

    _threads(args)

    return load_clip(args.clip_model, args.device, allow_download=args.allow_download)


def run(args) -> int:
    """Dispatch ``embodied-transfer editing <command>`` (or a deprecated alias)."""
    if getattr(args, "deprecated_alias", False):
        print(f"embodied-transfer: '{args.command}' is deprecated, use "
              f"'editing {args.editing_command}'", file=sys.stderr)
    if args.editing_command == "edit":
        from embodied_transfer.editing.edit import EditConfig, edit_image

        _threads(args)
        config = EditConfig(**{f.name: getattr(args, f.name) for f in fields(EditConfig)})
        report = edit_image(config)
        out = Path(config.out)
        print(f"L_dir {report['l_dir_before']:.4f} -> {report['l_dir_after']:.4f}; "
              f"wrote {out / 'edited.png'}, {out / 'side_by_side.png'}")
        return 0
    if args.editing_command == "train":
        from embodied_transfer.editing.inpaint import load_inpaint
        from embodied_transfer.editing.lora import read_pairs, train_lora

        pairs = read_pairs(args.data)
        clip = _setup(args)
        pipe = load_inpaint(args.inpaint_model, args.device, allow_download=args.allow_download)
        result = train_lora(pipe, clip, pairs, args.out, source_prompt=args.source_prompt,
                            target_prompt=args.target_prompt, prompt=args.prompt,
                            steps=args.train_steps, lr=args.lr, rank=args.rank,
                            lambda_dir=args.lambda_dir, size=args.size, seed=args.seed)
        write_json(Path(args.out) / "train_history.json", result)
        print(f"wrote LoRA to {result['out']} ({len(pairs)} pairs, {args.train_steps} steps)")
        return 0
    from embodied_transfer.editing.directions import direction_table, format_report

    table = direction_table(_setup(args), args.organs, args.states)
    print(format_report(table))
    if args.json:
        write_json(args.json, table)
    return 0

