"""Squat phase labels, shared by the simulator, the real-data reader and the models.

The integer values are those of ``embodied_transfer_interfaces/msg/SquatPhase``.
"""
from __future__ import annotations

import numpy as np

from embodied_transfer.squat.errors import SquatDataError

STOP, DOWN, UP = 0, 1, 2
#: Names as the real recordings write them (column ``updown``), indexed by phase value.
PHASE_NAMES: tuple[str, ...] = ("Stop", "Down", "Up")
_BY_NAME = {name.lower(): value for value, name in enumerate(PHASE_NAMES)}


def phase_from_name(text: str) -> int:
    """``"Down"`` → DOWN (case and surrounding spaces ignored); unknown text raises."""
    try:
        return _BY_NAME[text.strip().lower()]
    except KeyError:
        raise SquatDataError(f"unknown squat phase label {text!r} "
                             f"(expected one of {', '.join(PHASE_NAMES)})") from None


def count_repetitions(phases: np.ndarray) -> int:
    """Completed Down→Up cycles: an UP run that follows a DOWN run (STOP runs between ignored)."""
    reps, last = 0, STOP
    for value in np.asarray(phases).tolist():
        if value == STOP or value == last:
            continue
        if value == UP and last == DOWN:
            reps += 1
        last = value
    return reps


class PhaseFilter:
    """A causal HMM forward filter over per-frame phase probabilities.

    Squats move Stop → Down → Stop → Up → Stop, and a phase lasts many frames; a classifier
    that reads one window at a time ignores that. The filter keeps a belief over the three
    phases, moves it with a transition matrix and weighs it with each frame's classifier
    output, as a hybrid HMM does: ``b_t ∝ (b_{t-1} A) · (p_t / prior)^sharpness``. The
    transitions and the prior are counted on *simulated* label sequences
    (:meth:`fit`); ``sharpness`` (< 1 trusts the classifier less) is chosen on the
    development recordings. One frame costs a 3×3 product: no latency and O(1) memory.
    """

    def __init__(self, transitions, prior, sharpness: float = 1.0) -> None:
        a = np.asarray(transitions, dtype=np.float64)
        q = np.asarray(prior, dtype=np.float64)
        if (a.shape != (3, 3) or q.shape != (3,) or not np.all(np.isfinite(a))
                or not np.all(a > 0) or not np.allclose(a.sum(1), 1.0, atol=1e-6)
                or not np.all(q > 0) or not np.isclose(q.sum(), 1.0, atol=1e-6)
                or not 0 < float(sharpness) <= 4):
            raise SquatDataError("phase filter needs a positive 3x3 row-stochastic transition "
                                 "matrix, a positive prior summing to 1 and 0 < sharpness <= 4")
        self.transitions, self.prior, self.sharpness = a, q, float(sharpness)

    @classmethod
    def fit(cls, label_sequences, sharpness: float = 1.0) -> "PhaseFilter":
        """Transition and prior frequencies of phase label sequences (add-one smoothed)."""
        counts, seen = np.ones((3, 3)), np.ones(3)
        for y in label_sequences:
            y = np.asarray(y, dtype=np.int64)
            if len(y) and (y.min() < 0 or y.max() > 2):
                raise SquatDataError("phase labels must be STOP, DOWN or UP (0-2)")
            np.add.at(counts, (y[:-1], y[1:]), 1)
            seen += np.bincount(y, minlength=3)
        return cls(counts / counts.sum(1, keepdims=True), seen / seen.sum(), sharpness)

    def stream(self) -> "PhaseFilterState":
        return PhaseFilterState(self)

    def apply(self, probabilities: np.ndarray) -> np.ndarray:
        """Filtered probabilities (N, 3) of one stream of classifier outputs (N, 3)."""
        state = self.stream()
        return np.stack([state.update(p) for p in probabilities]) if len(probabilities) \
            else np.asarray(probabilities, dtype=np.float32)

    def to_dict(self) -> dict:
        return {"transitions": self.transitions.tolist(), "prior": self.prior.tolist(),
                "sharpness": self.sharpness}

    @classmethod
    def from_dict(cls, d: dict) -> "PhaseFilter":
        return cls(d["transitions"], d["prior"], d["sharpness"])


class PhaseFilterState:
    """The belief of one stream under a :class:`PhaseFilter`."""

    def __init__(self, phase_filter: PhaseFilter) -> None:
        self.filter = phase_filter
        self.reset()

    def reset(self) -> None:
        self.belief = self.filter.prior.copy()

    def update(self, probabilities: np.ndarray) -> np.ndarray:
        """Take one frame's classifier probabilities (3,); return the filtered ones (float32)."""
        f = self.filter
        evidence = (np.maximum(np.asarray(probabilities, dtype=np.float64), 1e-12)
                    / f.prior) ** f.sharpness
        belief = (self.belief @ f.transitions) * evidence
        self.belief = belief / belief.sum()
        return self.belief.astype(np.float32)
