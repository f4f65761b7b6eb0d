"""Alignment on physical contacts, and UniTacHand's transfer-of-skill measure.

Both run on grasps of the Shadow Hand in MuJoCo (:mod:`~embodied_transfer.tactile.physical`),
held out from training (seed :data:`~.evaluate.EVAL_SEED`), against a checkpoint trained
on them (``embodied-transfer tactile train --source mujoco``, shipped as
``models/tactile_shadow``).

* :func:`evaluate_physical` (``tactile evaluate --source mujoco``): ``retrieval_top1``
  glove → robot hand (the middle frame of each grasp's hold), the ceiling a perfect
  converter reaches on the same grasps (:func:`physical_ceiling`) and the ratio of the two;
  ``transfer_accuracy`` per frame, of an object classifier trained on glove frames of other
  grasps and read through each representation (:func:`~.evaluate.representations`).
* :func:`skill` (``tactile skill``): the tactile-conditioned task. The robot hand closes on
  an unknown object; the policy, trained on the glove's data of other grasps only, feels
  the hold (all its held frames, log-probabilities summed) and chooses where to put the
  object: one of eight bins, one per object class (shape and size). A trial succeeds when
  the chosen bin is the object's. ``none`` is the policy without touch (it knows only how
  often each class came in training); ``robot_trained`` the same policy trained on the
  robot hand's own frames of the training grasps (the upper reference).
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from embodied_transfer.sim.hand_grasp import CLASS_NAMES
from embodied_transfer.tactile.ceiling import SHIFTS
from embodied_transfer.tactile.data import Device, TactileSet
from embodied_transfer.tactile.errors import TactileError
from embodied_transfer.tactile.evaluate import (EVAL_SEED, _embed, centred_unit,
                                                representations, retrieval, top_k,
                                                train_classifier, transfer_accuracy)
from embodied_transfer.tactile.layouts import GLOVE
from embodied_transfer.tactile.models import Aligner, TactileAlignment
from embodied_transfer.tactile.physical import PhysicalSet, physical_paired_set, shadow_layout


def load_physical(model_dir: str | Path | None) -> tuple[TactileAlignment, str]:
    """The checkpoint in ``model_dir`` (default: the shipped ``tactile_shadow``), which must
    know the glove and a Shadow Hand layout, and that layout."""
    from embodied_transfer.tactile import PHYSICAL_MODEL

    model = Aligner.load(model_dir or PHYSICAL_MODEL).model
    try:
        return model, shadow_layout(model.layouts, f"'{model_dir or PHYSICAL_MODEL}'")
    except TactileError as exc:
        raise TactileError(f"{exc}: train one with: embodied-transfer tactile train "
                           f"--source mujoco") from None


def physical_ceiling(held: TactileSet, seed: int, shifts: int = SHIFTS) -> dict:
    """Retrieval of a perfect robot → glove converter on the grasps of ``held``: the query is
    the glove's reading of the middle frame of each hold, the gallery the glove's expected
    reading of the same contacts (noise-free, averaged over ``shifts`` fresh fabric shifts,
    which no converter can know); cosine of mean-centred readings."""
    glove, fresh = Device.make(GLOVE), np.random.default_rng([seed, 3])
    mid = held.middle_hold_frames()
    expected = []
    for row in mid:
        ep = held.episodes[int(held.episode[row])]
        t = int(row - np.flatnonzero(held.episode == held.episode[row])[0])
        expected.append(np.mean([glove.read(ep, fresh, retarget=False, noise=False)[t]
                                 for _ in range(shifts)], axis=0))
    return {**top_k(centred_unit(held.readings[GLOVE][mid]), centred_unit(np.array(expected))),
            "fabric_shifts_averaged": shifts}


def _sets(episodes: int, train_episodes: int, seed: int,
          robot: str) -> tuple[PhysicalSet, PhysicalSet]:
    """(held-out grasps, training grasps of the classifiers / policies); each must hold an
    object in some frame."""
    sets = (physical_paired_set(episodes, seed, robot=robot),
            physical_paired_set(train_episodes, seed + 1, robot=robot))
    for what, found in zip(("held-out", "training"), sets):
        if not found.frames.holding.any():
            raise TactileError(f"none of the {len(found.held)} {what} grasps held its object "
                               f"in any frame: use more grasps")
    return sets


def evaluate_physical(model_dir: str | Path | None = None, episodes: int = 160,
                      classifier_episodes: int = 160, seed: int = EVAL_SEED) -> dict:
    """Retrieval, its ceiling and transfer accuracy on held-out physical grasps (see the
    module docstring)."""
    torch.set_num_threads(1)
    start = time.perf_counter()
    model, robot = load_physical(model_dir)
    test, train = _sets(episodes, classifier_episodes, seed, robot)
    held, human = test.frames, train.frames
    mid = held.middle_hold_frames()
    top1, top5 = retrieval(_embed(model, GLOVE, held.readings[GLOVE][mid]),
                           _embed(model, robot, held.readings[robot][mid]),
                           unit=model.unit_latent)
    ceiling = physical_ceiling(held, seed)
    hold, train_idx = np.flatnonzero(held.holding), np.flatnonzero(human.holding)
    transfer, glove = transfer_accuracy(
        model, robot, human.readings[GLOVE][train_idx], human.labels[train_idx],
        held.readings[robot][hold], held.labels[hold], held.readings[GLOVE][hold],
        classes=len(CLASS_NAMES))
    return {
        "source": "mujoco", "robot_layout": robot, "retrieval_top1": top1,
        "retrieval_top5": top5,
        "retrieval_gallery": len(mid), "retrieval_ceiling": ceiling["top1"],
        "retrieval_ceiling_top5": ceiling["top5"],
        "retrieval_ceiling_ratio": top1 / ceiling["top1"] if ceiling["top1"] else 0.0,
        "transfer_accuracy": transfer, "glove_accuracy": glove,
        "chance": 1.0 / len(CLASS_NAMES), "classes": list(CLASS_NAMES),
        "data": {"held_out_episodes": episodes, "held_out_hold_frames": int(len(hold)),
                 "classifier_train_frames": int(len(train_idx)), "seed": seed,
                 "held_out_grasps_held": int(test.held.sum()),
                 "contacts_off_the_glove": test.dropped_contacts},
        "seconds": round(time.perf_counter() - start, 1),
    }


def _decide(log_probs: np.ndarray, episode: np.ndarray, trials: np.ndarray) -> np.ndarray:
    """One decision per trial: the class of the largest summed log-probability over the
    trial's frames."""
    return np.array([log_probs[episode == e].sum(0).argmax() for e in trials])


def skill(model_dir: str | Path | None = None, trials: int = 160, train_episodes: int = 160,
          seed: int = EVAL_SEED) -> dict:
    """The transfer-of-skill measure (see the module docstring): success per input."""
    torch.set_num_threads(1)
    start = time.perf_counter()
    model, robot = load_physical(model_dir)
    test, train = _sets(trials, train_episodes, seed, robot)
    held, human = test.frames, train.frames
    hold, train_idx = np.flatnonzero(held.holding), np.flatnonzero(human.holding)
    episode, trial_ids = held.episode[hold], np.unique(held.episode[hold])
    truth = np.array([held.labels[held.episode == e][0] for e in trial_ids])
    y_train, classes = human.labels[train_idx], len(CLASS_NAMES)
    success, on_glove = {}, {}
    for name, (glove, robot_features) in representations(model, robot).items():
        if name == "none":           # without touch: below
            continue
        policy = train_classifier(glove(human.readings[GLOVE][train_idx]), y_train,
                                  classes=classes, scores=True)
        choice = _decide(policy(robot_features(held.readings[robot][hold])), episode,
                         trial_ids)
        success[name] = float((choice == truth).mean())
        choice = _decide(policy(glove(held.readings[GLOVE][hold])), episode, trial_ids)
        on_glove[name] = float((choice == truth).mean())
    prior = np.bincount(y_train, minlength=classes).argmax()
    success["none"] = float((truth == prior).mean())
    policy = train_classifier(human.readings[robot][train_idx], y_train, classes=classes,
                              scores=True)
    success["robot_trained"] = float(
        (_decide(policy(held.readings[robot][hold]), episode, trial_ids) == truth).mean())
    return {
        "task": "identify the held object by touch and choose its bin (8 classes)",
        "robot_layout": robot, "success": success, "glove_success": on_glove,
        "trials": int(len(trial_ids)),
        "grasps_without_hold": int(trials - len(trial_ids)),
        "chance": 1.0 / classes, "classes": list(CLASS_NAMES),
        "data": {"train_grasps": train_episodes, "train_hold_frames": int(len(train_idx)),
                 "seed": seed},
        "seconds": round(time.perf_counter() - start, 1),
    }
