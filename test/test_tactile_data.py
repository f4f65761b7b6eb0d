"""Synthetic tactile data: readings in range, pairing, device differences, pressure field."""
from __future__ import annotations

import numpy as np

from embodied_transfer.tactile.data import (CLASSES, FRAMES, RESPONSES, Device, make_episode,
                                            paired_set, pressure_field, unpaired_set)
from embodied_transfer.tactile.layouts import FINGERTIPS, GLOVE, ROBOT
from embodied_transfer.tactile.surface import uv_grid


def test_paired_set_reads_the_same_grasps_on_every_device():
    s = paired_set(len(CLASSES), seed=3)
    assert len(s) == len(CLASSES) * FRAMES
    assert set(np.unique(s.labels)) == set(range(len(CLASSES)))
    for d, n in ((GLOVE, 137), (ROBOT, 1062), (FINGERTIPS, 200)):
        r = s.readings[d]
        assert r.shape == (len(s), n) and r.dtype == np.float32
        assert r.min() >= 0.0 and r.max() <= 1.0
    # contact (force envelope) shows on both devices; frames without contact are ~empty
    hold, idle = s.holding, s.envelope == 0
    for d in (GLOVE, ROBOT):
        peak = s.readings[d].max(axis=1)
        assert peak[hold].mean() > peak[idle].mean() + 0.1
    again = paired_set(len(CLASSES), seed=3)
    assert np.array_equal(again.readings[ROBOT], s.readings[ROBOT])     # seeded


def test_devices_differ_in_response_and_have_dead_taxels():
    glove, robot = RESPONSES[GLOVE], RESPONSES[ROBOT]
    assert glove.blur_mm > 3 * robot.blur_mm and glove.noise > robot.noise
    p = np.array([5.0, 20.0, 80.0])
    assert not np.allclose(glove.curve_of(p), robot.curve_of(p), atol=0.1)
    s = unpaired_set(GLOVE, 16, seed=5)
    dead = ~Device.make(GLOVE).alive
    assert dead.any() and (s.readings[GLOVE][:, dead] == 0).all()


def test_pressure_field_is_zero_off_the_hand():
    ep = make_episode(CLASSES.index("large_sphere"), np.random.default_rng(0))
    field = pressure_field(ep, 48)
    _, mask, _ = uv_grid(48)
    assert field.shape == (FRAMES, 48, 48)
    assert (field[:, ~mask] == 0).all() and field[:, mask].max() > 1.0
