"""Physical units and constants shared by the simulator, the real-data readers and ROS."""
from __future__ import annotations

import numpy as np

#: Standard gravity [m/s^2] (the watch reports acceleration in units of it).
STANDARD_GRAVITY = 9.80665


def g_to_mps2(x: float | np.ndarray) -> float | np.ndarray:
    """Acceleration in units of standard gravity to m/s^2."""
    return np.multiply(x, STANDARD_GRAVITY)
