"""Retrieval ceilings of the tactile data (no trained model involved)."""
from __future__ import annotations

import numpy as np
import pytest

from embodied_transfer.tactile.ceiling import (expected_glove_readings, perfect_converter,
                                               ridge_curve)
from embodied_transfer.tactile.data import middle_hold, paired_set
from embodied_transfer.tactile.errors import TactileError
from embodied_transfer.tactile.layouts import GLOVE


def test_the_queries_are_paired_sets_glove_frames_and_the_galleries_are_noise_free():
    query, of_robot, of_human = expected_glove_readings(12, seed=7, shifts=2)
    s = paired_set(12, seed=7)            # the held-out grasps of tactile evaluate
    mid = [np.flatnonzero(s.episode == e)[middle_hold(ep.envelope)]
           for e, ep in enumerate(s.episodes)]
    np.testing.assert_array_equal(query, s.readings[GLOVE][mid])
    np.testing.assert_array_equal(s.middle_hold_frames(), mid)
    assert query.shape == of_robot.shape == of_human.shape == (12, 137)
    # the retargeted contacts differ from the human's; neither carries reading noise
    assert np.abs(of_robot - of_human).max() > 0.05
    assert np.abs(query - of_human).mean() > np.abs(of_robot - of_human).mean() / 10


def test_a_perfect_converter_finds_nearly_every_grasp_of_a_small_gallery():
    r = perfect_converter(48, seed=11, shifts=2)
    assert set(r["retargeted"]) == set(r["human_contacts"]) == {"top1", "top5"}
    assert r["human_contacts"]["top1"] >= 0.9 and r["retargeted"]["top1"] >= 0.85


def test_ridge_curve_fits_each_size_and_rejects_no_sizes():
    r = ridge_curve(sizes=(8, 24), episodes=16, seed=5)
    assert list(r["by_paired_grasps"]) == ["8", "24"]
    assert all(0 <= v["top1"] <= v["top5"] <= 1 for v in r["by_paired_grasps"].values())
    assert r["by_paired_grasps"]["24"]["top5"] > 5 / 16        # far above chance
    with pytest.raises(TactileError, match="positive sizes"):
        ridge_curve(sizes=())
    with pytest.raises(TactileError, match="no held frame"):
        middle_hold(np.zeros(10))
