"""The Shadow Hand contact source: the model, its touch sensors, grasp episodes."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from embodied_transfer.sim.errors import SimError
from embodied_transfer.sim.hand_grasp import (CLASS_NAMES, FRAMES, RATE_HZ, generate,
                                              simulate_grasp)
from embodied_transfer.sim.shadow_hand import N_TOUCH, SHAPES, ShadowHand, build_spec


def test_the_hand_has_its_92_touch_sensors_on_palm_phalanges_and_thumb():
    hand = ShadowHand("box")
    assert len(hand.sensors) == N_TOUCH == 92 and hand.model.nu == 20
    per_part = Counter(s.body[:2] if s.body != "palm" else "palm" for s in hand.sensors)
    assert per_part == {"palm": 8, "ff": 17, "mf": 17, "rf": 17, "lf": 18, "th": 15}
    assert [s.index for s in hand.sensors] == list(range(92))
    assert not build_spec("box").pairs          # finger-finger pairs removed: object only
    assert hand.dt == pytest.approx(0.002)


def test_a_grasp_records_touch_and_contacts_from_the_same_frames():
    ep = simulate_grasp(CLASS_NAMES.index("large_capsule"), seed=3)
    assert ep.touch.shape == (FRAMES, 92) and ep.touch.dtype == np.float32
    assert np.all(ep.touch >= 0) and np.all(np.isfinite(ep.touch))
    assert len(ep.contact_frame) == len(ep.contact_body) == len(ep.contact_point) \
        == len(ep.contact_force) > 0
    assert np.all(np.diff(ep.contact_frame) >= 0) and np.all(ep.contact_force >= 0)
    assert all(not b.startswith("robot0:") and b != "object" for b in ep.contact_body)
    assert np.abs(ep.contact_point).max() < 0.1          # points in their body's frame
    hold = slice(int(0.8 * RATE_HZ), int(1.4 * RATE_HZ))
    frames_with_touch = np.unique(ep.contact_frame)
    assert set(range(hold.start, hold.stop)) <= set(frames_with_touch.tolist())
    assert (ep.touch[hold] > 0).sum(1).mean() >= 5       # several sensors while holding
    # the hand opens at the end: less total force than while holding
    assert ep.touch[-1].sum() < ep.touch[hold].sum(1).mean()


def test_same_seed_same_episode_and_each_object_gets_contacts():
    a, b = generate(8, seed=1), generate(8, seed=1)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.touch, y.touch)
        np.testing.assert_array_equal(x.contact_point, y.contact_point)
    assert [e.label for e in a] == list(range(len(CLASS_NAMES)))
    assert all((e.touch > 0).any() for e in a)
    c = generate(8, seed=2)
    assert any(not np.array_equal(x.touch, y.touch) for x, y in zip(a, c))


def test_bad_requests_name_the_cause(monkeypatch):
    with pytest.raises(SimError, match="unknown object shape 'torus'"):
        ShadowHand("torus")
    with pytest.raises(SimError, match="object class 8 outside"):
        simulate_grasp(len(CLASS_NAMES), seed=0)
    with pytest.raises(SimError, match="at least one frame"):
        simulate_grasp(0, seed=0, frames=0)
    with pytest.raises(SimError, match="object scale"):
        ShadowHand("sphere").place_object(10.0)
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(SimError, match="gymnasium-robotics package, which is not installed"):
        build_spec(next(iter(SHAPES)))


def test_touch_grids_read_the_same_grasp_without_changing_it():
    from embodied_transfer.sim.hand_grasp import simulate_grasp
    from embodied_transfer.sim.shadow_hand import TOUCH_GRIDS

    plain = simulate_grasp(6, seed=11)
    gridded = simulate_grasp(6, seed=11, touch_grids=True)
    assert plain.grid is None and gridded.grid.shape == (plain.frames, 600)
    assert sum(g.size for g in TOUCH_GRIDS) == 600
    np.testing.assert_array_equal(plain.touch, gridded.touch)       # sensors do not act
    touched = np.isin(np.arange(plain.frames), plain.contact_frame)
    assert gridded.grid[plain.touch.sum(1) > 1.0].sum(1).min() > 0     # it feels the hold
    assert gridded.grid[~touched].sum() == 0                          # and nothing else
