"""Where the phone lies and whether there is UWB at all, told from the recording itself.

The models were trained with the phone below the wrist (on the floor, mostly): the
phone–watch range shrinks while squatting down. A phone higher than the wrist (on a table,
held up) makes it grow, and the classifier, which keys on that swing, reads the descent as an
ascent. Nothing outside the data says which placement a recording has, so
:func:`run_any_placement` asks the data:

1. **IMU only** first: the pipeline on the watch alone, the UWB channel marked missing
   (NaN: the input adaptation leaves it out and the normalisers read it as their mean, as
   the live converter does when UWB goes silent). That is also the whole answer when the
   recording has no UWB (all NaN) or a range that never moves (``mode`` ``imu_only``).
2. **Range trend**: the mean rate of change of the (smoothed) range over the frames the
   IMU-only pass calls Down (per-window argmax, before the phase filter), minus that over
   Up frames. Negative: the training placement (``below``); positive: ``above``, and the
   range is mirrored within its own span (min + max - r) before the full pipeline runs
   (``mode`` ``uwb``). :class:`~embodied_transfer.squat.online.PlacementCheck` does the same
   frame by frame in the converter node.

The decision uses a sign, no tuned threshold; :data:`SMOOTH_FRAMES` only steadies the rate.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from embodied_transfer.squat.phases import DOWN, UP

UWB = 6                 # column of the UWB range in the (N, 7) physical frames
SMOOTH_FRAMES = 5       # moving-average length of the range before its rate is taken
MODES = ("uwb", "imu_only")
PLACEMENTS = ("below", "above")


@dataclass(frozen=True)
class PathTaken:
    """How a recording was processed: ``mode`` (:data:`MODES`), ``placement`` (:data:`PLACEMENTS`,
    "" in imu_only mode) and the range trend it was told from (m per frame; NaN without UWB)."""

    mode: str
    placement: str
    range_trend: float


def has_uwb(x: np.ndarray) -> bool:
    """Whether the UWB channel carries a range that moves (finite and not constant)."""
    u = x[:, UWB]
    finite = u[np.isfinite(u)]
    return finite.size >= 2 and float(finite.std()) > 1e-6


def without_uwb(x: np.ndarray) -> np.ndarray:
    """A copy of the frames with the UWB channel marked missing (NaN)."""
    out = np.array(x, dtype=np.float32, copy=True)
    out[:, UWB] = np.nan
    return out


class RangeTrend:
    """The range rate summed over the frames labelled Down and over those labelled Up; the
    trend is the mean over Down minus the mean over Up (m per frame, 0 until both have a
    frame) and its sign the placement. Fed a whole recording (:func:`range_trend`) or frame
    by frame (:class:`~embodied_transfer.squat.online.PlacementCheck`)."""

    def __init__(self) -> None:
        self.sums = {"down": 0.0, "up": 0.0}
        self.counts = {"down": 0, "up": 0}

    def add(self, rates, phases) -> None:
        """Range rates (one or an array) and the phases of the same frames."""
        rates, phases = np.atleast_1d(rates), np.atleast_1d(phases)
        for key, phase in (("down", DOWN), ("up", UP)):
            mask = phases == phase
            self.sums[key] += float(np.sum(rates[mask]))
            self.counts[key] += int(mask.sum())

    @property
    def trend(self) -> float:
        if not self.counts["down"] or not self.counts["up"]:
            return 0.0
        return self.sums["down"] / self.counts["down"] - self.sums["up"] / self.counts["up"]

    @property
    def placement(self) -> str:
        return placement_of(self.trend)


def placement_of(trend: float) -> str:
    """"above" when the range grows while going down (a positive trend), else "below"."""
    return "above" if trend > 0 else "below"


def range_trend(uwb: np.ndarray, phases: np.ndarray) -> float:
    """Mean range rate over Down frames minus that over Up frames (m per frame; the rate of
    the range smoothed over :data:`SMOOTH_FRAMES`, centred); 0 when the phases have no Down
    or no Up frame."""
    u = np.asarray(uwb, dtype=np.float64)
    k = min(SMOOTH_FRAMES, len(u))
    smooth = np.convolve(np.pad(u, (k // 2, k - 1 - k // 2), mode="edge"), np.ones(k) / k,
                         mode="valid")
    trend = RangeTrend()
    trend.add(np.gradient(smooth) if len(smooth) > 1 else np.zeros_like(smooth), phases)
    return trend.trend


def mirrored(x: np.ndarray) -> np.ndarray:
    """A copy with the UWB range mirrored within its own span (min + max - r)."""
    out = np.array(x, dtype=np.float32, copy=True)
    u = out[:, UWB]
    out[:, UWB] = np.nanmin(u) + np.nanmax(u) - u
    return out


def run_any_placement(pipeline, x: np.ndarray, filtered: bool = True
                      ) -> tuple[np.ndarray, np.ndarray, PathTaken]:
    """Run a :class:`~embodied_transfer.squat.pipeline.Pipeline` on physical frames (N, 7)
    whatever the phone's placement, or without UWB: (sim-domain frames, probabilities,
    the path taken). See the module docstring."""
    imu_sim, imu_probs = pipeline.run(without_uwb(x), filtered=False)
    if not has_uwb(x):
        return (imu_sim, pipeline.filter(imu_probs) if filtered else imu_probs,
                PathTaken("imu_only", "", float("nan")))
    # per-window phases, so that the path does not depend on the phase filter's settings
    trend = range_trend(x[:, UWB], imu_probs.argmax(axis=1))
    placement = placement_of(trend)
    sim, probs = pipeline.run(mirrored(x) if placement == "above" else x, filtered=filtered)
    return sim, probs, PathTaken("uwb", placement, trend)
