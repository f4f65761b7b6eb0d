"""From an image-plane grasp to what a controller needs (pure numpy + OpenCV).

* :func:`check_inputs` validates an image / depth / instruction triple before a backend sees it;
* :func:`grasp_3d` lifts a :class:`~.rectangles.Grasp` to a :class:`Grasp3D` a controller
  can execute (gripper pose, opening and standoff in metres) in the camera's optical frame
  (REP-103/105: z forward, x right, y down) from depth and the intrinsics;
* :func:`annotate` draws the rectangle on a copy of the image (jaws thick, opening thin).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import cv2
import numpy as np

from embodied_transfer.core.geometry import quaternion_from_matrix
from embodied_transfer.grasp.errors import GraspError
from embodied_transfer.grasp.rectangles import Grasp



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
class Grasp3D:
    """A parallel-jaw grasp a controller can execute, in one 3-D frame (m).

    The grasp frame, as GPD's hand frame (approach, binormal, axis): the origin is the tool
    centre point, midway between the jaw pads once closed on the object; column 0 of
    ``rotation`` (+x) is the **approach** direction, from the open gripper towards the
    object; column 1 (+y) the **closing** axis, along which the jaws close (a grasp turned by
    pi about x is the same grasp); column 2 (+z) is x × y. ``width`` is the jaw opening the
    grasp needs (between the pads), ``standoff`` how far back along -x the pre-grasp pose
    lies, ``score`` the backend's confidence in [0, 1] (NaN when it gives none).
    """

    position: np.ndarray          # (3,)
    rotation: np.ndarray          # (3, 3), columns: approach, closing, approach × closing
    width: float
    standoff: float
    score: float = float("nan")

    @property
    def approach(self) -> np.ndarray:
        return self.rotation[:, 0]

    @property
    def closing(self) -> np.ndarray:
        return self.rotation[:, 1]

    @property
    def pre_grasp(self) -> np.ndarray:
        """Where the tool centre point waits before the approach: ``standoff`` back along x."""
        return self.position - self.standoff * self.approach

    @property
    def orientation(self) -> tuple[float, float, float, float]:
        """The grasp frame's orientation as a quaternion (x, y, z, w)."""
        return quaternion_from_matrix(self.rotation)

    def transformed(self, rotation: np.ndarray, translation: np.ndarray) -> "Grasp3D":
        """The same grasp expressed in another frame (``p' = rotation @ p + translation``)."""
        return replace(self, position=np.asarray(rotation) @ self.position
                       + np.asarray(translation), rotation=np.asarray(rotation) @ self.rotation)


def grasp_3d(grasp: Grasp, depth: np.ndarray, k: np.ndarray, grasp_depth: float = 0.02,
             standoff: float = 0.1, score: float = float("nan")) -> Grasp3D:
    """Lift an image rectangle to a :class:`Grasp3D` in the camera's optical frame.

    ``depth`` is float32 m along the optical axis (0/NaN = no reading), ``k`` the 3x3
    intrinsics. Like a Cornell / GR-ConvNet grasp, it is executed perpendicular to the image
    plane: the approach is the optical +z. The rectangle is taken to lie on the nearest
    surface seen inside it (the least valid depth on an 11 x 5 grid over the rectangle); its
    centre and closing axis are those of the rectangle on that plane, the opening its width
    there, and the tool centre point lies ``grasp_depth`` beyond that surface.
    """
    if not (math.isfinite(grasp_depth) and math.isfinite(standoff) and standoff >= 0):
        raise GraspError(f"grasp_depth ({grasp_depth}) must be finite and standoff "
                         f"({standoff}) finite and >= 0")
    h, w = depth.shape
    if not (0 <= grasp.x < w and 0 <= grasp.y < h):
        raise GraspError(f"grasp centre ({grasp.x:.1f}, {grasp.y:.1f}) is outside the "
                         f"{w}x{h} depth image")
    seen = depth[grasp.sample_pixels(h, w)]
    valid = seen[np.isfinite(seen) & (seen > 0)]
    if valid.size == 0:
        raise GraspError(f"no valid depth inside the grasp rectangle at ({grasp.x:.0f}, "
                         f"{grasp.y:.0f})")
    z = float(valid.min())
    fx, fy, cx, cy = float(k[0, 0]), float(k[1, 1]), float(k[0, 2]), float(k[1, 2])
    if not (fx > 0 and fy > 0):
        raise GraspError(f"intrinsics have no positive focal lengths (fx={fx}, fy={fy})")
    # the rectangle's two ends on the plane at depth z, in the optical frame
    half = np.array([math.cos(grasp.theta), math.sin(grasp.theta)]) * grasp.width / 2
    ends = [np.array([(u - cx) * z / fx, (v - cy) * z / fy, z])
            for u, v in (np.array([grasp.x, grasp.y]) - half, np.array([grasp.x, grasp.y]) + half)]
    approach = np.array([0.0, 0.0, 1.0])
    closing = ends[1] - ends[0]
    width = float(np.linalg.norm(closing))
    closing = closing / width
    rotation = np.column_stack([approach, closing, np.cross(approach, closing)])
    centre = (ends[0] + ends[1]) / 2
    return Grasp3D(centre + grasp_depth * approach, rotation, width, float(standoff),
                   float(score))


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
