"""Small plane-geometry helpers shared by the simulator and the grasp capability."""
from __future__ import annotations

import math


def wrap_angle(theta: float) -> float:
    """An angle of a (symmetric) closing axis, wrapped to (-pi/2, pi/2]."""
    t = math.fmod(theta + math.pi / 2, math.pi)
    if t <= 0.0:
        t += math.pi
    return t - math.pi / 2
