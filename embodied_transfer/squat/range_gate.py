"""Multipath rejection for the phone–watch UWB range, one rule offline and online.

A UWB range that bounces off a wall or a body reads metres longer for a reading or two
(recording_2 jumps from about 1 m to 2-3.5 m and back). :class:`RangeGate` is a causal
Hampel-style test: a reading further than ``max_jump_m`` from the median of the last
``window`` readings (accepted or not, so a real change of place is followed after a few
readings) is rejected as multipath. The frame it would have given uses the neighbouring
accepted readings instead, or the IMU-only path when none is recent enough.

The default (1.2 m from the median of 9 readings, about 1.4 s) leaves every reading of
recordings 1 and 3 and rejects 7 of recording_2's 643: its 2.75-3.55 m spikes, and three
0.65 m readings right after a stretch around 2 m (the gate cannot tell which side of such a
step is the true one). A squat moves the range by well under a metre within that window.
:func:`~.real.read_real_csv` applies it to the recordings and
:class:`~.online.FrameAssembler` to the live stream.
"""
from __future__ import annotations

from collections import deque
from statistics import median

import numpy as np

#: Largest distance [m] of a reading from the recent median before it counts as multipath.
MAX_JUMP_M = 1.2
#: Readings the median is taken over.
WINDOW = 9
#: Readings the gate needs before it rejects anything.
MIN_HISTORY = 3


class RangeGate:
    """Accept or reject UWB readings one at a time (see the module docstring); a
    ``max_jump_m`` of 0 accepts everything."""

    def __init__(self, max_jump_m: float = MAX_JUMP_M, window: int = WINDOW) -> None:
        if not max_jump_m >= 0 or window < MIN_HISTORY:
            raise ValueError(f"bad RangeGate: max_jump_m={max_jump_m} (>= 0), "
                             f"window={window} (>= {MIN_HISTORY})")
        self.max_jump_m = float(max_jump_m)
        self._recent: deque = deque(maxlen=int(window))

    def reset(self) -> None:
        """Forget the recent readings (a new stream)."""
        self._recent.clear()

    def deviation(self, range_m: float) -> float:
        """Distance [m] of a reading from the recent median (0 before enough history)."""
        if len(self._recent) < MIN_HISTORY:
            return 0.0
        return abs(float(range_m) - median(self._recent))

    def accept(self, range_m: float) -> bool:
        """Whether the reading is kept; it joins the recent readings either way."""
        ok = not self.max_jump_m or self.deviation(range_m) <= self.max_jump_m
        self._recent.append(float(range_m))
        return ok


def multipath_mask(ranges: np.ndarray, max_jump_m: float = MAX_JUMP_M,
                   window: int = WINDOW) -> np.ndarray:
    """Boolean mask (M,) of the readings of one stream, in time order, that the gate rejects."""
    gate = RangeGate(max_jump_m, window)
    return np.array([not gate.accept(r) for r in np.asarray(ranges, dtype=np.float64)],
                    dtype=bool)
