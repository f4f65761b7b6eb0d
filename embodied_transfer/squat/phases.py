"""Squat phase labels: names, repetition counting and the causal phase filter.

The phase values themselves live in :mod:`embodied_transfer.core.phases` (the simulator
labels with them too); they are re-exported here for the squat modules.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from embodied_transfer.core.phases import DOWN, PHASE_NAMES, STOP, UP  # noqa: F401
from embodied_transfer.squat.errors import SquatDataError

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


#: Hidden states of the cyclic phase filter and the phase each one emits: standing, going
#: down, paused at the bottom, going up (a Stop after Down is the bottom pause).
CYCLIC_STATES: tuple[int, ...] = (STOP, DOWN, UP, STOP)
_BOTTOM = 3


def cyclic_states(labels: np.ndarray) -> np.ndarray:
    """Phase labels → cyclic filter states: a STOP run after a DOWN run is the bottom pause."""
    states, last = np.asarray(labels, dtype=np.int64).copy(), STOP
    for i, value in enumerate(states.tolist()):
        if value == STOP and last == DOWN:
            states[i] = _BOTTOM
        elif value != STOP:
            last = value
    return states


class PhaseFilter:
    """A causal HMM forward filter over per-frame phase probabilities.

    Squats move Stop → Down → Stop → Up → Stop, and a phase lasts many frames; a classifier
    that reads one window at a time ignores that. The filter keeps a belief over hidden
    states, each emitting one phase (``state_phase``), moves it with a transition matrix
    and weighs it with each frame's classifier output, as a hybrid HMM does:
    ``b_t ∝ (b_{t-1} A) · (p_t[phase] / prior[phase])^sharpness``; the output is the belief
    summed per phase. The plain filter has one state per phase; the cyclic one
    (:data:`CYCLIC_STATES`) tells the pause at the bottom from standing, so a squat must go
    round the whole cycle. Transitions and prior are counted on *simulated* label
    sequences (:meth:`fit`); ``sharpness`` (< 1 trusts the classifier less) is chosen on the
    development recordings. One frame costs a K×K product (K ≤ 4): no latency, O(1) memory.
    """

    def __init__(self, transitions, prior, sharpness: float = 1.0,
                 state_phase=(STOP, DOWN, UP)) -> None:
        a = np.asarray(transitions, dtype=np.float64)
        q = np.asarray(prior, dtype=np.float64)
        phases = np.asarray(state_phase, dtype=np.int64)
        k = len(phases)
        if (a.shape != (k, k) or q.shape != (k,) or not np.all(np.isfinite(a))
                or not np.all(a > 0) or not np.allclose(a.sum(1), 1.0, atol=1e-6)
                or not np.all(q > 0) or not np.isclose(q.sum(), 1.0, atol=1e-6)
                or not 0 < float(sharpness) <= 4
                or sorted(set(phases.tolist())) != [STOP, DOWN, UP]):
            raise SquatDataError("phase filter needs states emitting every phase, a positive "
                                 "row-stochastic transition matrix and a positive prior over "
                                 "them summing to 1, and 0 < sharpness <= 4")
        self.transitions, self.prior, self.sharpness = a, q, float(sharpness)
        self.state_phase = tuple(phases.tolist())
        self.emits = np.eye(3)[phases]                         # (K, 3) state → its phase
        self.phase_prior = q @ self.emits

    @classmethod
    def fit(cls, label_sequences, sharpness: float = 1.0, cyclic: bool = False
            ) -> "PhaseFilter":
        """Transition and prior frequencies of phase label sequences (add-one smoothed)."""
        state_phase = CYCLIC_STATES if cyclic else (STOP, DOWN, UP)
        k = len(state_phase)
        counts, seen = np.ones((k, k)), np.ones(k)
        for y in label_sequences:
            y = np.asarray(y, dtype=np.int64)
            if len(y) and (y.min() < 0 or y.max() > 2):
                raise SquatDataError("phase labels must be STOP, DOWN or UP (0-2)")
            if cyclic:
                y = cyclic_states(y)
            np.add.at(counts, (y[:-1], y[1:]), 1)
            seen += np.bincount(y, minlength=k)
        return cls(counts / counts.sum(1, keepdims=True), seen / seen.sum(), sharpness,
                   state_phase)

    def stream(self) -> "PhaseFilterState":
        return PhaseFilterState(self)

    def apply(self, probabilities: np.ndarray) -> np.ndarray:
        """Filtered probabilities (N, 3) of one stream of classifier outputs (N, 3)."""
        state = self.stream()
        return np.stack([state.update(p) for p in probabilities]) if len(probabilities) \
            else np.asarray(probabilities, dtype=np.float32)

    @property
    def settings(self) -> dict:
        """The choices behind it: ``sharpness`` and ``cyclic``."""
        return {"sharpness": self.sharpness, "cyclic": len(self.state_phase) == len(CYCLIC_STATES)}

    def to_dict(self) -> dict:
        return {"transitions": self.transitions.tolist(), "prior": self.prior.tolist(),
                "sharpness": self.sharpness, "state_phase": list(self.state_phase)}

    @classmethod
    def from_dict(cls, d: dict) -> "PhaseFilter":
        return cls(d["transitions"], d["prior"], d["sharpness"],
                   d.get("state_phase", (STOP, DOWN, UP)))


#: File in a models directory with the phase filter of each pipeline ``squat evaluate``
#: scores (raw / vae / proposed; null: unfiltered), each chosen by the leave-one-out for its
#: own pipeline. The proposed one is the classifier checkpoint's (what the node applies).
PHASE_FILTERS = "phase_filters.json"


def write_phase_filters(filters: dict, models: str | Path) -> Path:
    """Write ``{pipeline: PhaseFilter | None}`` to ``models/phase_filters.json``."""
    path = Path(models) / PHASE_FILTERS
    path.write_text(json.dumps({c: f.to_dict() if f else None for c, f in filters.items()},
                               indent=1) + "\n")
    return path


def read_phase_filters(models: str | Path) -> dict:
    """``{pipeline: PhaseFilter | None}`` from ``models/phase_filters.json`` ({} when the
    directory has none: every pipeline then uses the classifier's filter)."""
    path = Path(models) / PHASE_FILTERS
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
        return {c: PhaseFilter.from_dict(d) if d else None for c, d in data.items()}
    except (ValueError, KeyError, TypeError, AttributeError, SquatDataError) as exc:
        raise SquatDataError(f"{path}: not a phase filter file: {exc}") from None


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
                    / f.phase_prior) ** f.sharpness
        belief = (self.belief @ f.transitions) * (f.emits @ evidence)
        self.belief = belief / belief.sum()
        return (self.belief @ f.emits).astype(np.float32)
