"""The tabletop's parallel-jaw gripper: it executes a world grasp and says what was lifted.

The gripper is the gantry of ``tabletop.xml`` (:mod:`embodied_transfer.sim.tabletop`);
:func:`reset` puts a built scene back at rest with the gripper open at home and
:func:`execute_grasp` runs one :class:`~embodied_transfer.sim.tabletop_labels.WorldGrasp`
(approach, close, lift ``LIFT``, hold) with contact physics. :func:`world_grasp_from_pose`
turns a controller's grasp (tool centre point, approach and closing axes, opening; in the
world frame) into the gantry's top-down grasp.
"""
from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from embodied_transfer.sim.errors import SimError
from embodied_transfer.sim.squat import min_jerk
from embodied_transfer.sim.tabletop import (GRIPPER_HOME, MAX_OPENING, TABLE_TOP,
                                            object_names)
from embodied_transfer.sim.tabletop_labels import MIN_GRASP_Z, WorldGrasp

OPEN_MARGIN = 0.01            # m, the fingers open this much wider than the grasp's opening
APPROACH_Z = 0.3              # m above the table: free space, above every object
WORKSPACE = 0.55              # m, the gripper reaches |x|, |y| up to this
LIFT = 0.15                   # m
LIFT_SUCCESS = 0.1            # m an object must rise to count as lifted
MAX_TILT_DEG = 20.0           # the gantry grasps top-down: approaches this close to vertical


@dataclass(frozen=True)
class GraspOutcome:
    """What a grasp did: success, the object held up (if any), how far it rose (m), why."""

    success: bool
    lifted: str | None
    lift_height: float
    reason: str


@dataclass(frozen=True)
class _Gripper:
    """Indices of the gripper's joints, actuators and pads in a model (named accessors)."""

    qpos: np.ndarray       # x, y, z, yaw, finger_left, finger_right
    dof: np.ndarray
    pose_act: np.ndarray   # x, y, z, yaw actuators
    grip_act: int
    pads: tuple[int, int]

    @classmethod
    def of(cls, model: mujoco.MjModel) -> "_Gripper":
        try:
            joints = [model.joint(n) for n in ("grip_x", "grip_y", "grip_z", "grip_yaw",
                                               "finger_left", "finger_right")]
            acts = [model.actuator(n).id
                    for n in ("grip_x", "grip_y", "grip_z", "grip_yaw", "grip")]
            pads = (model.geom("finger_left").id, model.geom("finger_right").id)
        except KeyError as exc:
            raise SimError(f"the model has no tabletop gripper: {exc}") from None
        return cls(np.array([int(j.qposadr[0]) for j in joints]),
                   np.array([int(j.dofadr[0]) for j in joints]),
                   np.array(acts[:4]), int(acts[4]), pads)


def world_grasp_from_pose(position, approach, closing, opening: float) -> WorldGrasp:
    """A grasp given by its tool centre point, approach and closing axes (world, REP-103)
    and jaw opening (m) as the gantry's top-down :class:`WorldGrasp`.

    The gantry only approaches straight down: an approach more than ``MAX_TILT_DEG`` from
    world -z is refused (:class:`SimError`); within it, the grasp is executed top-down with
    the closing axis projected on the horizontal plane. The point is kept ``MIN_GRASP_Z``
    above the table, as for the ground-truth grasps.
    """
    position, approach, closing = (np.asarray(v, dtype=float).reshape(3)
                                   for v in (position, approach, closing))
    if not all(np.all(np.isfinite(v)) for v in (position, approach, closing)) \
            or not np.isfinite(opening) or opening <= 0:
        raise SimError(f"grasp has a non-finite value or an opening <= 0 ({opening})")
    approach = approach / np.linalg.norm(approach)
    tilt = float(np.degrees(np.arccos(np.clip(-approach[2], -1.0, 1.0))))
    if tilt > MAX_TILT_DEG:
        raise SimError(f"the grasp approaches {tilt:.0f}° away from straight down; the "
                       f"tabletop gripper grasps top-down (within {MAX_TILT_DEG:.0f}°)")
    if np.hypot(closing[0], closing[1]) < 1e-6:
        raise SimError("the grasp's closing axis is vertical")
    z = max(float(position[2]), TABLE_TOP + MIN_GRASP_Z)
    return WorldGrasp(float(position[0]), float(position[1]), z,
                      float(np.arctan2(closing[1], closing[0])), float(opening))


def reset(model: mujoco.MjModel, data: mujoco.MjData) -> None:
    """Objects back where the scene put them, the gripper open at its home pose."""
    grip = _Gripper.of(model)
    mujoco.mj_resetData(model, data)
    data.qpos[grip.qpos[4:]] = MAX_OPENING / 2
    data.ctrl[grip.grip_act] = MAX_OPENING
    mujoco.mj_forward(model, data)


def _pad_contacts(model: mujoco.MjModel, data: mujoco.MjData, grip: _Gripper) -> list[set[int]]:
    """For each pad, the bodies it touches."""
    touched: list[set[int]] = [set(), set()]
    for con in data.contact[:data.ncon]:
        for side, pad in enumerate(grip.pads):
            if con.geom1 == pad:
                touched[side].add(int(model.geom_bodyid[con.geom2]))
            elif con.geom2 == pad:
                touched[side].add(int(model.geom_bodyid[con.geom1]))
    return touched


def execute_grasp(model: mujoco.MjModel, data: mujoco.MjData, grasp: WorldGrasp,
                  target: str | None = None, standoff: float | None = None) -> GraspOutcome:
    """Run one grasp from the current state: open, descend, close, lift ``LIFT``, hold 0.5 s.

    The gripper is first put (kinematically) over the grasp with the fingers open to
    ``opening + OPEN_MARGIN``: ``standoff`` m above the grasp point (the pre-grasp pose), or,
    when None, in the free space ``APPROACH_Z`` above the table; from there on it is physics.
    Success: ``target`` (any object when None) touches both pads and rose > ``LIFT_SUCCESS``.
    """
    grip = _Gripper.of(model)
    names = object_names(model)
    if target is not None and target not in names:
        raise SimError(f"no object {target!r} in the model; it has {names}")
    if not isinstance(grasp, WorldGrasp):
        raise SimError(f"execute_grasp needs a WorldGrasp, got {type(grasp).__name__}")
    if max(abs(grasp.x), abs(grasp.y)) > WORKSPACE or \
            not TABLE_TOP <= grasp.z <= TABLE_TOP + APPROACH_Z:
        raise SimError(f"grasp centre {grasp.centre.round(3).tolist()} is outside the gripper's "
                       f"workspace (|x|, |y| <= {WORKSPACE} m, z on the table up to "
                       f"{APPROACH_Z} m above it)")
    bodies = {model.body(n).id: n for n in names}
    start_z = {b: float(data.xpos[b, 2]) for b in bodies}

    rel = grasp.centre - GRIPPER_HOME
    above = TABLE_TOP + APPROACH_Z - GRIPPER_HOME[2]
    low = max(rel[2], TABLE_TOP + MIN_GRASP_Z - GRIPPER_HOME[2])
    if standoff is not None:
        if not (np.isfinite(standoff) and standoff >= 0):
            raise SimError(f"standoff must be finite and >= 0, got {standoff}")
        above = min(above, low + standoff)
    opening = min(grasp.opening + OPEN_MARGIN, MAX_OPENING)
    data.qpos[grip.qpos[:4]] = (rel[0], rel[1], above, grasp.yaw)
    data.qpos[grip.qpos[4:]] = opening / 2
    data.qvel[grip.dof] = 0.0
    data.ctrl[grip.pose_act] = (rel[0], rel[1], above, grasp.yaw)
    data.ctrl[grip.grip_act] = opening
    mujoco.mj_forward(model, data)

    def run(duration: float, z_from: float | None = None, z_to: float | None = None) -> None:
        steps = max(1, int(round(duration / model.opt.timestep / 5)))
        for i in range(steps):
            if z_from is not None:
                data.ctrl[grip.pose_act[2]] = z_from + (z_to - z_from) * min_jerk(
                    np.array((i + 1) / steps))
            mujoco.mj_step(model, data, nstep=5)

    run(0.5, above, low)                     # descend
    run(0.1)                                 # settle
    data.ctrl[grip.grip_act] = -0.01         # squeeze (force-limited)
    run(0.4)
    run(0.6, low, low + LIFT)                # lift
    run(0.5)                                 # hold

    left, right = _pad_contacts(model, data, grip)
    held = [b for b in bodies if b in left and b in right]
    rise = {b: float(data.xpos[b, 2]) - z for b, z in start_z.items()}
    lifted = max(held, key=lambda b: rise[b]) if held else None
    if lifted is not None and rise[lifted] <= LIFT_SUCCESS:
        lifted_name = None
        reason = f"{bodies[lifted]} is held but rose only {rise[lifted]:.3f} m"
    elif lifted is None:
        lifted_name, reason = None, "nothing between the fingers after the lift"
    else:
        lifted_name = bodies[lifted]
        reason = f"lifted {lifted_name} by {rise[lifted]:.3f} m"
    height = rise[lifted] if lifted is not None else (
        rise[model.body(target).id] if target is not None else 0.0)
    success = lifted_name is not None and (target is None or lifted_name == target)
    if lifted_name is not None and not success:
        reason = f"lifted {lifted_name}, not the target {target}"
    return GraspOutcome(success, lifted_name, float(height), reason)
