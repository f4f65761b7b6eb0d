"""Sensor models of the simulated watch IMU and phone–watch UWB ranging (pure numpy).

The physics gives exact values at every step; these models turn them into what the
devices deliver: IMU frames at the output rate (box-averaged over the frame, a constant
bias per episode plus white noise of a per-episode level, and frames that repeat the previous
one as the real watch app's rows do), and UWB ranges at 5–7 Hz with timing jitter, noise,
a constant offset and dropouts, linearly interpolated to the IMU frame times.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from embodied_transfer.sim.errors import SimError


@dataclass(frozen=True)
class ImuModel:
    """Watch IMU: per-episode bias, white noise and frame holds (standard deviations).

    The noise level of an episode is the base level times a multiplier drawn log-uniformly
    in [1, ``noise_scale_max``] (people and watches differ); each frame repeats the previous
    one with an episode's hold probability drawn uniformly in [0, ``hold_max``] (36-40 % of the
    real watch app's rows repeat the previous IMU values).
    """

    accel_noise: float = 0.06     # m/s²
    accel_bias: float = 0.08      # m/s²
    gyro_noise: float = 0.012     # rad/s
    gyro_bias: float = 0.01       # rad/s
    noise_scale_max: float = 4.0
    hold_max: float = 0.5

    def __post_init__(self) -> None:
        if not self.noise_scale_max >= 1.0 or not 0.0 <= self.hold_max < 1.0:
            raise SimError(f"IMU model needs noise_scale_max >= 1 and 0 <= hold_max < 1, got "
                           f"{self.noise_scale_max} and {self.hold_max}")

    def biases(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        return rng.normal(0.0, self.accel_bias, 3), rng.normal(0.0, self.gyro_bias, 3)

    def style(self, rng: np.random.Generator) -> tuple[float, float]:
        """An episode's noise multiplier and frame-hold probability."""
        return (float(np.exp(rng.uniform(0.0, np.log(self.noise_scale_max)))),
                float(rng.uniform(0.0, self.hold_max)))

    def apply(self, accel: np.ndarray, gyro: np.ndarray, biases, rng: np.random.Generator,
              noise_scale: float = 1.0):
        """Noisy copies of exact (N, 3) accel and gyro frames."""
        accel_bias, gyro_bias = biases
        return (accel + accel_bias + rng.normal(0.0, self.accel_noise * noise_scale, accel.shape),
                gyro + gyro_bias + rng.normal(0.0, self.gyro_noise * noise_scale, gyro.shape))


def hold_index(n: int, hold: float, rng: np.random.Generator) -> np.ndarray:
    """Which frame each of ``n`` frames shows when each repeats the previous with chance
    ``hold``."""
    held = rng.random(n) < hold
    held[:1] = False
    return np.maximum.accumulate(np.where(held, 0, np.arange(n)))


@dataclass(frozen=True)
class UwbModel:
    """Phone–watch UWB ranging: rate, jitter, noise, offset, dropouts, REP-117 limits."""

    rate_min: float = 5.0         # Hz, the episode's rate is drawn in [rate_min, rate_max]
    rate_max: float = 7.0
    jitter: float = 0.15          # fraction of the period, uniform ±
    noise: float = 0.04           # m, per reading
    offset: float = 0.05          # m, std of a constant per-episode offset
    dropout: float = 0.08         # probability a reading is lost
    burst: float = 0.01           # probability per reading that a 0.5–2 s outage starts
    min_range: float = 0.1        # m
    max_range: float = 50.0       # m

    def period(self, rng: np.random.Generator) -> float:
        """An episode's reading period (s), the rate drawn in [rate_min, rate_max]."""
        if not 0 < self.rate_min <= self.rate_max:
            raise SimError(f"bad UWB rate range [{self.rate_min}, {self.rate_max}] Hz")
        return 1.0 / rng.uniform(self.rate_min, self.rate_max)

    def sample_times(self, t_start: float, t_end: float, period: float,
                     rng: np.random.Generator) -> np.ndarray:
        """Times of the UWB readings that arrive in [t_start, t_end)."""
        n = int(np.ceil((t_end - t_start) / period)) + 1
        times = t_start + period * (np.arange(n) + rng.uniform(-self.jitter, self.jitter, n))
        keep = rng.random(n) >= self.dropout
        outage_until = -np.inf
        for i, t in enumerate(times):          # bursts: consecutive readings lost
            if t < outage_until:
                keep[i] = False
            elif rng.random() < self.burst:
                outage_until = t + rng.uniform(0.5, 2.0)
        times = times[keep]
        return np.sort(times[(times >= t_start) & (times < t_end)])

    def apply(self, distance: np.ndarray, offset: float, rng: np.random.Generator) -> np.ndarray:
        """Measured ranges (m) from true distances, clipped to [min_range, max_range]."""
        measured = distance + offset + rng.normal(0.0, self.noise, distance.shape)
        return np.clip(measured, self.min_range, self.max_range)


def frame_average(samples: np.ndarray, steps_per_frame: int) -> np.ndarray:
    """Average consecutive blocks of ``steps_per_frame`` rows (a box anti-aliasing filter)."""
    n = len(samples) // steps_per_frame
    if n == 0:
        raise SimError(f"{len(samples)} samples do not fill one frame of {steps_per_frame}")
    return samples[: n * steps_per_frame].reshape(n, steps_per_frame, -1).mean(axis=1)


def interpolate_uwb(uwb_t: np.ndarray, uwb: np.ndarray, t: np.ndarray) -> np.ndarray:
    """UWB linearly interpolated to times ``t`` (first/last reading held outside their span)."""
    if len(uwb_t) == 0:
        raise SimError("no UWB reading to interpolate from")
    return np.interp(t, uwb_t, uwb)


def describe(imu: ImuModel, uwb: UwbModel, physics_dt: float, frame_dt: float) -> dict:
    """The transformations applied to the simulated signals, for the dataset's metadata."""
    return {
        "accel": "watch accelerometer (MuJoCo accelerometer at site watch_imu): specific force "
                 "in the watch frame, m/s^2, INCLUDING gravity (at rest it reads +9.81 m/s^2 "
                 f"upward); box-averaged over each {frame_dt * 1e3:.0f} ms frame of "
                 f"{physics_dt * 1e3:.0f} ms physics steps; + constant bias + white noise",
        "gyro": "watch gyro, rad/s, watch frame; same averaging, bias and noise",
        "gravity": "reaction to gravity in the watch frame (m/s^2) from the site orientation "
                   "at the frame end: accel - gravity is the watch's user acceleration",
        "uwb": "phone-watch distance (sites phone_uwb, watch_imu) in m at the raw UWB times "
               "(uwb_t), + per-episode offset + noise, with dropouts, clipped to "
               "[min_range, max_range]; uwb_at_imu is that linearly interpolated to t",
        "imu_model": asdict(imu), "uwb_model": asdict(uwb),
        "physics_dt": physics_dt, "frame_dt": frame_dt,
    }
