"""Stage 0 of the tiny VLM: its vision tower learns to see the tabletop before reasoning tuning.

A hub LLaVA starts from a CLIP vision tower pretrained on web images; the tiny model built
from config has none, and trained end to end from the answer tokens alone its tower learns
colours but hardly categories (see the grasp MODEL_CARD). So, before the LLaVA stage, the
tower is trained on the scenes' metadata, CenterNet-style, on the same image tokens the
language model will read: for every patch, whether an object's centre lies in it, that
object's category and colour, and where in the patch the centre is. The heads are dropped
afterwards and :func:`~embodied_transfer.grasp.vlm_train.train_vlm` keeps the tower frozen
(``freeze_vision``), as LLaVA keeps its CLIP tower frozen; ``grasp train`` then trains every
weight for a few more epochs (``--unfreeze-epochs``, the shipped recipe).

Targets follow the processor's geometry exactly: the image is padded to a centred square
(:func:`~embodied_transfer.grasp.backends.vlm.prepare_image`) and resized to
``image_size``; patch ``(row, col)`` of ``patch_size`` pixels is image token
``row * grid + col``.
"""
from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from embodied_transfer.grasp.errors import GraspError
from embodied_transfer.grasp.reasoning import ObjectInfo

RESULT_FILE = "vision_pretraining.json"
CURVES_FILE = "vision_pretraining.png"


def patch_targets(objects: Sequence[ObjectInfo], width: int, height: int, image_size: int,
                  patch_size: int, categories: Sequence[str], colours: Sequence[str]) -> dict:
    """Per-patch targets of one image: ``has`` (an object centre is in the patch), ``category``
    and ``colour`` indices (-1 where ``has`` is false) and the centre's ``offset`` inside
    the patch (-0.5..0.5 of a patch, from its middle). Two centres in one patch: the one
    nearer the patch's middle."""
    grid = image_size // patch_size
    side = max(width, height)
    scale = image_size / side
    left, top = (side - width) // 2, (side - height) // 2
    has = np.zeros(grid * grid, bool)
    cat = np.full(grid * grid, -1, np.int64)
    col = np.full(grid * grid, -1, np.int64)
    offset = np.zeros((grid * grid, 2), np.float32)
    best = np.full(grid * grid, np.inf)
    for obj in objects:
        if obj.category not in categories or obj.colour not in colours:
            raise GraspError(f"object {obj.name!r} ({obj.colour} {obj.category}) is outside "
                             f"the vocabulary {list(colours)} × {list(categories)}")
        x, y = (obj.u + 0.5 + left) * scale / patch_size, (obj.v + 0.5 + top) * scale / patch_size
        c, r = int(math.floor(x)), int(math.floor(y))
        if not (0 <= c < grid and 0 <= r < grid):
            continue
        k, d = r * grid + c, np.array([x - c - 0.5, y - r - 0.5], np.float32)
        if float(np.hypot(*d)) < best[k]:
            best[k] = float(np.hypot(*d))
            has[k], offset[k] = True, d
            cat[k], col[k] = categories.index(obj.category), colours.index(obj.colour)
    return {"has": has, "category": cat, "colour": col, "offset": offset}


def scenes_of(datasets, flips: bool = True) -> list[tuple[np.ndarray, list[ObjectInfo]]]:
    """(rgb, objects) of every distinct image with object metadata, mirrored four ways
    (:data:`~embodied_transfer.grasp.mirroring.FLIPS`) when ``flips``."""
    import hashlib

    from embodied_transfer.grasp.mirroring import FLIPS, flip_image, flip_objects

    out, seen = [], set()
    for dataset in datasets:
        for sample in dataset:
            if not sample.objects:
                continue
            key = (hashlib.blake2b(sample.rgb.tobytes(), digest_size=16).digest(),
                   tuple(sample.objects))
            if key in seen:
                continue
            seen.add(key)
            h, w = sample.rgb.shape[:2]
            for horizontal, vertical in (FLIPS if flips else FLIPS[:1]):
                out.append((flip_image(sample.rgb, horizontal, vertical),
                            flip_objects(list(sample.objects), w, h, horizontal, vertical)))
    if not out:
        raise GraspError("vision pre-training needs samples with object metadata "
                         "(pcdNNNNmeta.json)")
    return out


class _Heads:
    """Linear read-outs of the image tokens (objectness, category, colour, centre offset)."""

    def __init__(self, hidden: int, n_cat: int, n_col: int):
        from torch import nn

        self.module = nn.Linear(hidden, 1 + n_cat + n_col + 2)
        self.n_cat, self.n_col = n_cat, n_col

    def __call__(self, tokens):
        out = self.module(tokens)
        a, b = 1 + self.n_cat, 1 + self.n_cat + self.n_col
        return out[..., 0], out[..., 1:a], out[..., a:b], out[..., b:]


def _image_tokens(tower, pixel_values):
    """The tokens LLaVA reads (``vision_feature_layer=-1``, ``default``: CLS dropped)."""
    return tower(pixel_values, output_hidden_states=True).hidden_states[-1][:, 1:]


def _tensors(processor, scenes, vocab) -> dict:
    import torch

    from embodied_transfer.grasp.backends.vlm import prepare_image

    ip = processor.image_processor
    size, patch = int(ip.crop_size["height"]), int(processor.patch_size)
    pixels, targets = [], []
    for rgb, objects in scenes:
        pixels.append(ip(images=prepare_image(rgb, processor), return_tensors="pt")
                      ["pixel_values"][0].to(torch.float16))
        h, w = rgb.shape[:2]
        targets.append(patch_targets(objects, w, h, size, patch, *vocab))
    return _stack(pixels, targets)


def _stack(pixels: list, targets: list[dict]) -> dict:
    """A batch dict: the per-image target arrays and pixel tensors stacked."""
    import torch

    out = {k: torch.from_numpy(np.stack([t[k] for t in targets])) for k in targets[0]}
    out["pixel_values"] = torch.stack(pixels)
    return out


def shift_image(pixels, dx: int, dy: int):
    """``pixels`` (C, S, S) moved ``dx`` columns right and ``dy`` rows down; what enters is 0
    (the mean colour, as the processor's padding)."""
    import torch

    out = torch.zeros_like(pixels)
    size = pixels.shape[-1]
    if abs(dx) < size and abs(dy) < size:
        out[:, max(dy, 0):size + min(dy, 0), max(dx, 0):size + min(dx, 0)] = \
            pixels[:, max(-dy, 0):size - max(dy, 0), max(-dx, 0):size - max(dx, 0)]
    return out


def _shifted_batch(data, scenes, idx, shifts, processor, vocab) -> dict:
    """The batch ``idx`` with image ``idx[j]`` moved by ``shifts[j]`` (dx, dy processed
    pixels) and its targets recomputed for the moved objects."""
    ip = processor.image_processor
    size, patch = int(ip.crop_size["height"]), int(processor.patch_size)
    pixels, targets = [], []
    for i, (dx, dy) in zip(idx.tolist(), np.asarray(shifts).tolist()):
        rgb, objects = scenes[i]
        h, w = rgb.shape[:2]
        step = max(h, w) / size                          # camera pixels per processed pixel
        moved = [ObjectInfo(o.name, o.category, o.colour, o.u + dx * step, o.v + dy * step)
                 for o in objects]
        pixels.append(shift_image(data["pixel_values"][i], dx, dy))
        targets.append(patch_targets(moved, w, h, size, patch, *vocab))
    return _stack(pixels, targets)


def _loss(heads, tokens, batch):
    """Objectness BCE on every patch; category / colour CE and centre offset (smooth L1, ×4)
    on the patches holding a centre."""
    from torch.nn import functional as F

    obj, cat, col, off = heads(tokens)
    has = batch["has"]
    loss = F.binary_cross_entropy_with_logits(obj, has.float())
    if has.any():
        loss = loss + F.cross_entropy(cat[has], batch["category"][has]) \
            + F.cross_entropy(col[has], batch["colour"][has]) \
            + 4.0 * F.smooth_l1_loss(off[has], batch["offset"][has], beta=0.1)
    return loss


def _scores(heads, tower, data, patch_px: float, batch_size: int = 64) -> dict:
    """Per-object rates on ``data``: found (objectness > 0.5 at its centre's patch), right
    category and colour there, and the centre error in image pixels (median)."""
    import torch

    found, cat_ok, col_ok, err, false_pos = [], [], [], [], []
    with torch.inference_mode():
        for i in range(0, len(data["has"]), batch_size):
            batch = {k: v[i:i + batch_size] for k, v in data.items()}
            obj, cat, col, off = heads(_image_tokens(tower, batch["pixel_values"].float()))
            has = batch["has"]
            found += (obj[has] > 0).tolist()
            false_pos += (obj[~has] > 0).tolist()
            cat_ok += (cat[has].argmax(-1) == batch["category"][has]).tolist()
            col_ok += (col[has].argmax(-1) == batch["colour"][has]).tolist()
            err += ((off[has] - batch["offset"][has]).norm(dim=-1) * patch_px).tolist()
    return {"objects": len(found), "found": float(np.mean(found)),
            "category": float(np.mean(cat_ok)), "colour": float(np.mean(col_ok)),
            "false_positive_patches": float(np.mean(false_pos)),
            "centre_error_px_median": float(np.median(err))}


def pretrain_vision(model_dir: str | Path, scenes, *, val_scenes=None, epochs: int = 12,
                    batch_size: int = 32, lr: float = 2e-3, shift: int = 0, seed: int = 0,
                    progress: bool = True) -> dict:
    """Train the vision tower of the tiny LLaVA in ``model_dir`` on ``scenes`` ((rgb, objects)
    each, e.g. from :func:`scenes_of`) and save the model back in place.

    ``shift``: every image of a batch moved by a random whole number of processed pixels, at
    most this many each way, with its targets moved alike (the objects' centres then fall
    anywhere in a patch; a tower trained without it learns the training scenes' patch
    contents by heart). AdamW, linear warm-up over 5 % of the steps then cosine decay to
    10 %; deterministic for
    a ``seed`` on the CPU. Writes ``vision_pretraining.json`` (vocabulary, settings, loss
    per epoch, the :func:`_scores` on the training scenes and, per epoch and at the end, on
    ``val_scenes`` when given) into ``model_dir`` and returns it.
    """
    import torch

    from embodied_transfer.grasp.backends.vlm import load_model, load_processor

    if epochs < 1 or batch_size < 1:
        raise GraspError(f"epochs and batch_size must be >= 1, got {epochs}, {batch_size}")
    model_dir = Path(model_dir)
    processor = load_processor(str(model_dir))
    model = load_model(str(model_dir), trainable=True)
    tower = model.model.vision_tower
    vocab = (sorted({o.category for _, objs in scenes for o in objs}),
             sorted({o.colour for _, objs in scenes for o in objs}))
    torch.manual_seed(seed)
    heads = _Heads(tower.config.hidden_size, len(vocab[0]), len(vocab[1]))
    data = _tensors(processor, scenes, vocab)
    val = _tensors(processor, val_scenes, vocab) if val_scenes else None
    params = [*tower.parameters(), *heads.module.parameters()]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    per_epoch = math.ceil(len(scenes) / batch_size)
    total, warm = per_epoch * epochs, max(1, per_epoch * epochs // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: (s + 1) / warm if s < warm else (
        0.1 + 0.45 * (1 + math.cos(math.pi * (s - warm) / max(1, total - warm)))))
    rng = np.random.default_rng(seed)
    patch_px = max(scenes[0][0].shape[:2]) / data["pixel_values"].shape[-1] \
        * int(processor.patch_size)
    epoch_loss, val_epochs, t0 = [], [], time.perf_counter()
    tower.train()
    with tqdm(total=total, desc="vision pre-training", unit="step", disable=not progress,
              leave=False) as bar:
        for _ in range(epochs):
            order, losses = torch.from_numpy(rng.permutation(len(scenes))), []
            for b in range(per_epoch):
                idx = order[b * batch_size:(b + 1) * batch_size]
                batch = (_shifted_batch(data, scenes, idx,
                                        rng.integers(-shift, shift + 1, (len(idx), 2)),
                                        processor, vocab)
                         if shift else {k: v[idx] for k, v in data.items()})
                loss = _loss(heads, _image_tokens(tower, batch["pixel_values"].float()), batch)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                opt.step()
                sched.step()
                losses.append(float(loss.item()))
                bar.update()
                bar.set_postfix(loss=f"{losses[-1]:.3f}")
            epoch_loss.append(float(np.mean(losses)))
            if val is not None:
                val_epochs.append(_scores(heads, tower, val, patch_px))
    tower.eval()
    result = {"categories": vocab[0], "colours": vocab[1], "images": len(scenes),
              "epochs": epochs, "batch_size": batch_size, "lr": lr, "shift": shift,
              "seed": seed,
              "steps": total, "seconds": round(time.perf_counter() - t0, 1),
              "epoch_loss": epoch_loss, "val_epochs": val_epochs,
              "train": _scores(heads, tower, data, patch_px),
              "val": _scores(heads, tower, val, patch_px) if val is not None else None}
    model.save_pretrained(model_dir)
    (model_dir / RESULT_FILE).write_text(json.dumps(result, indent=1) + "\n")
    plot_pretraining(result, model_dir / CURVES_FILE)
    return result


def plot_pretraining(result: dict, out: str | Path) -> Path:
    """Loss per epoch and, when validated, the held-out rates per epoch."""
    from embodied_transfer.core.plotting import Curves, plot_curves

    curves, panels = Curves(), [("training loss", ["loss"], True)]
    for loss in result["epoch_loss"]:
        curves.add("training loss", loss=loss)
    rates = ("found", "category", "colour")
    for scores in result.get("val_epochs") or []:
        curves.add("held-out objects", **{k: scores[k] for k in rates})
    if result.get("val_epochs"):
        panels.append(("held-out objects", list(rates), False))
    return plot_curves(curves, out, panels, xlabel="epoch")
