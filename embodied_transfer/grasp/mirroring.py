"""Mirrored tabletop views: images, object centres and grasps flipped alike.

The tiny VLM trains on every sample in the four :data:`FLIPS`; at run time a VLM backend
may answer several of those views and keep the grasp most of them agree on
(:func:`most_agreed`), each mirrored back first (a mirroring is its own inverse).
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from embodied_transfer.grasp.reasoning import ObjectInfo
from embodied_transfer.grasp.rectangles import Grasp

#: The four mirrorings (horizontal, vertical): none, left-right, top-bottom, both.
FLIPS = ((False, False), (True, False), (False, True), (True, True))
FLIP_NAMES = ("original", "left-right", "top-bottom", "both ways")


def _mirror(w: int, h: int, horizontal: bool, vertical: bool):
    """Column and row maps of a mirroring: ``u`` → ``w - 1 - u``, ``v`` → ``h - 1 - v``."""
    return ((lambda x: w - 1 - x) if horizontal else (lambda x: x),
            (lambda y: h - 1 - y) if vertical else (lambda y: y))


def flip_image(rgb: np.ndarray, horizontal: bool, vertical: bool) -> np.ndarray:
    """``rgb`` mirrored left-right and/or top-bottom (a view, no copy)."""
    axes = tuple(a for a, f in ((1, horizontal), (0, vertical)) if f)
    return np.flip(rgb, axes) if axes else rgb


def flip_objects(objects: list[ObjectInfo], width: int, height: int, horizontal: bool,
                 vertical: bool) -> list[ObjectInfo]:
    """``objects`` with their centres mirrored as :func:`flip_scene` mirrors the image."""
    u, v = _mirror(width, height, horizontal, vertical)
    return [ObjectInfo(o.name, o.category, o.colour, u(o.u), v(o.v)) for o in objects]


def flip_grasp(grasp: Grasp, width: int, height: int, horizontal: bool,
               vertical: bool) -> Grasp:
    """``grasp`` in the mirrored image: its centre mirrored, its closing-axis angle negated
    by each mirror."""
    u, v = _mirror(width, height, horizontal, vertical)
    sign = -1.0 if horizontal != vertical else 1.0
    return Grasp(u(grasp.x), v(grasp.y), sign * grasp.theta, grasp.width, grasp.height)


def flip_scene(rgb: np.ndarray, objects: list[ObjectInfo], grasp: Grasp, horizontal: bool,
               vertical: bool) -> tuple[np.ndarray, list[ObjectInfo], Grasp]:
    """The image mirrored left-right and/or top-bottom, with its objects' centres and the
    grasp mirrored alike (a view of ``rgb``, no copy): column ``u`` → ``w - 1 - u``, row ``v``
    → ``h - 1 - v``, and each mirror negates the closing-axis angle."""
    h, w = rgb.shape[:2]
    return (flip_image(rgb, horizontal, vertical),
            flip_objects(objects, w, h, horizontal, vertical),
            flip_grasp(grasp, w, h, horizontal, vertical))


def most_agreed(grasps: Sequence[Grasp | None], radius: float,
                weights: Sequence[float] | None = None) -> tuple[int | None, int]:
    """(index, votes) of the grasp whose centre has the most grasps (itself included) within
    ``radius`` px; with ``weights``, the one whose such grasps weigh most in sum (``votes``
    still counts them). Ties go to the earliest. (None, 0) when every entry is None."""
    best, votes, most = None, 0, -math.inf
    for i, g in enumerate(grasps):
        if g is None:
            continue
        near = [j for j, o in enumerate(grasps)
                if o is not None and math.hypot(g.x - o.x, g.y - o.y) <= radius]
        weight = len(near) if weights is None else sum(float(weights[j]) for j in near)
        if weight > most:
            best, votes, most = i, len(near), weight
    return best, votes


def view_reasoning(reasoning: str, view: int) -> str:
    """The reasoning of the answer to view ``view`` of :data:`FLIPS`, saying which mirroring
    its positions are in when it is not the original."""
    return f"[answer to the image mirrored {FLIP_NAMES[view]}] {reasoning}" if view else reasoning
