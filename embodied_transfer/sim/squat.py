"""The squat humanoid: randomised bodies, squat motion plans, and the model they drive.

``squat_humanoid.xml`` beside this file is the nominal person. :func:`build_model` scales
it (:class:`Body`), places the phone and turns the watch; :class:`SquatPlan` turns a list
of :class:`RepMotion` into joint targets for the position (PD) actuators and into the
per-frame phase labels STOP / DOWN / UP. Everything is seeded by the caller's
``numpy.random.Generator``; nothing here touches global random state.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import mujoco
import numpy as np

from embodied_transfer.sim.errors import SimError, compiled
from embodied_transfer.core.phases import DOWN, STOP, UP

MODEL_XML = Path(__file__).with_name("squat_humanoid.xml")

#: Actuated joints, in actuator order (each actuator has its joint's name).
JOINTS: tuple[str, ...] = (
    "ankle", "knee", "hip",
    "shoulder_flex_l", "shoulder_abd_l", "shoulder_rot_l", "elbow_l",
    "shoulder_flex_r", "shoulder_abd_r", "shoulder_rot_r", "elbow_r",
)
LEG, ARM_L, ARM_R = slice(0, 3), slice(3, 7), slice(7, 11)

#: Arm poses (shoulder flexion, abduction, internal rotation, elbow flexion; rad).
ARM_POSES: dict[str, tuple[float, float, float, float]] = {
    "hanging": (0.1, 0.12, 0.0, 0.3),
    "crossed": (0.45, 0.15, 1.5, 2.1),
    "forward": (1.45, 0.08, 0.0, 0.25),
}
#: Where arm targets are kept (rad, left then right arm): inside the joint ranges of the
#: XML with room for sway and the arm following the squat, so no joint limit is hit.
ARM_LIMITS = np.array([(-0.5, 1.9), (0.0, 1.2), (-0.6, 1.6), (0.15, 2.2)] * 2)
#: Std (rad) of how the watch sits, as a rotation vector in the watch frame: mostly a twist
#: around the forearm (the watch x axis, toward the crown and hand), a little tilt otherwise.
#: The twist is wide because it also stands for how the forearm is rolled (hands hanging
#: palm-in or palm-back, held forward): 1.2 rad, chosen on recordings 1-2 among 0.3 / 0.7 /
#: 1.2 (sim-only classifier on their Down/Up frames: 71 / 80 / 82 %).
WATCH_TILT_STD = (1.2, 0.08, 0.08)
#: Highest ankle and hip targets (rad) a repetition may plan: inside the joint ranges
#: (0.9, 2.2) with room for sway, so the ctrlrange never clips them.
LEG_MAX = (0.85, 2.1)
TABLE_TOP = 0.75          # m, top surface of the table in the XML
PHONE_HALF_THICKNESS = 0.004
PHONE_FLOOR_DISTANCE = (0.3, 1.5)   # m from the feet, phone on the floor
PHONE_TABLE_DISTANCE = (0.8, 2.0)   # m, phone on the table (which then stands clear of the body)
BENCH_TOP = 0.45          # m, a bench beside the person (the table lowered)
SHELF_TOP = (0.95, 1.2)   # m, a high surface: above the wrist even when standing
#: Where the phone can be (``Body.phone_place``): on the floor, the table, a bench or a high
#: shelf near the person (0.3-1.5 m away; the table 0.8-2 m), in the right front trouser
#: pocket, or in the right hand (the watch is on the left wrist).
PHONE_PLACES: tuple[str, ...] = ("floor", "table", "bench", "shelf", "pocket", "hand")
#: Where a pocket or hand phone sits on its body part (m, nominal body, in that part's frame).
PHONE_ON_BODY = {"pocket": ("thigh", (0.08, -0.1, 0.3)), "hand": ("forearm_r", (0.0, 0.0, -0.31))}


@dataclass(frozen=True)
class Body:
    """One person and scene: body size and mass, where the phone lies, how the watch sits."""

    scale: float = 1.0                    # every length of the humanoid
    mass_scale: float = 1.0               # every mass of the humanoid
    phone_xy: tuple[float, float] = (1.0, 0.5)   # m, world frame (surface placements)
    phone_place: str = "floor"                   # one of PHONE_PLACES
    phone_height: float = 0.0                    # m, top of the shelf (phone_place "shelf")
    watch_offset: tuple[float, float, float] = (0.0, 0.0, 0.0)   # m, forearm frame
    watch_rotvec: tuple[float, float, float] = (0.0, 0.0, 0.0)   # rad, in the watch frame

    def __post_init__(self) -> None:
        if self.phone_place not in PHONE_PLACES:
            raise SimError(f"unknown phone place {self.phone_place!r}; expected one of "
                           f"{', '.join(PHONE_PLACES)}")

    @classmethod
    def sample(cls, rng: np.random.Generator, places: tuple[str, ...] = ()) -> "Body":
        """A random person (±10 % size and mass) and phone/watch placement.

        By default the phone lies near the person, as in the recording app's setup (the real
        data's README: "a phone lying near the person"): mostly on the floor 0.3-1.5 m from
        the feet, sometimes (15 %) on a table 0.8-2 m away. ``places`` (of
        :data:`PHONE_PLACES`) draws the place uniformly among them instead.
        """
        if places:
            unknown = [p for p in places if p not in PHONE_PLACES]
            if unknown:
                raise SimError(f"unknown phone places {unknown}; expected {PHONE_PLACES}")
            place = places[int(rng.integers(len(places)))]
        else:
            place = "table" if rng.random() < 0.15 else "floor"
        near, far = PHONE_TABLE_DISTANCE if place == "table" else PHONE_FLOOR_DISTANCE
        distance = float(np.exp(rng.uniform(np.log(near), np.log(far))))
        bearing = rng.uniform(-2.0, 2.0)           # rad from straight ahead
        height = float(rng.uniform(*SHELF_TOP)) if place == "shelf" else 0.0
        return cls(
            scale=float(rng.uniform(0.9, 1.1)),
            mass_scale=float(rng.uniform(0.9, 1.1)),
            phone_xy=(float(distance * np.cos(bearing)), float(distance * np.sin(bearing))),
            phone_place=place, phone_height=height,
            watch_offset=tuple(float(v) for v in rng.uniform(-0.01, 0.01, 3)),
            watch_rotvec=tuple(float(v) for v in rng.normal(0.0, WATCH_TILT_STD)),
        )


@dataclass(frozen=True)
class RepMotion:
    """One repetition: standing pause, descent, pause at the bottom, ascent."""

    pause_before: float = 1.0     # s standing still before descending
    descent: float = 2.0          # s
    pause_bottom: float = 0.8     # s
    ascent: float = 2.0           # s
    depth: float = 1.6            # rad of knee flexion at the bottom
    ankle_ratio: float = 0.42     # ankle dorsiflexion per rad of knee flexion
    lean_ratio: float = 0.35      # trunk lean from vertical per rad of knee flexion
    arm_pose: str = "hanging"
    arms: tuple[float, ...] = ARM_POSES["hanging"] * 2    # left then right, see ARM_POSES
    arm_follow: float = 0.0       # extra shoulder flexion per rad of knee flexion

    @property
    def duration(self) -> float:
        return self.pause_before + self.descent + self.pause_bottom + self.ascent

    @classmethod
    def sample(cls, rng: np.random.Generator, previous: "RepMotion | None" = None) -> "RepMotion":
        """A random repetition; after ``previous`` the arm pose usually stays (90 %).

        A new arm pose gets a standing pause long enough to move the arms calmly.
        """
        pause = float(rng.uniform(0.6, 2.0))
        if previous is not None and rng.random() < 0.9:
            pose, arms = previous.arm_pose, np.asarray(previous.arms) + rng.normal(0.0, 0.03, 8)
        else:
            pose = str(rng.choice(list(ARM_POSES)))
            arms = np.array(ARM_POSES[pose] * 2) + rng.normal(0.0, 0.08, 8)
            if previous is not None:
                pause = max(pause, 1.6)
        arms = np.clip(arms, ARM_LIMITS[:, 0], ARM_LIMITS[:, 1])
        rep = cls(
            pause_before=pause,
            descent=float(rng.uniform(1.2, 3.4)),
            pause_bottom=float(rng.uniform(0.2, 1.8)),
            ascent=float(rng.uniform(1.2, 3.4)),
            depth=float(rng.uniform(1.1, 2.0)),
            ankle_ratio=float(rng.uniform(0.32, 0.5)),
            lean_ratio=float(rng.uniform(0.2, 0.5)),
            arm_pose=pose,
            arms=tuple(float(v) for v in arms),
            arm_follow=float(rng.uniform(0.0, 0.35)) if pose == "hanging" else 0.0,
        )
        # ankle = ankle_ratio * knee, hip = (1 + lean_ratio - ankle_ratio) * knee: cap the depth
        return replace(rep, depth=min(rep.depth, LEG_MAX[0] / rep.ankle_ratio,
                                      LEG_MAX[1] / (1.0 + rep.lean_ratio - rep.ankle_ratio)))


def min_jerk(s: np.ndarray) -> np.ndarray:
    """Minimum-jerk profile from 0 to 1 over s ∈ [0, 1] (zero velocity and acceleration at ends)."""
    s = np.clip(s, 0.0, 1.0)
    return s ** 3 * (10.0 - 15.0 * s + 6.0 * s * s)


@dataclass
class Sway:
    """Small slow arm and trunk movements of a person standing 'still' (sum of sinusoids)."""

    amplitude: np.ndarray = field(default_factory=lambda: np.zeros(len(JOINTS)))
    freq: np.ndarray = field(default_factory=lambda: np.zeros((len(JOINTS), 3)))
    phase: np.ndarray = field(default_factory=lambda: np.zeros((len(JOINTS), 3)))

    @classmethod
    def sample(cls, rng: np.random.Generator) -> "Sway":
        amplitude = np.zeros(len(JOINTS))
        amplitude[LEG] = rng.uniform(0.0, 0.01)
        amplitude[3:] = rng.uniform(0.0, 0.04)
        return cls(amplitude, rng.uniform(0.1, 0.6, (len(JOINTS), 3)),
                   rng.uniform(0.0, 2 * np.pi, (len(JOINTS), 3)))

    def __call__(self, t: np.ndarray) -> np.ndarray:
        waves = np.sin(2 * np.pi * self.freq[None] * t[:, None, None] + self.phase[None])
        return self.amplitude[None] * waves.mean(axis=2)


class SquatPlan:
    """Joint targets and phase labels over time for a sequence of repetitions.

    The plan can grow (:meth:`append`) while a live simulation runs; after the last
    repetition the person stands still (plus sway) in that repetition's arm pose.
    """

    def __init__(self, reps: list[RepMotion] | None = None, sway: Sway | None = None):
        self.reps: list[RepMotion] = []
        self.starts: list[float] = []
        self.sway = sway or Sway()
        for rep in reps or []:
            self.append(rep)

    @property
    def end(self) -> float:
        """Time the last repetition's ascent ends (s)."""
        return self.starts[-1] + self.reps[-1].duration if self.reps else 0.0

    def append(self, rep: RepMotion) -> None:
        if rep.arm_pose not in ARM_POSES or len(rep.arms) != 8:
            raise SimError(f"bad arm pose {rep.arm_pose!r} / {len(rep.arms)} arm targets")
        if min(rep.descent, rep.ascent) <= 0 or min(rep.pause_before, rep.pause_bottom) < 0:
            raise SimError(f"repetition durations must be positive: {rep}")
        self.starts.append(self.end)
        self.reps.append(rep)

    def rep_bounds(self) -> list[tuple[float, float]]:
        """(descent start, ascent end) of every repetition, s."""
        return [(s + r.pause_before, s + r.duration) for s, r in zip(self.starts, self.reps)]

    def _segments(self, t: np.ndarray):
        """For each t: the repetition index and time since that repetition started."""
        starts = np.asarray(self.starts)
        idx = np.clip(np.searchsorted(starts, t, side="right") - 1, 0, len(starts) - 1)
        return idx, t - starts[idx]

    def targets(self, t: np.ndarray) -> np.ndarray:
        """Joint targets (len(t), len(JOINTS)) in rad, in actuator order."""
        if not self.reps:
            raise SimError("the squat plan has no repetitions")
        t = np.atleast_1d(np.asarray(t, dtype=float))
        idx, local = self._segments(t)
        out = np.empty((len(t), len(JOINTS)))
        for i in np.unique(idx):
            rep, mask = self.reps[i], idx == i
            tau = local[mask]
            d0 = rep.pause_before
            d1 = d0 + rep.descent
            u0 = d1 + rep.pause_bottom
            down = min_jerk((tau - d0) / rep.descent)
            up = min_jerk((tau - u0) / rep.ascent)
            knee = rep.depth * (down - up)
            lean = rep.lean_ratio * knee
            ankle = rep.ankle_ratio * knee
            out[mask, 0] = ankle
            out[mask, 1] = knee
            out[mask, 2] = lean - ankle + knee      # hip flexion keeps the trunk at `lean`
            # arms move to this repetition's pose during the first part of the pause
            previous = np.asarray(self.reps[i - 1].arms if i > 0 else rep.arms)
            blend = min_jerk(tau / max(0.9 * d0, 1e-3))[:, None]
            arms = previous + (np.asarray(rep.arms) - previous) * blend
            arms[:, [0, 4]] += rep.arm_follow * knee[:, None]
            out[mask, 3:] = arms
        return out + self.sway(t)

    def phase(self, t: np.ndarray) -> np.ndarray:
        """STOP / DOWN / UP for each t (direction of the planned motion; STOP when still)."""
        t = np.atleast_1d(np.asarray(t, dtype=float))
        labels = np.full(len(t), STOP, dtype=np.int8)
        for start, rep in zip(self.starts, self.reps):
            d0 = start + rep.pause_before
            d1 = d0 + rep.descent
            u0 = d1 + rep.pause_bottom
            labels[(t >= d0) & (t < d1)] = DOWN
            labels[(t >= u0) & (t < u0 + rep.ascent)] = UP
        return labels

    def completed(self, t: float) -> int:
        """Repetitions whose ascent has ended by time t."""
        return sum(1 for _, end in self.rep_bounds() if end <= t)


def _rotvec_quat(rotvec) -> np.ndarray:
    quat = np.zeros(4)
    mujoco.mju_axisAngle2Quat(quat, np.asarray(rotvec, float) / max(np.linalg.norm(rotvec), 1e-12),
                              float(np.linalg.norm(rotvec)))
    return quat


def build_spec(body: Body | None = None, xml: str | Path = MODEL_XML) -> mujoco.MjSpec:
    """The humanoid scene as an editable spec, scaled and arranged for ``body``."""
    body = body or Body()
    if not (0.5 <= body.scale <= 1.5 and 0.5 <= body.mass_scale <= 1.5):
        raise SimError(f"body scale {body.scale} / mass scale {body.mass_scale} outside [0.5, 1.5]")
    try:
        spec = mujoco.MjSpec.from_file(str(xml))
    except Exception as exc:  # mujoco raises ValueError with the parser's message
        raise SimError(f"cannot load the squat model {xml}: {exc}") from None
    parts = (("body feet", spec.body("feet")), ("body table", spec.body("table")),
             ("body phone", spec.body("phone")), ("site watch_imu", spec.site("watch_imu")))
    missing = [name for name, found in parts if found is None]
    if missing:
        raise SimError(f"the squat model {xml} has no {', '.join(missing)}")
    person = spec.body("feet")
    for b in [person, *person.find_all(mujoco.mjtObj.mjOBJ_BODY)]:
        b.pos = np.asarray(b.pos) * body.scale
        for geom in b.geoms:
            geom.pos = np.asarray(geom.pos) * body.scale
            geom.size = np.asarray(geom.size) * body.scale
            if not np.isnan(geom.fromto[0]):
                geom.fromto = np.asarray(geom.fromto) * body.scale
            geom.mass = geom.mass * body.mass_scale
        for site in b.sites:
            site.pos = np.asarray(site.pos) * body.scale
    watch = spec.site("watch_imu")
    watch.pos = np.asarray(watch.pos) + np.asarray(body.watch_offset)
    turned = np.zeros(4)
    mujoco.mju_mulQuat(turned, np.asarray(watch.quat, float), _rotvec_quat(body.watch_rotvec))
    watch.quat = turned
    x, y = body.phone_xy
    table = spec.body("table")
    top = {"table": TABLE_TOP, "bench": BENCH_TOP, "shelf": body.phone_height}.get(
        body.phone_place)
    if top is not None:                         # the table, raised or lowered to ``top``
        table.pos = [x, y, top - TABLE_TOP]
        spec.body("phone").pos = [x, y, top + PHONE_HALF_THICKNESS]
    else:
        table.pos = [x + 1.2 * np.sign(x or 1.0), y, 0.0]   # out of the way
        spec.body("phone").pos = [x, y, PHONE_HALF_THICKNESS]
    if body.phone_place in PHONE_ON_BODY:       # the UWB moves with a body part
        part, pos = PHONE_ON_BODY[body.phone_place]
        spec.site("phone_uwb").name = "phone_uwb_unused"
        spec.body(part).add_site(name="phone_uwb", size=[0.01],
                                 pos=np.asarray(pos) * body.scale)
    return spec


def build_model(body: Body | None = None, xml: str | Path = MODEL_XML) -> mujoco.MjModel:
    """Compile the scene for ``body`` (the nominal person when None)."""
    return compiled(build_spec(body, xml), "the squat model")


@dataclass(frozen=True)
class SensorLayout:
    """Where each named sensor of the model sits in ``sensordata`` (named accessors)."""

    accel: slice
    gyro: slice
    watch_quat: slice
    watch_pos: slice
    phone_pos: slice
    pelvis_pos: slice

    @classmethod
    def of(cls, model: mujoco.MjModel) -> "SensorLayout":
        def span(name: str) -> slice:
            try:
                sensor = model.sensor(name)
            except KeyError:
                raise SimError(f"the model has no sensor '{name}'") from None
            return slice(int(sensor.adr[0]), int(sensor.adr[0] + sensor.dim[0]))
        return cls(span("watch_accel"), span("watch_gyro"), span("watch_quat"),
                   span("watch_pos"), span("phone_pos"), span("pelvis_pos"))


def reset_to(model: mujoco.MjModel, data: mujoco.MjData, targets: np.ndarray) -> None:
    """Put the humanoid at rest in the pose ``targets`` (actuator order)."""
    mujoco.mj_resetData(model, data)
    for name, value in zip(JOINTS, targets):
        data.joint(name).qpos[0] = value
    data.ctrl[:] = targets
    mujoco.mj_forward(model, data)


def gravity_in_sensor(quat: np.ndarray, g: float = 9.80665) -> np.ndarray:
    """What an accelerometer at rest with orientation ``quat`` (w, x, y, z; N×4) reads (m/s²).

    That is the reaction to gravity, +g along world z, expressed in the sensor frame.
    """
    quat = np.atleast_2d(quat)
    w, x, y, z = quat.T
    # third row of the rotation matrix (world z in sensor coordinates)
    return g * np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], axis=1)
