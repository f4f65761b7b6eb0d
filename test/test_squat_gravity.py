"""Gravity out of REP-145 accelerometer readings (:mod:`embodied_transfer.squat.gravity`)."""
from __future__ import annotations

import numpy as np
import pytest

from embodied_transfer.sim.squat import gravity_in_sensor
from embodied_transfer.squat.gravity import G, GravityTracker, gravity_from_orientation


def _quat(rotvec) -> np.ndarray:
    """(w, x, y, z) of a rotation vector."""
    angle = np.linalg.norm(rotvec)
    axis = np.asarray(rotvec) / angle if angle else np.zeros(3)
    return np.array([np.cos(angle / 2), *(np.sin(angle / 2) * axis)])


def test_orientation_gives_the_simulators_gravity_reaction():
    rng = np.random.default_rng(0)
    for _ in range(20):
        q = _quat(rng.normal(size=3))
        w, x, y, z = q
        np.testing.assert_allclose(gravity_from_orientation((x, y, z, w)),
                                   gravity_in_sensor(q)[0], atol=1e-9)
    np.testing.assert_allclose(gravity_from_orientation((0, 0, 0, 1)), [0, 0, G])


def test_the_tracker_follows_a_turning_watch_from_accel_and_gyro():
    """A watch turning at 0.8 rad/s about a tilted axis, no user acceleration: the estimate
    turns with the gyro and user acceleration stays near zero; a user acceleration comes
    through."""
    rate = 50.0
    omega = np.array([0.3, -0.5, 0.6])
    tracker = GravityTracker(time_constant_s=0.5)
    q = _quat([0.4, 0.2, 0.0])
    dq = _quat(omega / rate)
    errors = []
    for i in range(500):
        gravity = gravity_in_sensor(q)[0]
        push = np.array([0.0, 0.0, 1.0]) if 300 <= i < 310 else np.zeros(3)   # a short push
        user = tracker.update(int(i * 1e9 / rate), gravity + push, omega)
        errors.append(np.linalg.norm(user - push))
        w1, x1, y1, z1 = q                       # q ⊗ dq: turn about the body axes
        w2, x2, y2, z2 = dq
        q = np.array([w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2, w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
                      w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2, w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2])
    errors = np.array(errors)
    assert errors[20:300].max() < 0.05                 # follows the rotation
    assert errors[300:310].max() < 0.3     # a 0.2 s push mostly comes through (tau 0.5 s)


def test_the_tracker_restarts_on_a_jump_back_and_ignores_out_of_order_stamps():
    t = GravityTracker()
    t.update(10**10, [0.0, 0.0, G], [0.0, 0.0, 0.0])
    before = t.gravity.copy()
    t.update(10**10 - 10**6, [G, 0.0, 0.0], [0.0, 0.0, 0.0])       # 1 ms back: no update
    np.testing.assert_array_equal(t.gravity, before)
    t.update(10**9, [G, 0.0, 0.0], [0.0, 0.0, 0.0])                # 9 s back: a new stream
    np.testing.assert_allclose(t.gravity, [G, 0.0, 0.0])
    with pytest.raises(ValueError):
        GravityTracker(0.0)
