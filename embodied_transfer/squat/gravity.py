"""Gravity out of an accelerometer's reading: REP-145 IMUs report specific force, gravity
included; the Real2Sim converter works on user acceleration (gravity removed, what the
real watch's CoreMotion reports).

:func:`gravity_from_orientation` is exact where the IMU reports its orientation (a fused
IMU, the simulated watch). :class:`GravityTracker` estimates gravity in the sensor frame from
the accelerometer and the gyroscope alone (a complementary filter: the estimate turns with
the measured rotation and is pulled towards the accelerometer's reading with time constant
``time_constant_s``, its length kept at g), for IMUs that report no orientation. Pure numpy.
"""
from __future__ import annotations

import numpy as np

from embodied_transfer.core.geometry import matrix_from_quaternion

G = 9.80665          # m/s², standard gravity


def gravity_from_orientation(quat_xyzw, g: float = G) -> np.ndarray:
    """What an accelerometer at rest with orientation ``quat_xyzw`` (sensor in a z-up world
    frame, REP-103, as ``sensor_msgs/Imu.orientation``) reads: +g along world z in the sensor
    frame (m/s²)."""
    return g * matrix_from_quaternion(quat_xyzw)[2]      # world z seen in the sensor frame


class GravityTracker:
    """Gravity in the sensor frame from accelerometer + gyroscope (module docstring)."""

    def __init__(self, time_constant_s: float = 1.0, g: float = G,
                 new_stream_gap_s: float = 1.0) -> None:
        if not time_constant_s > 0 or not new_stream_gap_s > 0:
            raise ValueError(f"time_constant_s ({time_constant_s}) and new_stream_gap_s "
                             f"({new_stream_gap_s}) must be > 0")
        self.time_constant_s, self.g = float(time_constant_s), float(g)
        # a stamp this far before the last one is a new stream (the streams' rule)
        self.jump_back_ns = int(round(new_stream_gap_s * 1e9))
        self.reset()

    def reset(self) -> None:
        """Forget the estimate (a new stream starts from its first reading)."""
        self.gravity: np.ndarray | None = None
        self._last_ns: int | None = None

    def update(self, stamp_ns: int, accel, gyro) -> np.ndarray:
        """Add one reading (specific force m/s², angular rate rad/s); returns the user
        acceleration, ``accel`` minus the gravity estimate."""
        a = np.asarray(accel, dtype=float)
        w = np.asarray(gyro, dtype=float)
        if self.gravity is not None and self._last_ns is not None \
                and self._last_ns - self.jump_back_ns <= stamp_ns <= self._last_ns:
            return a - self.gravity          # out of order: no update (the stream rejects it)
        if self.gravity is None or self._last_ns is None or stamp_ns <= self._last_ns:
            norm = np.linalg.norm(a)
            self.gravity = a * (self.g / norm) if norm > 0 else np.array([0.0, 0.0, self.g])
        else:
            dt = (stamp_ns - self._last_ns) * 1e-9
            # a fixed world vector seen from a frame turning at w: dv/dt = -w x v
            angle = np.linalg.norm(w) * dt
            v = self.gravity
            if angle > 0:
                k = w / np.linalg.norm(w)
                v = (v * np.cos(angle) - np.cross(k, v) * np.sin(angle)
                     + k * (k @ v) * (1 - np.cos(angle)))
            v = v + min(dt / self.time_constant_s, 1.0) * (a - v)
            self.gravity = v * (self.g / np.linalg.norm(v))
        self._last_ns = int(stamp_ns)
        return a - self.gravity
