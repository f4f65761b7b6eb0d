"""Model inputs: the 7 squat channels, normalisation and sliding windows (numpy only).

Both domains are brought to the same quantities before any model sees them: watch *user*
acceleration in m/s² (the real watch reports it; the simulator's specific force minus its
gravity reaction), angular rate in rad/s and the phone–watch UWB range in m, interpolated
to the IMU frame times.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from embodied_transfer.squat.errors import SquatDataError

CHANNELS: tuple[str, ...] = ("accel_x", "accel_y", "accel_z", "gyro_x", "gyro_y", "gyro_z",
                             "uwb_range")
#: Channel names as published on SimDomainFeatures (accel is user acceleration).
FEATURE_CHANNELS: tuple[str, ...] = ("user_accel_x", "user_accel_y", "user_accel_z",
                                     "gyro_x", "gyro_y", "gyro_z", "uwb_range")


def stack(accel: np.ndarray, gyro: np.ndarray, uwb: np.ndarray,
          uwb_missing: bool = False) -> np.ndarray:
    """(N, 7) float32 in CHANNELS order; rejects NaN/inf and mismatched lengths.
    ``uwb_missing``: the UWB channel may be all NaN (a recording without UWB)."""
    accel, gyro, uwb = (np.asarray(a, dtype=np.float64) for a in (accel, gyro, uwb))
    if accel.shape != gyro.shape or accel.ndim != 2 or accel.shape[1] != 3 \
            or uwb.shape != (len(accel),):
        raise SquatDataError(f"channel shapes disagree: accel {accel.shape}, gyro {gyro.shape}, "
                             f"uwb {uwb.shape}")
    x = np.column_stack([accel, gyro, uwb]).astype(np.float32)
    finite = np.isfinite(x)
    if uwb_missing and np.all(np.isnan(x[:, -1])):
        finite[:, -1] = True
    if not np.all(finite):
        raise SquatDataError("signals contain NaN or inf")
    return x


def sim_episodes(dataset) -> list[tuple[np.ndarray, np.ndarray]]:
    """(signals (N, 7), phase (N,)) per episode of a SquatDataset, accel as user acceleration."""
    out = []
    for e in range(dataset.episodes):
        ep = dataset.episode(e)
        out.append((stack(ep["accel"] - ep["gravity"], ep["gyro"], ep["uwb_at_imu"]),
                    ep["phase"].astype(np.int64)))
    return out


def time_warp(x: np.ndarray, y: np.ndarray, speed: float) -> tuple[np.ndarray, np.ndarray]:
    """The stream ``x`` (N, 7 in CHANNELS order) and its labels ``y`` as if the person had
    moved ``speed`` times as fast: frame j of the result is time j·speed of the original
    (linear interpolation; labels of the nearest frame); angular rates scale by ``speed``,
    accelerations by ``speed``², ranges not at all."""
    if not (np.isfinite(speed) and speed > 0):
        raise SquatDataError(f"time warp speed must be > 0, got {speed}")
    if x.ndim != 2 or x.shape[1] != len(CHANNELS) or len(y) != len(x) or len(x) < 2:
        raise SquatDataError(f"time warp needs (N >= 2, {len(CHANNELS)}) signals and N labels, "
                             f"got {x.shape} and {len(y)}")
    src = np.arange(0.0, len(x) - 1 + 1e-9, speed)
    out = np.column_stack([np.interp(src, np.arange(len(x)), x[:, c])
                           for c in range(x.shape[1])])
    out[:, :3] *= speed ** 2
    out[:, 3:6] *= speed
    return out.astype(np.float32), np.asarray(y)[np.rint(src).astype(np.int64)]


def twist(x: np.ndarray, angle: float) -> np.ndarray:
    """The stream ``x`` (N, 7 in CHANNELS order) as if the watch sat turned by ``angle``
    rad about its x axis (the forearm, toward the crown and hand): acceleration and angular
    rate rotated alike, the range unchanged (the simulator's watch twist, on real data)."""
    if not np.isfinite(angle):
        raise SquatDataError(f"twist angle must be finite, got {angle}")
    if x.ndim != 2 or x.shape[1] != len(CHANNELS):
        raise SquatDataError(f"twist needs (N, {len(CHANNELS)}) signals, got {x.shape}")
    c, s = np.cos(angle), np.sin(angle)
    rot = np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])
    out = np.array(x, dtype=np.float64)
    out[:, :6] = (out[:, :6].reshape(-1, 2, 3) @ rot.T).reshape(-1, 6)   # accel and gyro
    return out.astype(np.float32)


def real_recording(rec) -> tuple[np.ndarray, np.ndarray]:
    """(signals (N, 7), phase (N,)) of a RealRecording (UWB all NaN when it has none)."""
    return (stack(rec.accel, rec.gyro, rec.uwb_at_imu, uwb_missing=rec.uwb.size == 0),
            rec.phase.astype(np.int64))


@dataclass
class Normalizer:
    """Per-channel standardisation, fitted on one domain and stored with the model."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray) -> "Normalizer":
        std = x.std(axis=0)
        return cls(x.mean(axis=0).astype(np.float32),
                   np.where(std > 1e-6, std, 1.0).astype(np.float32))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Standardised frames; a missing value (NaN: no UWB) becomes the mean (0)."""
        z = ((x - self.mean) / self.std).astype(np.float32)
        return np.where(np.isnan(z), np.float32(0.0), z)

    def inverse(self, x: np.ndarray) -> np.ndarray:
        return (x * self.std + self.mean).astype(np.float32)

    def to_dict(self) -> dict:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> "Normalizer":
        return cls(np.asarray(d["mean"], np.float32), np.asarray(d["std"], np.float32))


@dataclass(frozen=True)
class InputAdaptation:
    """Causal per-stream standardisation in front of a converter (test-time adaptation).

    A wearer, a watch strap or a phone position changes each channel's offset and amplitude.
    The adapted frame is the frame standardised with running per-channel statistics of its
    own stream, rescaled to the converter's normaliser: ``(x - m_t) / s_t * std + mean``.
    The running statistics start from the normaliser's (worth ``prior_frames`` frames) and
    forget with a time constant of ``horizon_frames``; ``s_t`` never falls below
    ``min_std_ratio`` times the normaliser's std, so a channel that stops moving (UWB held
    for seconds) is not blown up. A missing value (NaN: no UWB) stays missing and leaves its
    channel's statistics as they were; the normaliser then reads it as the mean.
    """

    prior_frames: int = 25          # 1.25 s at 20 Hz
    horizon_frames: int = 400       # 20 s at 20 Hz: a few squat cycles
    min_std_ratio: float = 0.25

    def __post_init__(self) -> None:
        if self.prior_frames < 1 or self.horizon_frames < 2 or not 0 < self.min_std_ratio <= 1:
            raise SquatDataError(f"invalid input adaptation {self}")

    def stream(self, norm: Normalizer) -> "AdaptiveStandardizer":
        return AdaptiveStandardizer(self, norm)

    def apply(self, x: np.ndarray, norm: Normalizer) -> np.ndarray:
        """A whole stream (N, C) adapted frame by frame, as :meth:`stream` would."""
        adapter = self.stream(norm)
        return np.stack([adapter.update(row) for row in x]) if len(x) else x.astype(np.float32)

    def to_dict(self) -> dict:
        return {"prior_frames": self.prior_frames, "horizon_frames": self.horizon_frames,
                "min_std_ratio": self.min_std_ratio}


class AdaptiveStandardizer:
    """The running state of one stream under an :class:`InputAdaptation` (O(C) memory)."""

    def __init__(self, adaptation: InputAdaptation, norm: Normalizer) -> None:
        self.adaptation = adaptation
        self.mean0 = norm.mean.astype(np.float64)
        self.std0 = norm.std.astype(np.float64)
        self.decay = 1.0 - 1.0 / adaptation.horizon_frames
        self.reset()

    def reset(self) -> None:
        n0 = float(self.adaptation.prior_frames)
        self.weight = np.full(self.mean0.shape, n0)
        self.sum = n0 * self.mean0
        self.sum_sq = n0 * (self.std0 ** 2 + self.mean0 ** 2)

    def mirror(self, channel: int) -> None:
        """The statistics of ``channel`` as if every value taken so far had been mirrored
        about the normaliser's mean (m0 + m0 - x); the prior is unchanged by that."""
        c, w = self.mean0[channel], self.weight[channel]
        s, q = self.sum[channel], self.sum_sq[channel]
        self.sum[channel] = 2 * c * w - s
        self.sum_sq[channel] = 4 * c * c * w - 4 * c * s + q

    def update(self, frame: np.ndarray) -> np.ndarray:
        """Take one frame (C,) into the statistics (a NaN channel is skipped and stays NaN);
        return it adapted (float32)."""
        x = np.asarray(frame, dtype=np.float64)
        seen = ~np.isnan(x)
        if seen.all():
            self.weight = self.decay * self.weight + 1.0
            self.sum = self.decay * self.sum + x
            self.sum_sq = self.decay * self.sum_sq + x * x
        else:
            v = np.where(seen, x, 0.0)
            self.weight = np.where(seen, self.decay * self.weight + 1.0, self.weight)
            self.sum = np.where(seen, self.decay * self.sum + v, self.sum)
            self.sum_sq = np.where(seen, self.decay * self.sum_sq + v * v, self.sum_sq)
        mean = self.sum / self.weight
        std = np.sqrt(np.maximum(self.sum_sq / self.weight - mean * mean, 0.0))
        std = np.maximum(std, self.adaptation.min_std_ratio * self.std0)
        return ((x - mean) / std * self.std0 + self.mean0).astype(np.float32)


def windows(x: np.ndarray, past: int, future: int) -> np.ndarray:
    """Every frame's window of ``past`` frames before and ``future`` after: (N, past+1+future, C).

    The ends are padded by repeating the first / last frame, which is what a stream does
    before it has a history (and what the classifier node does when a stream ends).
    """
    if past < 0 or future < 0:
        raise SquatDataError(f"window sizes must be >= 0, got past={past}, future={future}")
    padded = np.concatenate([np.repeat(x[:1], past, 0), x, np.repeat(x[-1:], future, 0)])
    view = np.lib.stride_tricks.sliding_window_view(padded, past + 1 + future, axis=0)
    return np.ascontiguousarray(view.transpose(0, 2, 1))
