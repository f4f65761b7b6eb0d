"""Paired glove / robot-hand frames from the Shadow Hand's physical contacts."""
from __future__ import annotations

import numpy as np
import pytest

from embodied_transfer.tactile.errors import TactileError
from embodied_transfer.tactile.physical import (contact_st, physical_paired_set,
                                                retargeted_episode)
from embodied_transfer.tactile.surface import segment_index


def test_contacts_land_on_the_matching_canonical_segment():
    seg, s, t = contact_st("ffdistal", (0.0, -0.007, 0.031))        # index fingertip pad
    assert seg == segment_index("index_distal") and s == pytest.approx(0.5) and t == 1.0
    seg, s, t = contact_st("mfproximal", (0.007, -0.007, 0.0))      # thumb side, at the base
    assert seg == segment_index("middle_proximal") and s == pytest.approx(0.25) and t == 0.0
    assert contact_st("rfmiddle", (0.0, 0.008, 0.01)) is None        # back of the phalanx
    seg, s, t = contact_st("palm", (0.043, -0.011, -0.011))         # thumb-side wrist corner
    assert seg == segment_index("palm") and (s, t) == (0.0, 0.0)
    seg, s, _ = contact_st("lfmetacarpal", (-0.026, -0.011, 0.0))   # little-finger edge
    assert seg == segment_index("palm") and s == pytest.approx(1.0)
    assert contact_st("thdistal", (0.0, -0.009, 0.0))[0] == segment_index("thumb_distal")
    assert contact_st("forearm", (0.0, -0.01, 0.0)) is None          # no glove there
    with pytest.raises(TactileError, match="no canonical segment for Shadow body 'ffknuckle'"):
        contact_st("ffknuckle", (0, 0, 0))


def test_paired_frames_come_from_the_same_grasps_and_steps():
    ps = physical_paired_set(8, seed=0)
    f = ps.frames
    glove, robot = f.readings["glove_137"], f.readings["shadow_palmar_62"]
    assert glove.shape == (8 * 80, 137) and robot.shape == (8 * 80, len(ps.sensors))
    assert all("back" not in name for name in ps.sensors) and len(ps.sensors) < 92
    assert 0.0 <= robot.min() and robot.max() <= 1.0 and 0.0 <= glove.min() <= glove.max() <= 1.0
    assert f.labels.tolist() == np.repeat(np.arange(8), 80).tolist()
    assert f.holding.any() and not f.holding.all()
    # the glove feels more where the robot hand feels more: frames without contact are quiet
    quiet = robot.sum(1) == 0
    assert quiet.any() and glove[quiet].mean() < glove[f.holding].mean()
    again = physical_paired_set(8, seed=0)
    np.testing.assert_array_equal(again.frames.readings["glove_137"], glove)
    with pytest.raises(TactileError, match="at least one episode"):
        physical_paired_set(0)


def test_each_contact_becomes_a_patch_of_its_own_frame():
    from embodied_transfer.sim.hand_grasp import simulate_grasp

    ep = simulate_grasp(5, seed=4)
    tactile, dropped = retargeted_episode(ep)
    assert len(tactile.force) + dropped == len(ep.contact_force)
    assert tactile.tremor.shape == (ep.frames, len(tactile.force))
    assert np.all(tactile.tremor.sum(axis=0) == 1.0)          # one frame per patch
    assert np.all((tactile.size >= 1.5) & (tactile.size <= 8.0))
