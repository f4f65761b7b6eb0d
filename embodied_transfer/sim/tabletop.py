"""The tabletop grasping scene: random objects on a table under an overhead camera.

``tabletop.xml`` beside this file is the empty scene (table, lights, overhead camera,
gripper). :meth:`TabletopScene.sample` draws up to five graspable objects with distinct
(colour, category) pairs and :func:`build_model` adds them as free bodies through MjSpec.
The rest of the tabletop lives beside this module:

* :mod:`~embodied_transfer.sim.tabletop_camera`: the overhead camera's intrinsics, pose and
  projections, and :func:`~embodied_transfer.sim.tabletop_camera.render` (RGB and metric depth);
* :mod:`~embodied_transfer.sim.tabletop_labels`: each object's antipodal ground-truth grasps in
  the world frame (:class:`~embodied_transfer.sim.tabletop_labels.WorldGrasp`), from its geometry;
* :mod:`~embodied_transfer.sim.tabletop_gripper`: the parallel-jaw gripper, which executes a
  world grasp and says what was lifted;
* :mod:`~embodied_transfer.sim.tabletop_looks`: domain randomisation (lights, table, camera,
  shades, distractors) through a :class:`~embodied_transfer.sim.tabletop_looks.Look`.

Image rectangles, object metadata for the reasoning text and the live task with an instruction
are the grasp capability's (:mod:`embodied_transfer.grasp.scene_labels`,
:mod:`embodied_transfer.grasp.tabletop_task`).

Conventions: world REP-103 (x forward, y left, z up; the table top at ``TABLE_TOP``).
Everything random is drawn from the caller's ``numpy.random.Generator`` or a seed.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import mujoco
import numpy as np

from embodied_transfer.sim.errors import SimError, compiled
from embodied_transfer.sim.tabletop_looks import Look, view_half_extents

MODEL_XML = Path(__file__).with_name("tabletop.xml")
CAMERA = "overhead"
TABLE_TOP = 0.75              # m, top surface of the table in the XML
CAM_HEIGHT = 0.75             # m, the overhead camera above the table (fovy 45°)
GRIPPER_HOME = np.array([0.0, 0.0, 1.2])   # m, the gripper body's pos in the XML
GRIPPER_GROUP = 3             # geom group of the gripper (hidden in camera images)
MAX_OBJECTS = 5

# The gripper (see the XML): pads 1 cm thick, 2 cm wide, reaching 1.5 cm below the grasp point.
MAX_OPENING = 0.085           # m, the fingers' travel
PAD_WIDTH = 0.02              # m, jaw size across the closing axis

#: Object colours (name → rgba).
PALETTE: dict[str, tuple[float, float, float, float]] = {
    "red": (0.8, 0.08, 0.08, 1.0),
    "green": (0.1, 0.6, 0.15, 1.0),
    "blue": (0.1, 0.25, 0.85, 1.0),
    "yellow": (0.95, 0.82, 0.1, 1.0),
    "orange": (1.0, 0.45, 0.05, 1.0),
    "purple": (0.5, 0.15, 0.62, 1.0),
    "white": (0.93, 0.93, 0.93, 1.0),
    "black": (0.07, 0.07, 0.07, 1.0),
}

#: Categories and the meaning of :attr:`ObjectSpec.size` (half sizes, m).
SIZE_FIELDS: dict[str, tuple[str, ...]] = {
    "box": ("half_x", "half_y", "half_z"),
    "cylinder": ("radius", "half_height"),
    "sphere": ("radius",),
    "mug": ("outer_radius", "half_height", "wall"),
    "bottle": ("body_radius", "body_half_height", "neck_radius", "neck_half_height"),
    "bowl": ("outer_radius", "half_height", "wall"),
    "can": ("radius", "half_height"),
}
CATEGORIES: tuple[str, ...] = tuple(SIZE_FIELDS)

RING_BOXES = {"mug": 12, "bowl": 16}   # wall boxes of the open shapes
_BASE_HALF = 0.003                     # m, half thickness of a mug's / bowl's base
_SHOULDER_HALF = 0.008                 # m, half height of a bottle's shoulder
HANDLE_HALF = (0.015, 0.005)           # m, a mug handle's radial and tangential half size
_GAP = 0.04                            # m, free space kept between objects (for the fingers)
_VIEW_FILL = 0.92                      # objects stay inside this fraction of the view
_PLACE_ASPECT = 4 / 3                  # placement fits an image at least this wide


# -- objects and scenes -----------------------------------------------------------------


@dataclass(frozen=True)
class ObjectSpec:
    """One object on the table: what it is, its size (see ``SIZE_FIELDS``) and pose."""

    name: str
    category: str
    colour: str
    rgba: tuple[float, float, float, float]
    size: tuple[float, ...]
    mass: float                 # kg
    x: float = 0.0              # m, world frame, centre of the footprint
    y: float = 0.0
    yaw: float = 0.0            # rad about world z (a mug's handle points along local +x)

    def __post_init__(self) -> None:
        fields = SIZE_FIELDS.get(self.category)
        if fields is None:
            raise SimError(f"unknown category {self.category!r}; known: {', '.join(CATEGORIES)}")
        if len(self.size) != len(fields) or not all(s > 0 for s in self.size):
            raise SimError(f"a {self.category} needs {len(fields)} positive sizes "
                           f"{fields}, got {self.size}")
        if not self.mass > 0:
            raise SimError(f"object mass must be > 0, got {self.mass}")

    def dim(self, field: str) -> float:
        """A named size (see ``SIZE_FIELDS``)."""
        return self.size[SIZE_FIELDS[self.category].index(field)]

    @property
    def height(self) -> float:
        """Top of the object above the table (m)."""
        c, s = self.category, self.size
        if c == "box":
            return 2 * s[2]
        if c == "sphere":
            return 2 * s[0]
        if c == "bottle":
            return 2 * s[1] + 2 * _SHOULDER_HALF + 2 * s[3]
        return 2 * s[1]

    @property
    def footprint(self) -> float:
        """Radius of a circle around the centre that holds the whole object in x, y (m)."""
        c, s = self.category, self.size
        if c == "box":
            return float(math.hypot(s[0], s[1]))
        if c == "mug":
            return s[0] + 2 * HANDLE_HALF[0] - 0.002
        if c == "bowl":
            return s[0] / math.cos(math.pi / RING_BOXES["bowl"])
        return s[0]

    def to_world(self, local: np.ndarray) -> np.ndarray:
        """Points (..., 3) in the object frame (origin on the table, x along yaw) → world."""
        local = np.asarray(local, dtype=float)
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        x = self.x + c * local[..., 0] - s * local[..., 1]
        y = self.y + s * local[..., 0] + c * local[..., 1]
        return np.stack([x, y, TABLE_TOP + local[..., 2]], axis=-1)


def _sample_object(rng: np.random.Generator, category: str, colour: str) -> ObjectSpec:
    """Sizes and mass of one object that the ~8 cm gripper can grasp."""
    u = rng.uniform
    if category == "box":
        a, b = u(0.015, 0.035), u(0.015, 0.045)     # the narrower side always fits
        size = (a, b, u(0.015, 0.04)) if rng.random() < 0.5 else (b, a, u(0.015, 0.04))
        mass = u(0.05, 0.4)
    elif category == "cylinder":
        size, mass = (u(0.015, 0.025), u(0.04, 0.07)), u(0.05, 0.3)
    elif category == "sphere":
        size, mass = (u(0.022, 0.034),), u(0.05, 0.2)
    elif category == "mug":
        size, mass = (u(0.032, 0.04), u(0.04, 0.05), 0.005), u(0.15, 0.3)
    elif category == "bottle":
        size = (u(0.024, 0.032), u(0.05, 0.07), u(0.011, 0.014), u(0.015, 0.025))
        mass = u(0.15, 0.45)
    elif category == "bowl":
        size, mass = (u(0.055, 0.07), u(0.024, 0.03), 0.005), u(0.1, 0.25)
    elif category == "can":
        size, mass = (u(0.026, 0.034), u(0.03, 0.045)), u(0.1, 0.4)
    else:
        raise SimError(f"unknown category {category!r}; known: {', '.join(CATEGORIES)}")
    return ObjectSpec(name=f"{colour}_{category}", category=category, colour=colour,
                      rgba=PALETTE[colour], size=tuple(float(s) for s in size),
                      mass=float(mass))


@dataclass(frozen=True)
class TabletopScene:
    """The objects on the table (1 to ``MAX_OBJECTS``)."""

    objects: tuple[ObjectSpec, ...]

    def __post_init__(self) -> None:
        names = [o.name for o in self.objects]
        if len(set(names)) != len(names):
            raise SimError(f"object names must be distinct: {names}")

    def object(self, name: str) -> ObjectSpec:
        for obj in self.objects:
            if obj.name == name:
                return obj
        raise SimError(f"no object {name!r} in the scene; it has {[o.name for o in self.objects]}")

    @classmethod
    def sample(cls, rng: np.random.Generator, n_objects: int,
               look: Look | None = None) -> "TabletopScene":
        """``n_objects`` random objects, apart from each other and inside the camera's view
        (the nominal camera's, or ``look``'s).

        Each (colour, category) pair occurs at most once, so "the red mug" names one object.
        """
        if isinstance(n_objects, bool) or not isinstance(n_objects, (int, np.integer)) \
                or not 1 <= n_objects <= MAX_OBJECTS:
            raise SimError(f"n_objects must be an integer in 1..{MAX_OBJECTS}, got {n_objects!r}")
        look = look or Look()
        cam_height = look.cam_height
        half_x, half_y = view_half_extents(look.fovy, cam_height, _PLACE_ASPECT)
        colours = list(PALETTE)
        for _ in range(100):
            placed: list[ObjectSpec] = []
            for _ in range(int(n_objects)):
                used = {(o.colour, o.category) for o in placed}
                while True:
                    pair = (colours[int(rng.integers(len(colours)))],
                            CATEGORIES[int(rng.integers(len(CATEGORIES)))])
                    if pair not in used:
                        break
                obj = _sample_object(rng, pair[1], pair[0])
                # keep the top of the object (closest to the camera) inside the view
                shrink = _VIEW_FILL * (cam_height - obj.height) / cam_height
                lim_x, lim_y = half_x * shrink - obj.footprint, half_y * shrink - obj.footprint
                for _ in range(100):
                    x, y = rng.uniform(-lim_x, lim_x), rng.uniform(-lim_y, lim_y)
                    if all(math.hypot(x - o.x, y - o.y) >= obj.footprint + o.footprint + _GAP
                           for o in placed):
                        placed.append(replace(obj, x=float(x), y=float(y),
                                              yaw=float(rng.uniform(-math.pi, math.pi))))
                        break
                else:
                    break           # no room: start the scene again
            if len(placed) == n_objects:
                return cls(tuple(placed))
        raise SimError(f"could not place {n_objects} objects on the table")


# -- the model ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Part:
    name: str
    type: mujoco.mjtGeom
    size: tuple[float, ...]
    pos: tuple[float, float, float]     # object frame
    yaw: float = 0.0                    # about the object's z

    @property
    def volume(self) -> float:
        s = self.size
        if self.type == mujoco.mjtGeom.mjGEOM_BOX:
            return 8 * s[0] * s[1] * s[2]
        if self.type == mujoco.mjtGeom.mjGEOM_SPHERE:
            return 4 / 3 * math.pi * s[0] ** 3
        return math.pi * s[0] ** 2 * 2 * s[1]


def _ring(category: str, radius: float, half_height: float, wall: float) -> list[_Part]:
    n = RING_BOXES[category]
    tangential = radius * math.tan(math.pi / n)
    parts = []
    for i in range(n):
        phi = 2 * math.pi * i / n
        r = radius - wall / 2
        parts.append(_Part(f"wall_{i}", mujoco.mjtGeom.mjGEOM_BOX,
                           (wall / 2, tangential, half_height),
                           (r * math.cos(phi), r * math.sin(phi), half_height), phi))
    return parts


def _parts(obj: ObjectSpec) -> list[_Part]:
    """The geoms of one object, in its frame."""
    geom = mujoco.mjtGeom
    box, cyl, sph = geom.mjGEOM_BOX, geom.mjGEOM_CYLINDER, geom.mjGEOM_SPHERE
    c, s = obj.category, obj.size
    if c == "box":
        return [_Part("body", box, s, (0.0, 0.0, s[2]))]
    if c in ("cylinder", "can"):
        return [_Part("body", cyl, s, (0.0, 0.0, s[1]))]
    if c == "sphere":
        return [_Part("body", sph, s, (0.0, 0.0, s[0]))]
    if c == "bottle":
        rb, hb, rn, hn = s
        shoulder = 2 * hb + _SHOULDER_HALF
        return [_Part("body", cyl, (rb, hb), (0.0, 0.0, hb)),
                _Part("shoulder", cyl, ((rb + rn) / 2, _SHOULDER_HALF), (0.0, 0.0, shoulder)),
                _Part("neck", cyl, (rn, hn), (0.0, 0.0, shoulder + _SHOULDER_HALF + hn))]
    radius, half_height, wall = s
    parts = [_Part("base", cyl, (radius - wall, _BASE_HALF), (0.0, 0.0, _BASE_HALF)),
             *_ring(c, radius, half_height, wall)]
    if c == "mug":
        parts.append(_Part("handle", box, (HANDLE_HALF[0], HANDLE_HALF[1], 0.6 * half_height),
                           (radius + HANDLE_HALF[0] - 0.002, 0.0, half_height)))
    return parts


def _yaw_quat(yaw: float) -> list[float]:
    return [math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)]


def build_spec(scene: TabletopScene, xml: str | Path = MODEL_XML,
               look: Look | None = None) -> mujoco.MjSpec:
    """The scene as an editable spec: the XML plus one free body per object, seen under
    ``look`` (the XML's own look when None)."""
    try:
        spec = mujoco.MjSpec.from_file(str(xml))
    except Exception as exc:  # mujoco raises ValueError with the parser's message
        raise SimError(f"cannot load the tabletop model {xml}: {exc}") from None
    missing = [name for name, found in (("camera " + CAMERA, spec.camera(CAMERA)),
                                        ("body gripper", spec.body("gripper")))
               if found is None]
    if missing:
        raise SimError(f"the tabletop model {xml} has no {', '.join(missing)}")
    if look is not None:
        look.apply(spec, TABLE_TOP)
    for index, obj in enumerate(scene.objects):
        rgba = list(obj.rgba) if look is None else look.shade(index, obj.rgba)
        body = spec.worldbody.add_body(name=obj.name, pos=[obj.x, obj.y, TABLE_TOP],
                                       quat=_yaw_quat(obj.yaw))
        body.add_freejoint(name=f"{obj.name}/free")
        parts = _parts(obj)
        total = sum(p.volume for p in parts)
        for part in parts:
            body.add_geom(name=f"{obj.name}/{part.name}", type=part.type, size=list(part.size),
                          pos=list(part.pos), quat=_yaw_quat(part.yaw), rgba=rgba,
                          mass=obj.mass * part.volume / total)
    return spec


def build_model(scene: TabletopScene, xml: str | Path = MODEL_XML,
                look: Look | None = None) -> mujoco.MjModel:
    """Compile the scene (deterministic: the same scene and look give the same model)."""
    return compiled(build_spec(scene, xml, look), "the tabletop model")


def object_names(model: mujoco.MjModel) -> list[str]:
    """The objects of a built model: its free bodies, in scene order."""
    free = model.jnt_bodyid[model.jnt_type == mujoco.mjtJoint.mjJNT_FREE]
    return [model.body(int(b)).name for b in free]

