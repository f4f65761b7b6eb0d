"""Small geometry helpers shared by the simulator, the grasp capability and the nodes."""
from __future__ import annotations

import math

import numpy as np


def wrap_angle(theta: float) -> float:
    """An angle of a (symmetric) closing axis, wrapped to (-pi/2, pi/2]."""
    t = math.fmod(theta + math.pi / 2, math.pi)
    if t <= 0.0:
        t += math.pi
    return t - math.pi / 2


def quaternion_from_matrix(rot) -> tuple[float, float, float, float]:
    """A rotation matrix (3x3, orthonormal, det +1) as a unit quaternion (x, y, z, w), w >= 0
    (the ROS ``geometry_msgs/Quaternion`` order)."""
    m = np.asarray(rot, dtype=float)
    if m.shape != (3, 3) or not np.allclose(m @ m.T, np.eye(3), atol=1e-6) \
            or np.linalg.det(m) < 0:
        raise ValueError(f"not a rotation matrix: {m.round(4).tolist()}")
    # Shepperd's method: divide by the largest of 4w², 4x², 4y², 4z² for accuracy.
    t = np.trace(m)
    if t > max(m[0, 0], m[1, 1], m[2, 2]):
        s = 2.0 * math.sqrt(1.0 + t)
        q = ((m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, s / 4)
    else:
        i = int(np.argmax(np.diag(m)))
        j, k = (i + 1) % 3, (i + 2) % 3
        s = 2.0 * math.sqrt(max(1.0 + m[i, i] - m[j, j] - m[k, k], 0.0))
        q = [0.0, 0.0, 0.0, (m[k, j] - m[j, k]) / s]
        q[i], q[j], q[k] = s / 4, (m[j, i] + m[i, j]) / s, (m[k, i] + m[i, k]) / s
    q = np.array(q) / np.linalg.norm(q)
    return tuple(float(v) for v in (q if q[3] >= 0 else -q))


def matrix_from_quaternion(q) -> np.ndarray:
    """A quaternion (x, y, z, w; normalised here, must not be zero) as a 3x3 rotation matrix."""
    x, y, z, w = np.asarray(q, dtype=float)
    n = x * x + y * y + z * z + w * w
    if not math.isfinite(n) or n < 1e-12:
        raise ValueError(f"quaternion {tuple(q)} is zero or not finite")
    s = 2.0 / n
    return np.array([[1 - s * (y * y + z * z), s * (x * y - z * w), s * (x * z + y * w)],
                     [s * (x * y + z * w), 1 - s * (x * x + z * z), s * (y * z - x * w)],
                     [s * (x * z - y * w), s * (y * z + x * w), 1 - s * (x * x + y * y)]])
