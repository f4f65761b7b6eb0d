"""Ground-truth grasps of the tabletop's objects, in the world frame.

:func:`world_grasps` derives each object's antipodal top-down grasps (:class:`WorldGrasp`)
from its geometry (:class:`~embodied_transfer.sim.tabletop.ObjectSpec`), keeping those the
gripper can open to; :mod:`embodied_transfer.sim.tabletop_gripper` executes them. Their image
rectangles are the grasp capability's (:mod:`embodied_transfer.grasp.scene_labels`).

Conventions: world REP-103 (x forward, y left, z up; the table top at ``TABLE_TOP``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from embodied_transfer.core.geometry import wrap_angle
from embodied_transfer.sim.errors import SimError
from embodied_transfer.sim.tabletop import (HANDLE_HALF, PAD_WIDTH, RING_BOXES, TABLE_TOP,
                                            ObjectSpec)

MAX_GRASP_OPENING = 0.08      # m, the widest ground-truth grasp (room to open around it)
GRASP_CLEARANCE = 0.01        # m, a grasp's opening = object thickness + this
GRASP_DEPTH = 0.02            # m, the grasp point sits this far below the top it grips
MIN_GRASP_Z = 0.02            # m above the table: finger tips 5 mm clear of it


@dataclass(frozen=True)
class WorldGrasp:
    """A top-down parallel-jaw grasp in the world frame.

    The grasp point (x, y, z) lies midway between the pads, ``GRASP_DEPTH`` below the top it
    grips (never lower than ``MIN_GRASP_Z`` above the table); ``yaw`` is the closing axis
    from world +x towards +y in (-pi/2, pi/2]; ``opening`` the jaw opening the grasp needs
    (object thickness + clearance) and ``jaw`` the pad size across the closing axis, in m.
    ``top`` is the height of the highest surface between the jaws as seen from above: the
    image rectangle is drawn on that plane (None: on the grasp's own height).
    """

    x: float
    y: float
    z: float
    yaw: float
    opening: float
    jaw: float = PAD_WIDTH
    top: float | None = None

    def __post_init__(self) -> None:
        if not all(math.isfinite(v) for v in (self.x, self.y, self.z, self.yaw, self.opening,
                                              self.jaw, self.image_plane)):
            raise SimError(f"grasp has a non-finite value: {self}")
        if self.opening <= 0 or self.jaw <= 0:
            raise SimError(f"grasp opening and jaw must be > 0: {self}")
        object.__setattr__(self, "yaw", wrap_angle(self.yaw))

    @property
    def centre(self) -> np.ndarray:
        return np.array([self.x, self.y, self.z])

    @property
    def image_plane(self) -> float:
        """World height at which the grasp is drawn in images (m)."""
        return self.z if self.top is None else self.top

    @property
    def axis(self) -> np.ndarray:
        """Unit closing axis (world)."""
        return np.array([math.cos(self.yaw), math.sin(self.yaw), 0.0])


def grasp_z(top: float) -> float:
    """Height above the table of a grasp gripping just below ``top`` (m above the table)."""
    return max(top - GRASP_DEPTH, MIN_GRASP_Z)


def world_grasps(obj: ObjectSpec) -> list[WorldGrasp]:
    """Antipodal grasps of one object from its geometry (only those the gripper can open to)."""
    c, s = obj.category, obj.size
    # x, y, z, yaw, opening, jaw (object frame); ``top`` is the height seen from above
    local: list[tuple[float, float, float, float, float, float]] = []
    top = obj.height
    handle_top = None
    if c == "box":
        z = grasp_z(2 * s[2])
        for axis in (0, 1):
            across = s[1 - axis]
            jaw = min(PAD_WIDTH, 2 * across)
            reach = max(0.0, across - jaw / 2 - 0.003)
            for offset in sorted({-0.6 * reach, 0.0, 0.6 * reach}):
                pos = (0.0, offset) if axis == 0 else (offset, 0.0)
                local.append((*pos, z, axis * math.pi / 2, 2 * s[axis] + GRASP_CLEARANCE, jaw))
    elif c in ("cylinder", "can", "sphere", "bottle"):
        z = s[0] if c == "sphere" else grasp_z(2 * s[1])   # sphere: at the equator
        for k in range(4):
            local.append((0.0, 0.0, max(z, MIN_GRASP_Z), k * math.pi / 4,
                          2 * s[0] + GRASP_CLEARANCE, PAD_WIDTH))
    else:                                          # mug, bowl: across the rim wall
        radius, half_height, wall = s
        n = RING_BOXES[c]
        face = 2 * radius * math.tan(math.pi / n)
        z = grasp_z(2 * half_height)
        for i in range(0, n, 2):
            phi = 2 * math.pi * i / n
            if c == "mug" and abs(math.remainder(phi, 2 * math.pi)) < math.radians(50):
                continue                           # not next to the handle (local +x)
            r = radius - wall / 2
            local.append((r * math.cos(phi), r * math.sin(phi), z, phi,
                          wall + GRASP_CLEARANCE, min(PAD_WIDTH, face)))
        if c == "mug":                             # across the handle, tangentially
            hz = 0.6 * half_height
            handle_top = half_height + hz
            local.append((radius + 0.018, 0.0, grasp_z(handle_top), math.pi / 2,
                          2 * HANDLE_HALF[1] + GRASP_CLEARANCE, PAD_WIDTH))
    out = []
    for i, (x, y, z, yaw, opening, jaw) in enumerate(local):
        if opening > MAX_GRASP_OPENING:
            continue
        seen = handle_top if handle_top is not None and i == len(local) - 1 else top
        wx, wy, _ = obj.to_world(np.array([x, y, 0.0]))
        out.append(WorldGrasp(float(wx), float(wy), TABLE_TOP + z, obj.yaw + yaw, opening, jaw,
                              TABLE_TOP + seen))
    return out

