"""Scoring a grasp backend on a Cornell-layout dataset, and pictures of its answers.

Metrics of :func:`evaluate`:

``rectangle_accuracy``
    the Cornell rectangle metric (:func:`embodied_transfer.grasp.rectangles.correct`: angle
    within 30° and IoU > 25 % with any ground-truth rectangle of the sample); a missing grasp
    is wrong. Over the samples that have ground-truth rectangles (``n_rectangle``); samples
    whose cpos file holds none (e.g. only NaN rectangles) are not scored. For instructed
    samples the cpos file lists only the target's grasps, so this also requires the right
    object.
``target_accuracy``
    over the samples with an instruction, a target and object metadata (``n_target``): the
    predicted grasp centre is closer (pixel distance) to the target object's centre than to
    every other object's centre — i.e. the backend picked the instructed object, whatever
    the grasp's quality. A missing grasp is wrong. None when no sample qualifies.
``on_object``
    over the samples with depth: the share of predictions whose centre lies on an object,
    i.e. at least :data:`ON_OBJECT_M` nearer the camera than the table there
    (:func:`centre_on_object`); needs no labels, so it also scores unlabelled images. A
    missing grasp is not on an object. None without depth.
``parse_failures``
    how many predictions had no grasp (``Prediction.grasp is None``, or a
    :class:`GraspParseError` raised by the backend); ``failures`` holds their sample id,
    error and raw text.
``ms_per_image``
    the mean wall time of ``backend.predict`` (``ms_median`` its median).
``decoding``, ``views``, ``restatements_held``
    a text backend's answer decoding (``free`` or ``consistent``, see
    :data:`~embodied_transfer.grasp.backends.base.DECODINGS`), how many mirrored views of
    each image it answers, and in how many of those answers the consistent decoding held
    the restated position to the listed one (None: not a text backend).
``scene_reading``
    for answers that list the objects they see (:func:`~embodied_transfer.grasp.reasoning.
    parse_scene`), how well they read the scene (:func:`scene_reading`); None for backends
    without such reasoning.

The returned dict also holds ``predictions`` (``Prediction`` per evaluated sample, in
dataset order), ``ids`` and ``correct`` (per sample: True/False, None when unscored), for
:func:`draw_samples`; :func:`summary` drops those for JSON.
"""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from embodied_transfer.grasp.backends.base import GraspBackend, Prediction
from embodied_transfer.grasp.errors import GraspError, GraspParseError
from embodied_transfer.grasp.reasoning import RESTATEMENT, ObjectInfo, parse_scene
from embodied_transfer.grasp.rectangles import Grasp, correct

PER_SAMPLE_KEYS = ("predictions", "ids", "correct", "on_target")
#: How much nearer than the table (m) a grasp centre must be to lie on an object.
ON_OBJECT_M = 0.01
#: Rows (each side) whose median depth stands for the table under a grasp centre.
TABLE_ROWS = 10


def centre_on_object(grasp: Grasp | None, depth: np.ndarray | None) -> bool | None:
    """Whether ``grasp``'s centre lies on an object: its depth (median of a 5×5 window)
    at least :data:`ON_OBJECT_M` nearer than the table there, the table's depth being the
    median of the valid depth in the image rows within :data:`TABLE_ROWS` of the centre
    (objects fill little of a row; this holds for top-down and oblique cameras alike).
    None without depth or with no valid depth there; False for a missing grasp."""
    if depth is None:
        return None
    if grasp is None:
        return False
    d = np.where(np.isfinite(depth) & (depth > 0), depth, np.nan)
    h, w = d.shape
    r, c = int(round(min(max(grasp.y, 0), h - 1))), int(round(min(max(grasp.x, 0), w - 1)))
    window = d[max(r - 2, 0):r + 3, max(c - 2, 0):c + 3]
    band = d[max(r - TABLE_ROWS, 0):r + TABLE_ROWS + 1]
    if np.isnan(window).all() or np.isnan(band).all():
        return None
    return bool(np.nanmedian(window) <= np.nanmedian(band) - ON_OBJECT_M)


def on_target(grasp: Grasp | None, objects: Sequence[ObjectInfo], target: str | None
              ) -> bool | None:
    """Whether ``grasp``'s centre is strictly closest to the target object's centre.

    None when there is nothing to judge (no target or it is not among ``objects``); False
    for a missing grasp or a tie with another object.
    """
    names = [o.name for o in objects]
    if target is None or target not in names:
        return None
    if grasp is None:
        return False
    dist = {o.name: math.hypot(grasp.x - o.u, grasp.y - o.v) for o in objects}
    mine = dist.pop(target)
    return all(mine < d for d in dist.values())


#: A listed object "is" a true one when its written centre is within this many pixels.
PLACED_PX = 20.0


def _original_view(pred: Prediction) -> tuple[str, Grasp | None]:
    """The answer text and grasp of a prediction's original (unmirrored) view."""
    answers, grasps = pred.extra.get("view_answers"), pred.extra.get("view_grasps")
    if answers and grasps:
        return answers[0], grasps[0]
    return pred.reasoning or pred.text, pred.grasp


def scene_reading(cases: Sequence[tuple[Sequence[ObjectInfo], str | None, Prediction]],
                  radius: float = PLACED_PX) -> dict | None:
    """How answers' object lists match the scenes, over (true objects, target name,
    prediction) cases whose answer lists at least one object.

    ``count``: answers listing as many objects as there are; ``placed``: true objects with a
    listed one within ``radius`` px (each listed one used once, nearest pairs first);
    ``colour`` / ``category``: of the placed ones, right; ``target_label_placed``: of the
    answers with a target, those where the item carrying the target's label is the one
    placed on the target; ``named_copied``: of the answers whose "The <label> at (u, v)"
    sentence names a listed label, those that copy that item's position exactly;
    ``grasp_follows_list``: of the answers listing the target's label, those whose grasp
    centre lies within ``radius`` px of that item's listed position (in either answer format,
    the step from the list to the numbers). An answer of several mirrored views is read in
    its original view (its answer and grasp, ``extra["view_answers"]`` / ``["view_grasps"]``),
    whose positions are the image's own. None when no answer lists objects.
    """
    answers = count = total = placed = colour = category = targeted = on_target = 0
    named = copied = labelled = follows = 0
    for objects, target, pred in cases:
        text, grasp = _original_view(pred)
        listed = parse_scene(text)
        if not listed or not objects:
            continue
        answers += 1
        count += len(listed) == len(objects)
        total += len(objects)
        match: dict[int, int] = {}
        for d, i, j in sorted((math.hypot(o.u - item.u, o.v - item.v), i, j)
                              for i, o in enumerate(objects) for j, item in enumerate(listed)):
            if d <= radius and i not in match and j not in match.values():
                match[i] = j
        placed += len(match)
        colour += sum(objects[i].colour == listed[j].colour for i, j in match.items())
        category += sum(objects[i].category == listed[j].category for i, j in match.items())
        said = RESTATEMENT.search(text)
        items = {(item.label(), int(item.u), int(item.v)) for item in listed}
        if said and f"{said[1]} {said[2]}" in {item.label() for item in listed}:
            named += 1
            copied += (f"{said[1]} {said[2]}", int(said[3]), int(said[4])) in items
        names = [o.name for o in objects]
        if target in names:
            targeted += 1
            i = names.index(target)
            on_target += i in match and listed[match[i]].label() == objects[i].label()
            item = next((it for it in listed if it.label() == objects[i].label()), None)
            if item is not None:
                labelled += 1
                follows += grasp is not None and math.hypot(
                    grasp.x - item.u, grasp.y - item.v) <= radius
    if not answers:
        return None
    return {"answers": answers, "count": count / answers, "objects": total,
            "placed": placed / total, "colour": colour / max(placed, 1),
            "category": category / max(placed, 1),
            "target_label_placed": on_target / targeted if targeted else None,
            "named_copied": copied / named if named else None,
            "grasp_follows_list": follows / labelled if labelled else None}


def evaluate(dataset, backend: GraspBackend, limit: int | None = None) -> dict:
    """Run ``backend`` on the first ``limit`` samples (all: None) and score it (see module)."""
    n = len(dataset) if limit is None else min(int(limit), len(dataset))
    if n <= 0:
        raise GraspError("nothing to evaluate: the dataset is empty or limit is 0")
    predictions, ids, right, targeted, times, failures, cases = [], [], [], [], [], [], []
    on_object = []
    for i in range(n):
        sample = dataset[i]
        start = time.perf_counter()
        try:
            pred = backend.predict(sample.rgb, sample.depth, sample.instruction or "")
        except GraspParseError as exc:
            pred = Prediction(None, text=exc.text, error=str(exc))
        times.append(time.perf_counter() - start)
        if pred.grasp is None:
            failures.append({"id": sample.id, "error": pred.error or "no grasp",
                             "text": pred.text})
        predictions.append(pred)
        cases.append((sample.objects, sample.target, pred))
        ids.append(sample.id)
        right.append(correct(pred.grasp, sample.grasps) if sample.grasps else None)
        on_object.append(centre_on_object(pred.grasp, sample.depth))
        targeted.append(on_target(pred.grasp, sample.objects, sample.target)
                        if sample.instruction is not None and sample.objects else None)
    scored = [r for r in right if r is not None]
    aimed = [t for t in targeted if t is not None]
    landed = [o for o in on_object if o is not None]
    ms = np.asarray(times) * 1000.0
    return {
        "backend": backend.name,
        "n": n,
        "n_rectangle": len(scored),
        "rectangle_accuracy": float(np.mean(scored)) if scored else None,
        "n_target": len(aimed),
        "target_accuracy": float(np.mean(aimed)) if aimed else None,
        "on_object": float(np.mean(landed)) if landed else None,
        "parse_failures": len(failures),
        "failures": failures,
        "ms_per_image": float(ms.mean()),
        "ms_median": float(np.median(ms)),
        "decoding": getattr(backend, "decoding", None),
        "views": getattr(backend, "views", None),
        "restatements_held": (sum(int(p.extra.get("restatements_held", 0)) for p in predictions)
                              if hasattr(backend, "decoding") else None),
        "scene_reading": scene_reading(cases),
        "predictions": predictions,
        "ids": ids,
        "correct": right,
        "on_target": targeted,
    }


def summary(result: dict) -> dict:
    """``result`` without its per-sample entries (JSON-serialisable)."""
    return {k: v for k, v in result.items() if k not in PER_SAMPLE_KEYS}


def _polygon(ax, grasp: Grasp, colour: str, width: float) -> None:
    p = grasp.corners()
    p = np.vstack([p, p[:1]])
    ax.plot(p[:, 0], p[:, 1], color=colour, linewidth=width)
    # the jaw sides (across the closing axis) drawn thicker, as the gripper plates
    ax.plot(p[1:3, 0], p[1:3, 1], color=colour, linewidth=2 * width)
    ax.plot(p[3:5, 0], p[3:5, 1], color=colour, linewidth=2 * width)


def draw_samples(dataset, predictions: Sequence[Prediction] | Mapping[str, Prediction],
                 out_png: str | Path, n: int = 8, cols: int = 4) -> Path:
    """A grid of the first ``n`` predicted samples: true rectangles green, predicted red.

    ``predictions``: a list aligned with the dataset's first samples (as ``evaluate``'s
    ``predictions``) or a dict ``{sample id: Prediction}``.
    """
    from embodied_transfer.core.plotting import pyplot, save_figure

    plt = pyplot()
    if isinstance(predictions, Mapping):
        chosen = [(dataset.ids.index(sid), p) for sid, p in predictions.items()
                  if sid in dataset.ids]
    else:
        if len(predictions) > len(dataset):
            raise GraspError(f"{len(predictions)} predictions for {len(dataset)} samples")
        chosen = list(enumerate(predictions))
    chosen = chosen[:max(int(n), 0)]
    if not chosen:
        raise GraspError("no predictions to draw")
    cols = min(cols, len(chosen))
    rows = math.ceil(len(chosen) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.0 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (i, pred) in zip(axes.ravel(), chosen):
        sample = dataset[i]
        ax.imshow(sample.rgb)
        for g in sample.grasps:
            _polygon(ax, g, "lime", 0.8)
        if pred.grasp is not None:
            _polygon(ax, pred.grasp, "red", 1.2)
            ok = "correct" if correct(pred.grasp, sample.grasps) else "wrong"
        else:
            ok = "no grasp"
        title = f"{sample.id}: {ok}"
        if sample.instruction:
            instr = sample.instruction
            title += "\n" + (instr if len(instr) <= 34 else instr[:33] + "…")
        ax.set_title(title, fontsize=7)
        h, w = sample.rgb.shape[:2]
        ax.set_xlim(-0.5, w - 0.5)
        ax.set_ylim(h - 0.5, -0.5)
    return save_figure(fig, out_png, dpi=110)
