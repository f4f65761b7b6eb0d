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


def test_glove_fit_is_fixed_per_unit_and_shifts_a_little_per_grasp():
    """The glove as worn is misregistered by a per-unit offset (one donning, like its gains);
    each grasp adds a smaller fabric shift, so two readings of one grasp differ."""
    import dataclasses

    glove = Device.make(GLOVE)
    assert np.array_equal(glove.fit, Device.make(GLOVE).fit)
    assert not np.allclose(glove.fit, Device.make(GLOVE, unit=1).fit)
    resp = RESPONSES[GLOVE]
    assert resp.fit_jitter_mm < resp.fit_offset_mm
    assert np.abs(glove.fit).max() > resp.fit_jitter_mm
    ep = make_episode(CLASSES.index("box"), np.random.default_rng(0))
    still = dataclasses.replace(glove, response=dataclasses.replace(
        resp, fit_jitter_mm=0.0, noise=0.0))
    worn = dataclasses.replace(still, fit=np.zeros_like(glove.fit))
    a = still.read(ep, np.random.default_rng(1))
    assert np.array_equal(a, still.read(ep, np.random.default_rng(2)))
    assert not np.allclose(a, worn.read(ep, np.random.default_rng(1)), atol=1e-3)
    shifted = dataclasses.replace(still, response=dataclasses.replace(still.response,
                                                                      fit_jitter_mm=1.0))
    assert not np.array_equal(shifted.read(ep, np.random.default_rng(1)),
                              shifted.read(ep, np.random.default_rng(2)))


def test_pressure_field_is_zero_off_the_hand():
    ep = make_episode(CLASSES.index("large_sphere"), np.random.default_rng(0))
    field = pressure_field(ep, 48)
    _, mask, _ = uv_grid(48)
    assert field.shape == (FRAMES, 48, 48)
    assert (field[:, ~mask] == 0).all() and field[:, mask].max() > 1.0


def test_a_reading_is_retargeting_then_sensing_and_noise_can_be_left_out():
    from embodied_transfer.tactile.data import retargeted

    ep = make_episode(1, np.random.default_rng(4))
    robot, glove = Device.make(ROBOT), Device.make(GLOVE)
    whole = robot.read(ep, np.random.default_rng(9))
    rng = np.random.default_rng(9)
    moved = retargeted(ep, robot.response, rng)
    assert not np.allclose(moved.st, ep.st) and not np.allclose(moved.force, ep.force)
    np.testing.assert_array_equal(robot.read(moved, rng, retarget=False), whole)
    assert retargeted(ep, glove.response, rng) is ep              # the glove is the human hand
    clean = glove.read(ep, np.random.default_rng(2), noise=False)
    np.testing.assert_array_equal(clean, glove.read(ep, np.random.default_rng(2), noise=False))
    idle = ep.envelope == 0
    np.testing.assert_allclose(clean[idle], np.broadcast_to(
        np.clip(glove.offset, 0, 1) * glove.alive, clean[idle].shape), atol=1e-7)
    noisy = glove.read(ep, np.random.default_rng(2))
    assert 0.01 < np.abs(noisy - clean)[:, glove.alive].std() < 0.05      # noise std 0.03
