"""Top-level ``embodied-transfer edit``, ``edit-train``, ``edit-directions`` (argparse glue)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from embodied_transfer.editing.errors import EditError

COMMANDS = ("edit", "edit-train", "edit-directions")
DEFAULT_SOURCE = "tumor breast"
DEFAULT_TARGET = "healthy breast"


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
    """Register ``edit``, ``edit-train`` and ``edit-directions`` on the top-level subparsers."""
    edit = sub.add_parser("edit", help="edit the masked region of an image along a BiomedCLIP "
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
    edit.add_argument("--lora", default=None, help="LoRA dir written by edit-train")
    edit.add_argument("--no-baseline", action="store_true",
                      help="skip the unguided run (L_dir before is then that of the original)")
    _model_args(edit)

    train = sub.add_parser("edit-train", help="LoRA fine-tune of the inpainting U-Net with "
                                              "noise MSE + λ·L_dir")
    train.add_argument("--data", required=True, help="folder of NAME.png + NAME_mask.png pairs")
    train.add_argument("--out", required=True, help="LoRA output directory")
    _prompt_args(train)
    train.add_argument("--train-steps", type=int, default=100)
    train.add_argument("--lr", type=float, default=1e-4)
    train.add_argument("--rank", type=int, default=4)
    train.add_argument("--lambda-dir", type=float, default=0.1)
    _model_args(train)

    directions = sub.add_parser("edit-directions", help="do state directions agree across "
                                                        "organs? (cosine table)")
    directions.add_argument("--organs", nargs="+", default=["brain", "breast", "lung", "liver"])
    directions.add_argument("--states", nargs="+", default=["healthy", "tumor"])
    directions.add_argument("--json", default=None, help="write the tables here")
    _model_args(directions, inpaint=False)


def _setup(args):
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from embodied_transfer.editing.clip import load_clip

    return load_clip(args.clip_model, args.device, allow_download=args.allow_download)


def _write_json(path: str | Path, result: dict) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {path}")


def save_side_by_side(path: str | Path, original, mask, edited) -> None:
    """Original, mask, edited and |difference| side by side (matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    diff = np.abs(edited - original).mean(-1)
    fig, axes = plt.subplots(1, 4, figsize=(12, 3.4))
    for ax, img, title, kw in ((axes[0], original, "original", {}),
                               (axes[1], mask, "mask", {"cmap": "gray"}),
                               (axes[2], edited, "edited", {}),
                               (axes[3], diff, "|difference|", {"cmap": "magma"})):
        ax.imshow(img, **kw)
        ax.set_title(title)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def run_edit(args) -> dict:
    """The ``edit`` command: guided inpainting, outputs under args.out; returns the report."""
    import numpy as np
    import torch
    from PIL import Image

    from embodied_transfer.editing.inpaint import (guided_inpaint, load_image, load_inpaint,
                                                   load_mask)

    image = load_image(args.image)
    mask = load_mask(args.mask, (image.shape[1], image.shape[0]))
    clip = _setup(args)
    pipe = load_inpaint(args.inpaint_model, args.device, allow_download=args.allow_download,
                        lora=args.lora)
    common = dict(source_prompt=args.source_prompt, target_prompt=args.target_prompt,
                  prompt=args.prompt, cfg_scale=args.cfg_scale, steps=args.steps,
                  seed=args.seed, size=args.size)
    baseline = None
    if not args.no_baseline and args.guidance_scale > 0:
        baseline = guided_inpaint(pipe, clip, image, mask, guidance_scale=0.0, **common)
    result = guided_inpaint(pipe, clip, image, mask, guidance_scale=args.guidance_scale, **common)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    edited8 = (np.clip(result.image, 0, 1) * 255).round().astype(np.uint8)
    gray = bool(np.allclose(image[..., 0], image[..., 1]) and np.allclose(image[..., 0],
                                                                           image[..., 2]))
    Image.fromarray(edited8[..., 0] if gray else edited8).save(out / "edited.png")
    save_side_by_side(out / "side_by_side.png", image, mask, result.image)
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)[None]  # noqa: E731
    both = torch.cat([t(image), t(result.image)])
    sim_t = clip.similarity(both, args.target_prompt)
    sim_s = clip.similarity(both, args.source_prompt)
    outside = ~mask
    change = np.abs(result.image - image)[outside]
    report = {
        "image": str(args.image), "mask": str(args.mask),
        "source_prompt": args.source_prompt, "target_prompt": args.target_prompt,
        "guidance_scale": args.guidance_scale, "cfg_scale": args.cfg_scale,
        "steps": args.steps, "seed": args.seed, "lora": args.lora,
        "clip_model": args.clip_model, "inpaint_model": args.inpaint_model,
        "device": str(pipe.unet.device), "dtype": str(pipe.unet.dtype),
        "l_dir_before": baseline.l_dir if baseline else 1.0,
        "l_dir_before_is": ("unguided inpainting, same seed" if baseline
                            else "the unedited image (ΔI = 0, cos = 0)"),
        "l_dir_after": result.l_dir,
        "l_dir_trace": result.l_dir_trace,
        "clip_similarity": {"edited_to_target": sim_t[1], "edited_to_source": sim_s[1],
                            "original_to_target": sim_t[0], "original_to_source": sim_s[0]},
        "outside_mask": {"max_abs_change": float(change.max(initial=0.0)),
                         "mean_abs_change": float(change.mean()) if change.size else 0.0,
                         "pixels": int(outside.sum())},
        "inside_mask_mean_abs_change": float(np.abs(result.image - image)[mask].mean()),
        "seconds": result.seconds, "steps_per_second": result.steps / result.seconds,
    }
    _write_json(out / "report.json", report)
    print(f"L_dir {report['l_dir_before']:.4f} -> {report['l_dir_after']:.4f}; "
          f"wrote {out / 'edited.png'}, {out / 'side_by_side.png'}")
    return report


def run(args) -> int | None:
    """Dispatch the editing commands; None when args.command is not one of them."""
    command = getattr(args, "command", None)
    if command not in COMMANDS:
        return None
    if command == "edit":
        run_edit(args)
        return 0
    if command == "edit-train":
        from embodied_transfer.editing.inpaint import load_inpaint
        from embodied_transfer.editing.lora import read_pairs, train_lora

        pairs = read_pairs(args.data)
        clip = _setup(args)
        pipe = load_inpaint(args.inpaint_model, args.device, allow_download=args.allow_download)
        result = train_lora(pipe, clip, pairs, args.out, source_prompt=args.source_prompt,
                            target_prompt=args.target_prompt, prompt=args.prompt,
                            steps=args.train_steps, lr=args.lr, rank=args.rank,
                            lambda_dir=args.lambda_dir, size=args.size, seed=args.seed)
        _write_json(Path(args.out) / "train_history.json", result)
        print(f"wrote LoRA to {result['out']} ({len(pairs)} pairs, {args.train_steps} steps)")
        return 0
    from embodied_transfer.editing.directions import direction_table, format_report

    table = direction_table(_setup(args), args.organs, args.states)
    print(format_report(table))
    if args.json:
        _write_json(args.json, table)
    return 0


__all__ = ["add_parsers", "run", "run_edit", "COMMANDS", "EditError"]
