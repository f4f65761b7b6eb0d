"""From an image-plane grasp to what a controller needs (pure numpy + OpenCV).

* :func:`check_inputs` validates an image / depth / instruction triple before a backend sees it;
* :func:`grasp_pose` lifts a :class:`~.rectangles.Grasp` to a 3-D pose in the camera's optical
  frame (REP-103/105: z forward, x right, y down; metres) from depth and the intrinsics;
* :func:`annotate` draws the rectangle on a copy of the image (jaws thick, opening thin).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from embodied_transfer.grasp.errors import GraspError
from embodied_transfer.grasp.rectangles import Grasp

DEPTH_WINDOW = 5        # px half-size of the window whose median depth the grasp uses


def check_inputs(rgb: np.ndarray, depth: np.ndarray | None, instruction: str,
                 needs_instruction: bool) -> None:
    """Raise :class:`GraspError` saying what is wrong with a backend's inputs."""
    if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.shape[2] != 3 \
            or rgb.dtype != np.uint8:
        raise GraspError(f"colour image must be (H, W, 3) uint8, got "
                         f"{getattr(rgb, 'shape', None)} {getattr(rgb, 'dtype', type(rgb))}")
    if rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise GraspError("colour image is empty")
    if depth is not None:
        if depth.shape != rgb.shape[:2]:
            raise GraspError(f"depth is {depth.shape[1]}x{depth.shape[0]} but the colour image "
                             f"is {rgb.shape[1]}x{rgb.shape[0]}; they must be aligned")
        if depth.dtype != np.float32:
            raise GraspError(f"depth must be float32 metres, got {depth.dtype}")
    if needs_instruction and not instruction.strip():
        raise GraspError("instruction is empty")


@dataclass(frozen=True)
class GraspPose3D:
    """A grasp in the camera optical frame: position (m), orientation (x, y, z, w), opening (m)."""

    position: tuple[float, float, float]
    orientation: tuple[float, float, float, float]
    width_m: float


def grasp_pose(grasp: Grasp, depth: np.ndarray, k: np.ndarray) -> GraspPose3D:
    """Lift ``grasp`` with a depth image (float32 m, 0/NaN = no reading) and 3x3 intrinsics.

    The depth is the median of valid readings within ``DEPTH_WINDOW`` px of the centre; the
    orientation turns the optical x axis onto the closing axis (a rotation about optical z
    by ``theta``, since +u and +v are the optical x and y axes).
    """
    h, w = depth.shape
    u, v = int(round(grasp.x)), int(round(grasp.y))
    if not (0 <= u < w and 0 <= v < h):
        raise GraspError(f"grasp centre ({grasp.x:.1f}, {grasp.y:.1f}) is outside the "
                         f"{w}x{h} depth image")
    patch = depth[max(0, v - DEPTH_WINDOW):v + DEPTH_WINDOW + 1,
                  max(0, u - DEPTH_WINDOW):u + DEPTH_WINDOW + 1]
    valid = patch[np.isfinite(patch) & (patch > 0)]
    if valid.size == 0:
        raise GraspError(f"no valid depth within {DEPTH_WINDOW} px of the grasp centre "
                         f"({u}, {v})")
    z = float(np.median(valid))
    fx, fy, cx, cy = float(k[0, 0]), float(k[1, 1]), float(k[0, 2]), float(k[1, 2])
    position = ((grasp.x - cx) * z / fx, (grasp.y - cy) * z / fy, z)
    half = grasp.theta / 2.0
    return GraspPose3D(position, (0.0, 0.0, math.sin(half), math.cos(half)),
                       grasp.width * z / fx)


def annotate(rgb: np.ndarray, grasp: Grasp | None, text: str = "") -> np.ndarray:
    """A copy of ``rgb`` with the grasp drawn (red opening edges, green jaws) and ``text``."""
    out = np.ascontiguousarray(rgb.copy())
    if grasp is not None:
        p = np.round(grasp.corners()).astype(np.int32)
        for a, b, colour, thick in ((0, 1, (255, 0, 0), 1), (2, 3, (255, 0, 0), 1),
                                    (1, 2, (0, 200, 0), 2), (3, 0, (0, 200, 0), 2)):
            cv2.line(out, tuple(p[a]), tuple(p[b]), colour, thick, cv2.LINE_AA)
        cv2.circle(out, (int(round(grasp.x)), int(round(grasp.y))), 2, (255, 255, 0), -1)
    if text:
        cv2.putText(out, text[:60], (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1,
                    cv2.LINE_AA)
    return out
