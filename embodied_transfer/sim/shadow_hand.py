"""The Shadow Dexterous Hand with 92 touch sensors, holding one free object (physics only).

The hand is gymnasium-robotics' model (``envs/assets/hand``: 20 position actuators, 24
joints, the finger joints J1/J0 coupled by tendons), loaded from the installed package's
files without importing gymnasium; ``shadow_hand.xml`` beside this module adds the object.
The hand is fixed to the world with the palm facing up (+z), fingers towards -y.

Touch sensors: the 92 ``robot0:T_*`` sites (8 on the palm, 17 per finger on its three
phalanges, 1 on the little finger's metacarpal, 15 on the thumb); each sums the normal force
of the contacts inside its site volume, and the volumes overlap (a fingertip's ``tip`` and
``front`` sites often read the same contact). The model's finger-finger contact pairs are
removed, so that the sensors read the object alone. The 5 extra ``ST_Tch_*tip`` sensors
of the model are left out. With ``touch_grids``, MuJoCo's ``touch_grid`` sensor plugin adds
dense taxel grids on the phalanges and the palm (:data:`TOUCH_GRIDS`). :class:`ShadowHand`
reads them, and the hand-object contacts (body, point in the body's frame, normal force)
from which other skins are read (:mod:`~embodied_transfer.sim.hand_grasp`).
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import mujoco
import numpy as np

from embodied_transfer.sim.errors import SimError, compiled

MODEL_XML = Path(__file__).with_name("shadow_hand.xml")
ASSET_PACKAGE = "gymnasium_robotics"
TOUCH_PREFIX = "robot0:T_"
N_TOUCH = 92
PALM = "robot0:palm"
#: Object shapes: MuJoCo geom type, nominal size (MuJoCo semantics, m), orientation on the
#: palm as a quaternion in the palm's frame (cylinders and capsules lie across the palm:
#: their axis along the palm's x), and the half-thickness along the palm normal (m).
SHAPES: dict[str, tuple[str, tuple[float, ...], tuple[float, ...], float]] = {
    "sphere": ("sphere", (0.02,), (1.0, 0.0, 0.0, 0.0), 0.02),
    "box": ("box", (0.02, 0.02, 0.02), (1.0, 0.0, 0.0, 0.0), 0.02),
    "cylinder": ("cylinder", (0.018, 0.03), (0.7071068, 0.0, 0.7071068, 0.0), 0.018),
    "capsule": ("capsule", (0.015, 0.025), (0.7071068, 0.0, 0.7071068, 0.0), 0.015),
}
PALM_HALF_THICKNESS = 0.0111     # the palm's collision box, along its -y (the palmar side)
TOUCH_GRID_PLUGIN = "mujoco.sensor.touch_grid"


@dataclass(frozen=True)
class GridSpec:
    """A dense taxel grid on one body: MuJoCo's ``touch_grid`` sensor plugin at a site on
    the body's axis (``depth`` m behind a flat palmar face), half-way along it
    (``centre_z``), looking at the palmar side (the site's -z is the body's -y; its x
    the body's -x, its y the body's z). ``cols`` azimuth bins span ±``fov[0]``° around the
    body, ``rows`` elevation bins ±``fov[1]``° along it; each bin sums the normal force of
    the contacts seen in it (channel 0 of the plugin). ``surface``: the distance from the
    body's axis to its palmar skin (m; the palm: its half-thickness), where the bins are
    mapped onto the hand."""

    body: str
    centre_z: float
    depth: float
    cols: int
    rows: int
    fov: tuple[float, float]
    surface: float
    centre_x: float = 0.0      # the site's offset across the body (its palmar face's middle)
    flat: bool = False         # a flat palmar face (palm, metacarpal), else round (phalanx)

    @property
    def name(self) -> str:
        return f"grid_{self.body}"

    @property
    def size(self) -> int:
        return self.cols * self.rows


def _finger_grids(prefix: str) -> list[GridSpec]:
    return [GridSpec(f"{prefix}proximal", 0.0225, 0.0, 4, 8, (90.0, 70.0), 0.010),
            GridSpec(f"{prefix}middle", 0.0125, 0.0, 4, 5, (90.0, 60.0), 0.009),
            GridSpec(f"{prefix}distal", 0.0155, 0.0, 5, 8, (90.0, 75.0), 0.008)]


#: The dense layout: a grid on every phalanx (fingers and thumb), the palm and the little
#: finger's metacarpal (600 taxels, 1.5-6 mm apart).
TOUCH_GRIDS: tuple[GridSpec, ...] = (
    *[g for f in ("ff", "mf", "rf", "lf") for g in _finger_grids(f)],
    GridSpec("thproximal", 0.019, 0.0, 4, 6, (90.0, 65.0), 0.013),
    GridSpec("thmiddle", 0.016, 0.0, 4, 6, (90.0, 65.0), 0.0095),
    GridSpec("thdistal", 0.0155, 0.0, 5, 8, (90.0, 75.0), 0.009),
    GridSpec("palm", 0.038, 0.03, 10, 12, (46.0, 50.0), PALM_HALF_THICKNESS, flat=True),
    GridSpec("lfmetacarpal", 0.01, 0.02, 3, 8, (17.0, 39.0), PALM_HALF_THICKNESS, -0.0165,
             flat=True),
)


def asset_dirs() -> tuple[Path, Path]:
    """(assets, assets/hand) of the installed gymnasium-robotics, found without importing
    it; a clear error when it is missing."""
    spec = importlib.util.find_spec(ASSET_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise SimError("the Shadow Hand model comes from the gymnasium-robotics package, "
                       "which is not installed (make setup installs it)")
    assets = Path(list(spec.submodule_search_locations)[0]) / "envs" / "assets"
    hand = assets / "hand"
    if not (hand / "robot_touch_sensors_92.xml").is_file():
        raise SimError(f"{hand}: no robot_touch_sensors_92.xml; is gymnasium-robotics "
                       f"1.4.2 installed?")
    return assets, hand


def _grid_sensor_xml(grids) -> tuple[str, str]:
    """(extension, sensor) MJCF elements of the touch-grid sensors of ``grids``."""
    if not grids:
        return "", ""
    sensors = "".join(
        f'<plugin name="{g.name}" plugin="{TOUCH_GRID_PLUGIN}" objtype="site" '
        f'objname="{g.name}"><config key="nchannel" value="1"/>'
        f'<config key="size" value="{g.cols} {g.rows}"/>'
        f'<config key="fov" value="{g.fov[0]} {g.fov[1]}"/>'
        f'<config key="gamma" value="0"/></plugin>' for g in grids)
    return (f'<extension><plugin plugin="{TOUCH_GRID_PLUGIN}"/></extension>',
            f"<sensor>{sensors}</sensor>")


def build_spec(shape: str, touch_grids: bool = False) -> mujoco.MjSpec:
    """The scene's spec with an object of ``shape`` (:data:`SHAPES`), self-contact pairs
    removed; with ``touch_grids``, the :data:`TOUCH_GRIDS` sensors too."""
    if shape not in SHAPES:
        raise SimError(f"unknown object shape {shape!r}; expected one of {', '.join(SHAPES)}")
    geom_type, size, _, _ = SHAPES[shape]
    assets, hand = asset_dirs()
    extension, sensors = _grid_sensor_xml(TOUCH_GRIDS if touch_grids else ())
    xml = (MODEL_XML.read_text().replace("{assets}", str(assets)).replace("{hand}", str(hand))
           .replace("{shape}", geom_type).replace("{size}", " ".join(map(str, size)))
           .replace("<!--{extension}-->", extension).replace("<!--{sensors}-->", sensors))
    try:
        spec = mujoco.MjSpec.from_string(xml)
    except ValueError as exc:
        raise SimError(f"the Shadow Hand model does not load: {exc}") from None
    for pair in list(spec.pairs):
        spec.delete(pair)
    if touch_grids:
        for g in TOUCH_GRIDS:
            spec.body(f"robot0:{g.body}").add_site(
                name=g.name, pos=[g.centre_x, g.depth, g.centre_z], xyaxes=[-1, 0, 0, 0, 0, 1],
                size=[0.001, 0.001, 0.001], group=4)
    return spec


def build_model(shape: str, touch_grids: bool = False) -> mujoco.MjModel:
    """The compiled scene for ``shape`` (a model of its own: :class:`ShadowHand` changes
    the object's size in it)."""
    return compiled(build_spec(shape, touch_grids), "the Shadow Hand model")


@dataclass(frozen=True)
class TouchSensor:
    """One touch sensor: ``name`` without the ``robot0:T_`` prefix, the body it sits on
    (without ``robot0:``), and its site's position, half-sizes and type in that body."""

    index: int
    adr: int                   # its value's address in MjData.sensordata
    name: str
    body: str
    pos: tuple[float, float, float]
    size: tuple[float, float, float]
    site_type: str


def touch_sensors(model: mujoco.MjModel) -> list[TouchSensor]:
    """The 92 ``robot0:T_*`` touch sensors in model order."""
    out = []
    for i in range(model.nsensor):
        if model.sensor_type[i] != mujoco.mjtSensor.mjSENS_TOUCH:
            continue
        site = model.site(model.sensor_objid[i])
        if not site.name.startswith(TOUCH_PREFIX):
            continue
        body = model.body(site.bodyid[0]).name.removeprefix("robot0:")
        kind = mujoco.mjtGeom(site.type[0]).name.removeprefix("mjGEOM_").lower()
        out.append(TouchSensor(len(out), int(model.sensor_adr[i]),
                               site.name.removeprefix(TOUCH_PREFIX), body,
                               tuple(map(float, site.pos)), tuple(map(float, site.size)), kind))
    if len(out) != N_TOUCH:
        raise SimError(f"the hand model has {len(out)} robot0:T_* touch sensors, not {N_TOUCH}")
    return out


class ShadowHand:
    """One scene (hand + object of one shape): controls, touch readings and contacts."""

    def __init__(self, shape: str, touch_grids: bool = False) -> None:
        self.shape = shape
        self.model = build_model(shape, touch_grids)
        self.data = mujoco.MjData(self.model)
        m = self.model
        self.sensors = touch_sensors(m)
        self._adr = np.array([s.adr for s in self.sensors])
        self.grids = TOUCH_GRIDS if touch_grids else ()
        self._grid_adr = np.concatenate(
            [m.sensor_adr[m.sensor(g.name).id] + np.arange(g.size) for g in self.grids]
        ).astype(np.int64) if self.grids else np.zeros(0, np.int64)
        self.object_body = m.body("object").id
        self.object_geom = m.geom("object").id
        self._object_qpos = m.jnt_qposadr[m.joint("object:joint").id]
        self._base_size = m.geom_size[self.object_geom].copy()     # the nominal SHAPES size
        self.palm = m.body(PALM).id
        names = [m.body(b).name for b in range(m.nbody)]
        self.hand_bodies = np.array([n.startswith("robot0:") for n in names])
        #: body id → name without the ``robot0:`` prefix (e.g. "ffdistal", "palm")
        self.body_names = [n.removeprefix("robot0:") for n in names]
        self.actuators = [m.actuator(a).name.removeprefix("robot0:") for a in range(m.nu)]
        self.ctrl_low, self.ctrl_high = m.actuator_ctrlrange[:, 0], m.actuator_ctrlrange[:, 1]
        self.reset()

    @property
    def dt(self) -> float:
        return float(self.model.opt.timestep)

    def reset(self) -> None:
        """Hand open at its reference pose, object parked below the floor."""
        mujoco.mj_resetData(self.model, self.data)
        self.data.ctrl[:] = np.clip(0.0, self.ctrl_low, self.ctrl_high)
        mujoco.mj_forward(self.model, self.data)

    def place_object(self, scale: float = 1.0, offset=(0.0, 0.0)) -> None:
        """Put the object, its size times ``scale``, on the palm (resting on it, centred
        ``offset`` m across (x) and along (z) the palm from its pad)."""
        if not 0.3 <= scale <= 3.0:
            raise SimError(f"object scale {scale} outside [0.3, 3]")
        m, d = self.model, self.data
        m.geom_size[self.object_geom] = self._base_size * scale
        _, _, quat, half = SHAPES[self.shape]
        rot = d.xmat[self.palm].reshape(3, 3)
        local = np.array([0.011 + offset[0], -(PALM_HALF_THICKNESS + half * scale + 0.001),
                          0.08 + offset[1]])
        q = self._object_qpos
        d.qpos[q:q + 3] = d.xpos[self.palm] + rot @ local
        mujoco.mju_mulQuat(d.qpos[q + 3:q + 7], d.xquat[self.palm], np.asarray(quat, np.float64))
        d.qvel[:] = 0.0
        mujoco.mj_forward(m, d)

    def step(self, ctrl: np.ndarray, steps: int = 1) -> None:
        """Hold the position targets ``ctrl`` (clipped to the actuators' ranges) for
        ``steps`` physics steps."""
        self.data.ctrl[:] = np.clip(ctrl, self.ctrl_low, self.ctrl_high)
        mujoco.mj_step(self.model, self.data, nstep=int(steps))
        if not np.all(np.isfinite(self.data.qpos)):
            raise SimError("the hand simulation diverged (non-finite state)")

    def touch(self) -> np.ndarray:
        """The 92 touch readings (N, normal force summed inside each site)."""
        return self.data.sensordata[self._adr].astype(np.float32)

    def touch_grid(self) -> np.ndarray:
        """The :data:`TOUCH_GRIDS` readings in their order, each grid row by row (N, normal
        force of the contacts in each bin; empty without touch grids)."""
        return np.abs(self.data.sensordata[self._grid_adr]).astype(np.float32)

    def contacts(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Hand-object contacts: (hand body ids (C,), contact points in those bodies'
        frames (C, 3), normal forces (C,) N)."""
        m, d = self.model, self.data
        bodies, points, forces = [], [], []
        wrench = np.zeros(6)
        for i in range(d.ncon):
            c = d.contact[i]
            b1, b2 = m.geom_bodyid[c.geom1], m.geom_bodyid[c.geom2]
            if self.object_body not in (b1, b2):
                continue
            hand = b2 if b1 == self.object_body else b1
            if not self.hand_bodies[hand]:
                continue
            mujoco.mj_contactForce(m, d, i, wrench)
            rot = d.xmat[hand].reshape(3, 3)
            bodies.append(hand)
            points.append(rot.T @ (c.pos - d.xpos[hand]))
            forces.append(abs(wrench[0]))
        return (np.array(bodies, dtype=np.int64), np.array(points).reshape(-1, 3),
                np.array(forces, dtype=np.float64))

    def object_height(self) -> float:
        """Height of the object's centre above the palm's centre, along the palm normal."""
        d = self.data
        normal = -d.xmat[self.palm].reshape(3, 3)[:, 1]
        return float(normal @ (d.xpos[self.object_body] - d.xpos[self.palm]))
