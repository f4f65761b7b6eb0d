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
