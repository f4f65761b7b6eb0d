"""Retrieval ceilings of the tactile data (no trained model involved)."""
from __future__ import annotations

import numpy as np
import pytest

from embodied_transfer.tactile.ceiling import (RidgeConverter, expected_glove_readings,
                                               fit_ridge, perfect_converter, ridge_curve)
from embodied_transfer.tactile.data import middle_hold, paired_set
from embodied_transfer.tactile.errors import TactileError
from embodied_transfer.tactile.evaluate import retrieval, score_retrieval
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
    maps = fit_ridge(sizes=(8, 24))
    r = ridge_curve(sizes=(8, 24), episodes=16, seed=5, maps=maps)
    for key in ("by_paired_grasps", "by_paired_grasps_mahalanobis"):
        assert list(r[key]) == ["8", "24"]
        assert all(0 <= v["top1"] <= v["top5"] <= 1 for v in r[key].values())
        assert r[key]["24"]["top5"] > 5 / 16        # far above chance
    # the residual covariance is that of the glove readings the fit leaves unexplained
    train = paired_set(24, seed=0)
    rows = train.envelope >= 0.05
    residual = train.readings[GLOVE][rows] - maps[24](train.readings["robot_hand_1062"][rows])
    np.testing.assert_allclose(maps[24].residual_cov, np.cov(residual.T), atol=1e-9)
    with pytest.raises(TactileError, match="positive sizes"):
        ridge_curve(sizes=())
    with pytest.raises(TactileError, match="no held frame"):
        middle_hold(np.zeros(10))


def test_a_per_digit_ridge_predicts_each_glove_taxel_from_its_own_digit_only():
    from embodied_transfer.tactile.layouts import load_layout
    from embodied_transfer.tactile.surface import uv_grid

    conv = fit_ridge(sizes=(12,), per_digit=True, sqrt_features=True)[12]
    _, mask, pixel_group = uv_grid(32)
    pixels = np.tile(pixel_group[mask.ravel()], 2)          # the pixels, then their roots
    glove_group = load_layout(GLOVE).group
    assert conv.weight.shape == (len(pixels), 137)
    across = pixels[:, None] != glove_group[None, :]
    assert np.all(conv.weight[across] == 0) and np.any(conv.weight[~across] != 0)
    # pressing on one digit of the robot hand moves the glove's prediction on that digit only
    robot = load_layout("robot_hand_1062")
    touch = np.zeros((1, robot.size))
    digit = robot.group[0]
    touch[0, robot.group == digit] = 0.5
    moved = np.abs(conv(touch) - conv(np.zeros_like(touch)))[0]
    assert moved[glove_group == digit].max() > 1e-3
    np.testing.assert_allclose(moved[glove_group != digit], 0.0, atol=1e-12)
    x = touch @ conv.uv
    np.testing.assert_allclose(conv.features(touch), np.concatenate([x, np.sqrt(x)], 1))


def test_mahalanobis_scores_are_minus_squared_distances_under_the_shrunk_precision():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(5, 5))
    conv = RidgeConverter(uv=rng.normal(size=(7, 4)), x_mean=rng.normal(size=4),
                          weight=rng.normal(size=(4, 5)), y_mean=rng.normal(size=5),
                          residual_cov=a @ a.T + np.eye(5))
    glove, robot = rng.normal(size=(6, 5)), rng.normal(size=(3, 7))
    scores = conv.mahalanobis_scores(glove, robot, shrinkage=0.2)
    cov = conv.residual_cov + 0.2 * np.trace(conv.residual_cov) / 5 * np.eye(5)
    diff = glove[:, None] - conv(robot)[None]
    np.testing.assert_allclose(scores, -np.einsum("ijk,kl,ijl->ij", diff, np.linalg.inv(cov),
                                                  diff), rtol=1e-9, atol=1e-9)
    # with an isotropic covariance it is the plain squared distance, times the precision
    iso = RidgeConverter(conv.uv, conv.x_mean, conv.weight, conv.y_mean, 2.0 * np.eye(5))
    np.testing.assert_allclose(iso.mahalanobis_scores(glove, robot, shrinkage=0.0),
                               -(diff ** 2).sum(-1) / 2.0, rtol=1e-9, atol=1e-9)
    # a taxel the converter predicts badly counts less: a query off on it by a lot still
    # finds its item, which a plain distance would not
    noisy = RidgeConverter(conv.uv, conv.x_mean, conv.weight, conv.y_mean,
                           np.diag([100.0, 1e-2, 1e-2, 1e-2, 1e-2]))
    gallery = conv(robot)
    query = gallery.copy()
    query[:, 0] += np.array([30.0, -30.0, 30.0])
    assert score_retrieval(noisy.mahalanobis_scores(query, robot, shrinkage=0.0))[0] == 1.0
    assert score_retrieval(-((query[:, None] - gallery[None]) ** 2).sum(-1))[0] < 1.0


def test_score_retrieval_ranks_by_score_and_a_tie_does_not_beat_the_pair():
    scores = np.array([[0.9, 0.1, 0.2],
                       [0.5, 0.4, 0.3],         # item 0 beats the pair: top-1 miss, top-2 hit
                       [0.0, 0.7, 0.7]])        # a tie is not ranked above the pair
    assert score_retrieval(scores, k=2) == (2 / 3, 1.0)
    assert score_retrieval(scores, k=1) == (2 / 3, 2 / 3)
    q = np.random.default_rng(1).normal(size=(9, 4))
    g = q + 0.5 * np.random.default_rng(2).normal(size=(9, 4))
    assert retrieval(q, g, k=3) == score_retrieval(q @ g.T, k=3)
