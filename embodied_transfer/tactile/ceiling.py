"""How far glove → robot retrieval can go on this data, with no trained model at all.

* :func:`perfect_converter`: the best a robot → glove converter could do. For every
  grasp, the glove's noisy reading (the middle frame of its hold) is the query, and each
  grasp's gallery item is the glove's *expected* reading of it, noise-free and averaged
  over fresh fabric shifts (which no converter can know), once of the contacts as the
  robot hand received them (``retargeted``: per-patch position and force jitter of the
  imperfect retargeting) and once of the human's own contacts (``human_contacts``: what a
  converter could not know even in principle). Scored like ``retrieval_top1``: cosine of
  mean-centred readings.
* :func:`ridge_curve`: a ridge regression from the robot hand's UV image to the glove's
  readings, fitted on the first *n* paired grasps for several *n*, scored the same way on
  held-out grasps. It shows how much of the gap to the ceiling is the amount of paired data.
  Each size is also scored by the Mahalanobis distance under the converter's residual
  covariance (:meth:`RidgeConverter.mahalanobis_scores`, the Gaussian log-likelihood of
  the glove query given the converted robot reading), which weighs taxels by how well the
  robot hand predicts them instead of all alike.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from embodied_transfer.tactile.data import (CLASSES, DEVICES, Device, TactileSet, make_episode,
                                            middle_hold, paired_set, retargeted)
from embodied_transfer.tactile.errors import TactileError
from embodied_transfer.tactile.evaluate import (EVAL_SEED, centred_unit, score_retrieval,
                                                top_k)
from embodied_transfer.tactile.layouts import GLOVE, ROBOT, load_layout
from embodied_transfer.tactile.models import projection_matrix, ridge_weights, shrunk_precision
from embodied_transfer.tactile.surface import uv_grid

#: Fabric shifts averaged into the glove's expected reading of a grasp.
SHIFTS = 8
#: Shrinkage of the ridge residual covariance towards the identity, as a share of its mean
#: variance (chosen on the validation sets of seeds 20000-20002; 0.01-0.1 lie within 0.2
#: points of each other there, 1.0 is 2 points lower).
SHRINKAGE = 0.03


def expected_glove_readings(episodes: int, seed: int, shifts: int = SHIFTS
                            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(query, of_robot, of_human), each (episodes, 137): per grasp of
    ``paired_set(episodes, seed)`` (the held-out grasps of ``tactile evaluate``) at the
    middle frame of its hold, the glove's reading, and its noise-free reading averaged over
    ``shifts`` fresh fabric shifts of the robot hand's (retargeted) contacts and of the
    human's contacts."""
    devices = {d: Device.make(d) for d in DEVICES}
    glove = devices[GLOVE]
    rng, fresh = np.random.default_rng(seed), np.random.default_rng([seed, 1])
    query, of_robot, of_human = [], [], []
    for i in range(episodes):
        ep = make_episode(i % len(CLASSES), rng)        # the draws of paired_set, in order
        t = middle_hold(ep.envelope)
        for name, device in devices.items():
            if name == ROBOT:                 # replay the robot's draws to get its contacts
                replay = np.random.default_rng()
                replay.bit_generator.state = copy.deepcopy(rng.bit_generator.state)
                robot_contacts = retargeted(ep, device.response, replay)
            reading = device.read(ep, rng)
            if name == GLOVE:
                query.append(reading[t])
        of_robot.append(np.mean([glove.read(robot_contacts, fresh, noise=False)[t]
                                 for _ in range(shifts)], axis=0))
        of_human.append(np.mean([glove.read(ep, fresh, noise=False)[t]
                                 for _ in range(shifts)], axis=0))
    return np.array(query), np.array(of_robot), np.array(of_human)


def perfect_converter(episodes: int = 160, seed: int = EVAL_SEED, shifts: int = SHIFTS) -> dict:
    """Retrieval of a converter that knew the glove's expected reading of each grasp (see
    the module docstring and :func:`expected_glove_readings`)."""
    query, of_robot, of_human = expected_glove_readings(episodes, seed, shifts)
    q = centred_unit(query)
    return {"retargeted": top_k(q, centred_unit(of_robot)),
            "human_contacts": top_k(q, centred_unit(of_human)),
            "episodes": episodes, "seed": seed, "fabric_shifts_averaged": shifts}


def ridge_features(robot: np.ndarray, uv: np.ndarray, sqrt_features: bool) -> np.ndarray:
    """The regressors of a ridge converter: the robot's UV image (``uv``: taxels → pixels),
    and its square root too if ``sqrt_features`` (a response curve a linear map cannot
    make)."""
    x = robot @ uv
    return np.concatenate([x, np.sqrt(np.maximum(x, 0.0))], 1) if sqrt_features else x


@dataclass(frozen=True)
class RidgeConverter:
    """Robot-hand readings → glove readings through the robot's UV image (``uv``: taxels →
    pixels), fitted by :func:`fit_ridge`; ``residual_cov``: the covariance of the glove
    readings minus the converted ones over its training frames."""

    uv: np.ndarray
    x_mean: np.ndarray
    weight: np.ndarray
    y_mean: np.ndarray
    residual_cov: np.ndarray
    sqrt_features: bool = False

    def features(self, robot: np.ndarray) -> np.ndarray:
        """:func:`ridge_features` of ``robot``."""
        return ridge_features(robot, self.uv, self.sqrt_features)

    def __call__(self, robot: np.ndarray) -> np.ndarray:
        return (self.features(robot) - self.x_mean) @ self.weight + self.y_mean

    def precision(self, shrinkage: float = SHRINKAGE) -> np.ndarray:
        """Inverse of the residual covariance shrunk by ``shrinkage`` × its mean variance."""
        return shrunk_precision(self.residual_cov, shrinkage)

    def mahalanobis_scores(self, glove: np.ndarray, robot: np.ndarray,
                           shrinkage: float = SHRINKAGE) -> np.ndarray:
        """(len(glove), len(robot)): minus the squared Mahalanobis distance between glove
        reading i and robot reading j converted, the Gaussian log-likelihood of the one
        given the other up to a constant (higher is closer)."""
        p, y = self.precision(shrinkage), self(robot)
        cross = glove @ p @ y.T
        return (2 * cross - np.einsum("ik,kl,il->i", glove, p, glove)[:, None]
                - np.einsum("jk,kl,jl->j", y, p, y)[None])


def fit_ridge(sizes=(300, 600, 1200), train_seed: int = 0, ridge: float = 10.0,
              resolution: int = 32, per_digit: bool = False,
              sqrt_features: bool = False) -> dict[int, RidgeConverter]:
    """n → ridge converter (robot-hand readings → glove readings, through the robot's UV
    image) fitted on the contact frames of the first n of ``max(sizes)`` paired grasps of
    the training data of ``train_seed`` (the first 300 are the shipped model's pairs).
    ``per_digit``: each glove taxel is predicted from the UV pixels of its own digit (or
    palm) only; ``sqrt_features``: from the pixels and their square roots."""
    if not sizes or min(sizes) < 1:
        raise TactileError(f"ridge_curve needs positive sizes, got {sizes}")
    train = paired_set(max(sizes), seed=1000 * train_seed)      # as tactile.train.make_data
    uv = projection_matrix(load_layout(ROBOT), resolution).T
    groups = None
    if per_digit:
        _, mask, pixel_group = uv_grid(resolution)
        pixel_group = pixel_group[mask.ravel()]
        groups = (np.tile(pixel_group, 2 if sqrt_features else 1), load_layout(GLOVE).group)
    maps = {}
    for n in sorted(sizes):
        rows = (train.envelope >= 0.05) & (train.episode < n)
        x = ridge_features(train.readings[ROBOT][rows], uv, sqrt_features)
        y = train.readings[GLOVE][rows]
        mx, my = x.mean(0), y.mean(0)
        xc = x - mx
        w = ridge_weights(xc, y - my, ridge, groups)
        maps[n] = RidgeConverter(uv, mx, w, my, np.cov((y - my - xc @ w).T), sqrt_features)
    return maps


def ridge_curve(sizes=(300, 600, 1200), train_seed: int = 0, episodes: int = 160,
                seed: int = EVAL_SEED, ridge: float = 10.0, resolution: int = 32,
                maps: dict | None = None, held: TactileSet | None = None) -> dict:
    """Retrieval of :func:`fit_ridge`'s converters (or of ``maps``, fitted beforehand with
    these settings, to score several held-out sets with one fit) on ``episodes`` held-out
    grasps of ``seed`` (``held``: that ``paired_set``, if drawn already), by cosine of
    mean-centred readings (``by_paired_grasps``) and by Mahalanobis distance
    (``by_paired_grasps_mahalanobis``); ``ridge`` was chosen on the validation grasps of
    seed 20000 at n = 300."""
    maps = fit_ridge(sizes, train_seed, ridge, resolution) if maps is None else maps
    held = paired_set(episodes, seed=seed) if held is None else held
    mid = held.middle_hold_frames()
    glove, robot = held.readings[GLOVE][mid], held.readings[ROBOT][mid]
    query = centred_unit(glove)
    out = {str(n): top_k(query, centred_unit(convert(robot)))
           for n, convert in sorted(maps.items())}
    likelihood = {str(n): dict(zip(("top1", "top5"), score_retrieval(
        convert.mahalanobis_scores(glove, robot)))) for n, convert in sorted(maps.items())}
    return {"by_paired_grasps": out, "by_paired_grasps_mahalanobis": likelihood,
            "ridge": ridge, "shrinkage": SHRINKAGE, "train_seed": train_seed,
            "episodes": episodes, "seed": seed}
