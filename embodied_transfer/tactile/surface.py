"""The canonical hand surface: a parametric hand (palm + five digits with phalanges) whose
palmar surface is unwrapped onto a UV square, with a validity mask.

Each phalanx is a cylinder of radius ``r`` and length ``l``; its palmar half-surface unwraps
isometrically to a ``π·r × l`` rectangle. The palm is a ``width × length`` rectangle. Digits
sit side by side above the palm (phalanges stacked without gaps, so a digit is one
connected strip in UV), the thumb to the left of the palm. The canvas is
``CANVAS_MM`` millimetres square, so UV distances times ``CANVAS_MM`` are surface
millimetres within a segment. Pressure does not spread between digits or from a digit to
the palm: every segment belongs to a *group* (thumb, index, middle, ring, little, palm).

Taxels and contacts are given per segment in normalised coordinates ``(s, t)`` ∈ [0, 1]²
(``s`` across the segment from the thumb side, ``t`` along it towards the tip), so a
layout of any hand (a robot's of other proportions) maps onto the same surface.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from embodied_transfer.tactile.errors import TactileError

CANVAS_MM = 210.0
GROUPS = ("thumb", "index", "middle", "ring", "little", "palm")
#: Phalanx lengths (mm), proximal → distal, and cylinder radius (mm) of each digit.
DIGITS = {
    "thumb": ((38.0, 32.0), 9.5),
    "index": ((45.0, 25.0, 22.0), 7.5),
    "middle": ((50.0, 30.0, 24.0), 7.5),
    "ring": ((47.0, 28.0, 23.0), 7.5),
    "little": ((37.0, 20.0, 20.0), 7.0),
}
PHALANX_NAMES = ("proximal", "middle", "distal")
PALM_MM = (100.0, 100.0)       # width, length
FINGER_GAP_MM = 2.0
THUMB_GAP_MM = 4.0
THUMB_BASE_MM = 18.0           # height above the palm's bottom edge where the thumb starts
MARGIN_MM = 3.0


@dataclass(frozen=True)
class Segment:
    """One rectangle of the unwrapped surface (UV units, origin bottom-left)."""

    name: str                  # "palm", "index_distal", "thumb_proximal", ...
    group: int                 # index into GROUPS
    u0: float
    v0: float
    width: float
    height: float

    def to_uv(self, s: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Segment-normalised (s, t) → UV (…, 2)."""
        return np.stack([self.u0 + np.asarray(s) * self.width,
                         self.v0 + np.asarray(t) * self.height], axis=-1)


@lru_cache(maxsize=1)
def segments() -> tuple[Segment, ...]:
    """The hand's segments: palm, then each digit's phalanges proximal → distal."""
    k = 1.0 / CANVAS_MM
    thumb_w = math.pi * DIGITS["thumb"][1]
    palm_u0 = MARGIN_MM + thumb_w + THUMB_GAP_MM
    out = [Segment("palm", GROUPS.index("palm"), palm_u0 * k, MARGIN_MM * k,
                   PALM_MM[0] * k, PALM_MM[1] * k)]
    lengths, _ = DIGITS["thumb"]
    v = MARGIN_MM + THUMB_BASE_MM
    for name, length in zip(("proximal", "distal"), lengths):
        out.append(Segment(f"thumb_{name}", 0, MARGIN_MM * k, v * k, thumb_w * k, length * k))
        v += length
    fingers = ("index", "middle", "ring", "little")
    widths = [math.pi * DIGITS[f][1] for f in fingers]
    span = sum(widths) + FINGER_GAP_MM * (len(fingers) - 1)
    u = palm_u0 + (PALM_MM[0] - span) / 2
    for finger, w in zip(fingers, widths):
        v = MARGIN_MM + PALM_MM[1]
        for name, length in zip(PHALANX_NAMES, DIGITS[finger][0]):
            out.append(Segment(f"{finger}_{name}", GROUPS.index(finger), u * k, v * k,
                               w * k, length * k))
            v += length
        u += w + FINGER_GAP_MM
    return tuple(out)


def segment(name: str) -> Segment:
    """The segment called ``name``; unknown names raise :class:`TactileError`."""
    for seg in segments():
        if seg.name == name:
            return seg
    raise TactileError(f"unknown hand segment {name!r} (known: "
                       f"{', '.join(s.name for s in segments())})")


def segment_index(name: str) -> int:
    return [s.name for s in segments()].index(segment(name).name)


@lru_cache(maxsize=4)
def uv_grid(resolution: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixel centres (R·R, 2), validity mask (R, R) (row 0 = v≈0) and group per pixel
    (R·R, -1 outside the hand) of an R×R UV image."""
    c = (np.arange(resolution) + 0.5) / resolution
    uu, vv = np.meshgrid(c, c)                 # [row=v, col=u]
    centres = np.stack([uu.ravel(), vv.ravel()], axis=-1)
    group = np.full(len(centres), -1, np.int64)
    for seg in segments():
        inside = ((centres[:, 0] >= seg.u0) & (centres[:, 0] < seg.u0 + seg.width)
                  & (centres[:, 1] >= seg.v0) & (centres[:, 1] < seg.v0 + seg.height))
        group[inside] = seg.group
    return centres, (group >= 0).reshape(resolution, resolution), group


def surface_area_mm2() -> float:
    return float(sum(s.width * s.height for s in segments()) * CANVAS_MM ** 2)
