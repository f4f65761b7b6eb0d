"""Running the squat humanoid: whole episodes (batch, for datasets) and a live stepper.

Both use the same ingredients from a seed: a :class:`~embodied_transfer.sim.squat.Body`, a
:class:`~embodied_transfer.sim.squat.SquatPlan` driving the PD actuators, and the sensor
models of :mod:`embodied_transfer.sim.sensors`. Batch episodes run the whole open-loop
control sequence through ``mujoco.rollout`` (C speed); :class:`LiveSquat` steps with
``mj_step`` frame by frame for the ROS bridge and keeps squatting for as long as it runs.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import mujoco
import numpy as np
from mujoco import rollout

from embodied_transfer.sim.errors import SimError
from embodied_transfer.sim.sensors import (ImuModel, UwbModel, frame_average, hold_index,
                                           interpolate_uwb)
from embodied_transfer.sim.squat import (JOINTS, Body, RepMotion, SensorLayout, SquatPlan,
                                         Sway, build_model, gravity_in_sensor, reset_to)

FRAME_DT = 0.05        # s, the output rate of 20 Hz
SETTLE = 0.5           # s held in the start pose before an episode's clock starts


@dataclass(frozen=True)
class EpisodeConfig:
    """What an episode is made of, besides its seed."""

    reps: int = 1
    frame_dt: float = FRAME_DT
    #: Phone places to draw from (``sim.squat.PHONE_PLACES``); empty: the recording app's
    #: setup (floor, sometimes a table), what the shipped models were trained on.
    phone_places: tuple[str, ...] = ()
    imu: ImuModel = field(default_factory=ImuModel)
    uwb: UwbModel = field(default_factory=UwbModel)


@dataclass
class Episode:
    """One simulated recording at the output rate (see sensors.describe for the units)."""

    t: np.ndarray             # (F,) s, end of each frame
    accel: np.ndarray         # (F, 3) m/s², including gravity
    gyro: np.ndarray          # (F, 3) rad/s
    gravity: np.ndarray       # (F, 3) m/s², gravity reaction in the watch frame
    uwb_at_imu: np.ndarray    # (F,) m
    phase: np.ndarray         # (F,) int8 STOP / DOWN / UP
    uwb_t: np.ndarray         # (U,) s, raw UWB reading times
    uwb: np.ndarray           # (U,) m
    rep_frames: np.ndarray    # (R, 2) first DOWN frame, first frame after the ascent
    params: dict              # body and repetitions, for the record


def _rngs(seed: np.random.SeedSequence | int):
    seq = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    body, motion, sensor = (np.random.default_rng(s) for s in seq.spawn(3))
    return body, motion, sensor


def _frame_count(duration: float, frame_dt: float) -> int:
    return int(np.floor(duration / frame_dt + 1e-9))


def _steps_per_frame(model: mujoco.MjModel, frame_dt: float) -> int:
    steps = frame_dt / model.opt.timestep
    if abs(steps - round(steps)) > 1e-6 or round(steps) < 1:
        raise SimError(f"frame period {frame_dt} s is not a multiple of the physics step "
                       f"{model.opt.timestep} s")
    return int(round(steps))


def simulate_episode(seed: np.random.SeedSequence | int,
                     config: EpisodeConfig = EpisodeConfig()) -> Episode:
    """Sample a person and ``config.reps`` repetitions from ``seed`` and simulate them."""
    rng_body, rng_motion, rng_sensor = _rngs(seed)
    body = Body.sample(rng_body, config.phone_places)
    plan = SquatPlan(sway=Sway.sample(rng_motion))
    for _ in range(config.reps):
        plan.append(RepMotion.sample(rng_motion, plan.reps[-1] if plan.reps else None))
    duration = plan.end + rng_motion.uniform(0.6, 2.0)      # standing still at the end

    model = build_model(body)
    data = mujoco.MjData(model)
    dt = model.opt.timestep
    spf = _steps_per_frame(model, config.frame_dt)
    frames = _frame_count(duration, config.frame_dt)
    settle = int(round(SETTLE / dt))
    step_t = (np.arange(-settle, frames * spf)) * dt           # time at the start of each step
    control = plan.targets(step_t)
    reset_to(model, data, control[0])
    state0 = np.empty(mujoco.mj_stateSize(model, mujoco.mjtState.mjSTATE_FULLPHYSICS))
    mujoco.mj_getState(model, data, state0, mujoco.mjtState.mjSTATE_FULLPHYSICS)
    _, sensordata = rollout.rollout(model, data, state0, control[None])
    sensordata = sensordata[0, settle:]
    if not np.all(np.isfinite(sensordata)):
        raise SimError(f"the simulation diverged (seed {seed})")

    layout = SensorLayout.of(model)
    imu_biases = config.imu.biases(rng_sensor)
    noise_scale, hold = config.imu.style(rng_sensor)
    accel, gyro = config.imu.apply(frame_average(sensordata[:, layout.accel], spf),
                                   frame_average(sensordata[:, layout.gyro], spf),
                                   imu_biases, rng_sensor, noise_scale)
    t = (np.arange(frames) + 1) * config.frame_dt
    frame_end = sensordata[spf - 1::spf]
    gravity = gravity_in_sensor(frame_end[:, layout.watch_quat])
    shown = hold_index(frames, hold, rng_sensor)
    accel, gyro, gravity = accel[shown], gyro[shown], gravity[shown]

    period = config.uwb.period(rng_sensor)
    uwb_t = config.uwb.sample_times(0.0, t[-1], period, rng_sensor)
    if len(uwb_t) == 0:                                     # every reading dropped
        uwb_t = np.array([t[-1] / 2])
    at = sensordata[np.minimum((uwb_t / dt).astype(int), len(sensordata) - 1)]
    distance = np.linalg.norm(at[:, layout.watch_pos] - at[:, layout.phone_pos], axis=1)
    uwb = config.uwb.apply(distance, rng_sensor.normal(0.0, config.uwb.offset), rng_sensor)

    bounds = np.searchsorted(t, np.asarray(plan.rep_bounds()), side="left")
    return Episode(t=t, accel=accel, gyro=gyro, gravity=gravity,
                   uwb_at_imu=interpolate_uwb(uwb_t, uwb, t), phase=plan.phase(t),
                   uwb_t=uwb_t, uwb=uwb, rep_frames=bounds.reshape(-1, 2),
                   params={"body": asdict(body), "reps": [asdict(r) for r in plan.reps],
                           "duration": float(t[-1]), "uwb_rate_hz": 1.0 / period,
                           "physics_dt": dt})


@dataclass
class LiveFrame:
    """One output frame of :class:`LiveSquat`."""

    t: float                  # s of sim time at the frame end
    accel: np.ndarray         # (3,) m/s², including gravity
    gyro: np.ndarray          # (3,) rad/s
    gravity: np.ndarray       # (3,) m/s², gravity reaction in the watch frame (frame end)
    orientation: np.ndarray   # (4,) the watch's orientation (w, x, y, z) in the world
    phase: int
    reps: int                 # completed repetitions
    uwb: list[tuple[float, float]]   # (time s, range m) of readings that arrived in the frame
    joint_positions: np.ndarray      # (len(JOINTS),) rad
    joint_velocities: np.ndarray     # (len(JOINTS),) rad/s


class LiveSquat:
    """The humanoid squatting for as long as it is stepped, one output frame at a time."""

    horizon = 10.0          # s of planned repetitions kept ahead of the clock

    def __init__(self, seed: int = 0, config: EpisodeConfig = EpisodeConfig(),
                 body: Body | None = None):
        self.config = config
        self._body = body
        self.reset(seed)

    def reset(self, seed: int | None = None) -> None:
        """Start again from a standing pose, with a new seed when given."""
        if seed is not None:
            self.seed = seed
        rng_body, self._rng_motion, self._rng_sensor = _rngs(self.seed)
        self.body = self._body or Body.sample(rng_body, self.config.phone_places)
        self.model = build_model(self.body)
        self.data = mujoco.MjData(self.model)
        self.layout = SensorLayout.of(self.model)
        self.spf = _steps_per_frame(self.model, self.config.frame_dt)
        self.plan = SquatPlan(sway=Sway.sample(self._rng_motion))
        self._extend_plan(0.0)
        self._imu_biases = self.config.imu.biases(self._rng_sensor)
        self._imu_noise_scale, self._imu_hold = self.config.imu.style(self._rng_sensor)
        self._imu_last: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._uwb_period = self.config.uwb.period(self._rng_sensor)
        self._uwb_offset = self._rng_sensor.normal(0.0, self.config.uwb.offset)
        self._uwb_times = np.empty(0)
        self._uwb_until = 0.0
        self.frames = 0
        self._qadr = [int(self.model.joint(n).qposadr[0]) for n in JOINTS]
        self._vadr = [int(self.model.joint(n).dofadr[0]) for n in JOINTS]
        reset_to(self.model, self.data, self.plan.targets([0.0])[0])
        for _ in range(int(round(SETTLE / self.model.opt.timestep))):   # as episodes do:
            mujoco.mj_step(self.model, self.data)       # no start-up jolt in the first frames

    @property
    def time(self) -> float:
        return self.frames * self.config.frame_dt

    def _extend_plan(self, t: float) -> None:
        while self.plan.end < t + self.horizon:
            self.plan.append(RepMotion.sample(self._rng_motion,
                                              self.plan.reps[-1] if self.plan.reps else None))

    def step_frame(self) -> LiveFrame:
        """Advance one output period and return what the sensors report for it."""
        dt = self.model.opt.timestep
        t0 = self.time
        self._extend_plan(t0)
        control = self.plan.targets(t0 + np.arange(self.spf) * dt)
        samples = np.empty((self.spf, self.model.nsensordata))
        distances = np.empty(self.spf)
        for k in range(self.spf):
            self.data.ctrl[:] = control[k]
            mujoco.mj_step(self.model, self.data)
            samples[k] = self.data.sensordata
            distances[k] = np.linalg.norm(self.data.sensordata[self.layout.watch_pos]
                                          - self.data.sensordata[self.layout.phone_pos])
        if not np.all(np.isfinite(samples)):
            raise SimError("the simulation diverged")
        self.frames += 1
        t1 = self.time
        accel, gyro = self.config.imu.apply(samples[:, self.layout.accel].mean(0, keepdims=True),
                                            samples[:, self.layout.gyro].mean(0, keepdims=True),
                                            self._imu_biases, self._rng_sensor,
                                            self._imu_noise_scale)
        quat = samples[-1, self.layout.watch_quat].copy()
        imu = (accel[0], gyro[0], gravity_in_sensor(quat)[0], quat)
        if self._imu_last is not None and self._rng_sensor.random() < self._imu_hold:
            imu = self._imu_last                   # the watch repeats its previous row
        self._imu_last = imu
        accel, gyro, gravity, quat = imu
        return LiveFrame(t=t1, accel=accel, gyro=gyro, gravity=gravity, orientation=quat,
                         phase=int(self.plan.phase([t1])[0]),
                         reps=self.plan.completed(t1), uwb=self._uwb_readings(t0, t1, distances),
                         joint_positions=self.data.qpos[self._qadr].copy(),
                         joint_velocities=self.data.qvel[self._vadr].copy())

    def _uwb_readings(self, t0: float, t1: float, distances: np.ndarray):
        if t1 > self._uwb_until:             # schedule readings about a minute at a time
            # on one slot grid: chunks of whole periods, each sampled one slot past its end;
            # a slot two chunks both drew (within 2 x jitter of each other) is kept once
            period, start = self._uwb_period, self._uwb_until
            self._uwb_until = start + period * max(1, round(60.0 / period))
            new = self.config.uwb.sample_times(start, self._uwb_until + period, period,
                                               self._rng_sensor)
            if len(self._uwb_times):
                new = new[new > self._uwb_times[-1] + 0.5 * period]
            self._uwb_times = np.concatenate([self._uwb_times[self._uwb_times >= t0], new])
        due = self._uwb_times[(self._uwb_times >= t0) & (self._uwb_times < t1)]
        dt = self.model.opt.timestep
        steps = np.minimum(((due - t0) / dt).astype(int), len(distances) - 1)
        ranges = self.config.uwb.apply(distances[steps], self._uwb_offset, self._rng_sensor)
        return [(float(a), float(b)) for a, b in zip(due, ranges)]

    def warnings(self) -> dict[str, int]:
        """MuJoCo warnings raised so far, by name (empty when none)."""
        return {mujoco.mjtWarning(i).name: int(w.number)
                for i, w in enumerate(self.data.warning) if w.number}
