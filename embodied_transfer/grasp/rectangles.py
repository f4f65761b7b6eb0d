"""Antipodal grasp rectangles in the image plane and the Cornell rectangle metric.

Conventions (the same as ``GraspPose.msg``): ``x`` is the column and ``y`` the row of the
centre in pixels; ``theta`` is the rotation of the gripper's closing axis from the image +u
axis in radians, in (-pi/2, pi/2], positive towards +v (clockwise as displayed); ``width``
is the jaw opening along that axis and ``height`` the jaw size across it, in pixels.

Corner order follows the Cornell files: p0→p1 runs along the closing axis (its length is
the opening), p1→p2 across it (the jaw size).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from embodied_transfer.core.geometry import wrap_angle
from embodied_transfer.grasp.errors import GraspError

#: A predicted grasp carries no jaw size; like GR-ConvNet's evaluation, use half the opening.
DEFAULT_HEIGHT_RATIO = 0.5
IOU_THRESHOLD = 0.25
ANGLE_THRESHOLD = math.radians(30.0)


@dataclass(frozen=True)
class Grasp:
    """One antipodal grasp rectangle (pixels, radians)."""

    x: float
    y: float
    theta: float
    width: float
    height: float | None = None

    def __post_init__(self) -> None:
        values = (self.x, self.y, self.theta, self.width,
                  self.height if self.height is not None else 1.0)
        if not all(math.isfinite(v) for v in values):
            raise GraspError(f"grasp has a non-finite value: {self}")
        if self.width <= 0 or (self.height is not None and self.height <= 0):
            raise GraspError(f"grasp width and height must be > 0: {self}")
        object.__setattr__(self, "theta", wrap_angle(self.theta))

    @property
    def jaw(self) -> float:
        """Jaw size across the closing axis (``height``, or the default ratio of the width)."""
        return self.height if self.height is not None else DEFAULT_HEIGHT_RATIO * self.width

    def corners(self) -> np.ndarray:
        """(4, 2) corners as (u, v), Cornell order."""
        along = np.array([math.cos(self.theta), math.sin(self.theta)])
        across = np.array([-along[1], along[0]])
        c = np.array([self.x, self.y])
        hw, hh = self.width / 2.0, self.jaw / 2.0
        return np.stack([c - along * hw - across * hh, c + along * hw - across * hh,
                         c + along * hw + across * hh, c - along * hw + across * hh])

    def samples(self, along: int = 11, across: int = 5) -> np.ndarray:
        """(along * across, 2) points (u, v) on a grid covering the rectangle, edges included."""
        axis = np.array([math.cos(self.theta), math.sin(self.theta)])
        normal = np.array([-axis[1], axis[0]])
        s, t = np.meshgrid(np.linspace(-0.5, 0.5, along), np.linspace(-0.5, 0.5, across))
        return (np.array([self.x, self.y]) + s[..., None] * axis * self.width
                + t[..., None] * normal * self.jaw).reshape(-1, 2)

    def sample_pixels(self, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
        """(rows, cols) of the pixels under :meth:`samples` in a ``height`` x ``width``
        image (points beyond an edge read the edge pixel)."""
        uv = self.samples()
        return (np.clip(np.floor(uv[:, 1]).astype(int), 0, height - 1),
                np.clip(np.floor(uv[:, 0]).astype(int), 0, width - 1))

    @classmethod
    def from_corners(cls, corners: np.ndarray) -> "Grasp":
        """The rectangle through four corners in Cornell order."""
        p = np.asarray(corners, dtype=np.float64)
        if p.shape != (4, 2) or not np.all(np.isfinite(p)):
            raise GraspError(f"a rectangle needs 4 finite (u, v) corners, got {p.tolist()}")
        d = p[1] - p[0]
        width, height = float(np.hypot(*d)), float(np.hypot(*(p[2] - p[1])))
        if width <= 0 or height <= 0:
            raise GraspError(f"degenerate rectangle: {p.tolist()}")
        cx, cy = p.mean(axis=0)
        return cls(float(cx), float(cy), math.atan2(d[1], d[0]), width, height)

    def inside(self, width: int, height: int) -> bool:
        """True when the centre lies in an image of this size."""
        return 0.0 <= self.x < width and 0.0 <= self.y < height

    def scaled(self, factor: float) -> "Grasp":
        """The same grasp in an image resized by ``factor``."""
        return Grasp(self.x * factor, self.y * factor, self.theta, self.width * factor,
                     None if self.height is None else self.height * factor)


def angle_difference(a: float, b: float) -> float:
    """Difference of two closing-axis angles in [0, pi/2] (axes are symmetric)."""
    d = abs(wrap_angle(a) - wrap_angle(b)) % math.pi
    return min(d, math.pi - d)


def iou(a: Grasp, b: Grasp) -> float:
    """Intersection over union of two rotated rectangles."""
    pa, pb = a.corners().astype(np.float32), b.corners().astype(np.float32)
    inter, _ = cv2.intersectConvexConvex(pa, pb)
    union = a.width * a.jaw + b.width * b.jaw - inter
    return min(1.0, float(inter / union)) if union > 0 else 0.0


def matches(pred: Grasp, truth: Grasp, iou_threshold: float = IOU_THRESHOLD,
            angle_threshold: float = ANGLE_THRESHOLD) -> bool:
    """The rectangle metric: angle within 30° and IoU above 25 %."""
    return angle_difference(pred.theta, truth.theta) < angle_threshold \
        and iou(pred, truth) > iou_threshold


def correct(pred: Grasp | None, truths: list[Grasp], **kwargs) -> bool:
    """A prediction is correct when it matches any ground-truth rectangle (none → wrong)."""
    return pred is not None and any(matches(pred, t, **kwargs) for t in truths)
