"""The tabletop grasping scene: random objects, an overhead RGB-D camera, ground-truth grasps
and a parallel-jaw gripper that executes them.

``tabletop.xml`` beside this file is the empty scene (table, lights, overhead camera,
gripper). :meth:`TabletopScene.sample` draws up to five graspable objects with distinct
(colour, category) pairs, :func:`build_model` adds them as free bodies through MjSpec,
:func:`render` takes an RGB and a metric depth image from the camera ``overhead``, and
:func:`image_grasps` projects each object's antipodal ground-truth grasps (:class:`WorldGrasp`,
derived from its geometry) into image rectangles
(:class:`~embodied_transfer.grasp.rectangles.Grasp`).
:func:`execute_grasp` runs one grasp with the simulated gripper and says what was lifted.

Conventions: world REP-103 (x forward, y left, z up; the table top at ``TABLE_TOP``); the
camera's optical frame REP-105 (z forward, x right, y down); continuous pixel coordinates
(pixel column ``j`` covers u ∈ [j, j + 1)) with the principal point at the image centre.
Everything random is drawn from the caller's ``numpy.random.Generator`` or a seed.

Rendering needs an off-screen OpenGL: ``MUJOCO_GL`` defaults to ``egl`` here. mujoco reads
it when first imported; when something imported mujoco earlier without it on a machine with
no display (where its default, GLFW, cannot work and a second try aborts the process), the
first render switches mujoco's off-screen context to EGL (see :func:`_headless_gl`).
"""
from __future__ import annotations

import math
import os
import sys
from collections import OrderedDict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import NamedTuple

os.environ.setdefault("MUJOCO_GL", "egl")

import mujoco  # noqa: E402  (after MUJOCO_GL)
import numpy as np  # noqa: E402

from embodied_transfer.grasp.reasoning import CATEGORY_TEXT, ObjectInfo  # noqa: E402
from embodied_transfer.grasp.rectangles import Grasp, wrap_angle  # noqa: E402
from embodied_transfer.sim.errors import SimError  # noqa: E402
from embodied_transfer.sim.squat import min_jerk  # noqa: E402

MODEL_XML = Path(__file__).with_name("tabletop.xml")
CAMERA = "overhead"
TABLE_TOP = 0.75              # m, top surface of the table in the XML
CAM_HEIGHT = 0.75             # m, the overhead camera above the table (fovy 45°)
GRIPPER_HOME = np.array([0.0, 0.0, 1.2])   # m, the gripper body's pos in the XML
GRIPPER_GROUP = 3             # geom group of the gripper (hidden in camera images)
MAX_OBJECTS = 5

# The gripper (see the XML): pads 1 cm thick, 2 cm wide, reaching 1.5 cm below the grasp point.
MAX_OPENING = 0.085           # m, the fingers' travel
MAX_GRASP_OPENING = 0.08      # m, the widest ground-truth grasp (room to open around it)
PAD_WIDTH = 0.02              # m, jaw size across the closing axis
GRASP_CLEARANCE = 0.01        # m, a grasp's opening = object thickness + this
OPEN_MARGIN = 0.01            # m, the fingers open this much wider than the grasp's opening
GRASP_DEPTH = 0.02            # m, the grasp point sits this far below the top it grips
MIN_GRASP_Z = 0.02            # m above the table: finger tips 5 mm clear of it
APPROACH_Z = 0.3              # m above the table: free space, above every object
WORKSPACE = 0.55              # m, the gripper reaches |x|, |y| up to this
LIFT = 0.15                   # m
LIFT_SUCCESS = 0.1            # m an object must rise to count as lifted

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
assert set(CATEGORIES) <= set(CATEGORY_TEXT)

_RING = {"mug": 12, "bowl": 16}        # wall boxes of the open shapes
_BASE_HALF = 0.003                     # m, half thickness of a mug's / bowl's base
_SHOULDER_HALF = 0.008                 # m, half height of a bottle's shoulder
_HANDLE = (0.015, 0.005)               # m, a mug handle's radial and tangential half size
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
            return s[0] + 2 * _HANDLE[0] - 0.002
        if c == "bowl":
            return s[0] / math.cos(math.pi / _RING["bowl"])
        return s[0]

    def to_world(self, local: np.ndarray) -> np.ndarray:
        """Points (..., 3) in the object frame (origin on the table, x along yaw) → world."""
        local = np.asarray(local, dtype=float)
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        x = self.x + c * local[..., 0] - s * local[..., 1]
        y = self.y + s * local[..., 0] + c * local[..., 1]
        return np.stack([x, y, TABLE_TOP + local[..., 2]], axis=-1)

    def info(self, u: float, v: float) -> ObjectInfo:
        return ObjectInfo(self.name, self.category, self.colour, float(u), float(v))


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


def _view_half_extents(fovy_deg: float = 45.0,
                       cam_height: float = CAM_HEIGHT) -> tuple[float, float]:
    """Half extents (x, y) of the nominal camera's view on the table plane (m)."""
    half_y = cam_height * math.tan(math.radians(fovy_deg) / 2)
    return half_y * _PLACE_ASPECT, half_y


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
    def sample(cls, rng: np.random.Generator, n_objects: int) -> "TabletopScene":
        """``n_objects`` random objects, apart from each other and inside the camera's view.

        Each (colour, category) pair occurs at most once, so "the red mug" names one object.
        """
        if isinstance(n_objects, bool) or not isinstance(n_objects, (int, np.integer)) \
                or not 1 <= n_objects <= MAX_OBJECTS:
            raise SimError(f"n_objects must be an integer in 1..{MAX_OBJECTS}, got {n_objects!r}")
        half_x, half_y = _view_half_extents()
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
                shrink = _VIEW_FILL * (CAM_HEIGHT - obj.height) / CAM_HEIGHT
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
    n = _RING[category]
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
        parts.append(_Part("handle", box, (_HANDLE[0], _HANDLE[1], 0.6 * half_height),
                           (radius + _HANDLE[0] - 0.002, 0.0, half_height)))
    return parts


def _yaw_quat(yaw: float) -> list[float]:
    return [math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)]


def build_spec(scene: TabletopScene, xml: str | Path = MODEL_XML) -> mujoco.MjSpec:
    """The scene as an editable spec: the XML plus one free body per object."""
    try:
        spec = mujoco.MjSpec.from_file(str(xml))
    except Exception as exc:  # mujoco raises ValueError with the parser's message
        raise SimError(f"cannot load the tabletop model {xml}: {exc}") from None
    missing = [name for name, found in (("camera " + CAMERA, spec.camera(CAMERA)),
                                        ("body gripper", spec.body("gripper")))
               if found is None]
    if missing:
        raise SimError(f"the tabletop model {xml} has no {', '.join(missing)}")
    for obj in scene.objects:
        body = spec.worldbody.add_body(name=obj.name, pos=[obj.x, obj.y, TABLE_TOP],
                                       quat=_yaw_quat(obj.yaw))
        body.add_freejoint(name=f"{obj.name}/free")
        parts = _parts(obj)
        total = sum(p.volume for p in parts)
        for part in parts:
            body.add_geom(name=f"{obj.name}/{part.name}", type=part.type, size=list(part.size),
                          pos=list(part.pos), quat=_yaw_quat(part.yaw), rgba=list(obj.rgba),
                          mass=obj.mass * part.volume / total)
    return spec


def build_model(scene: TabletopScene, xml: str | Path = MODEL_XML) -> mujoco.MjModel:
    """Compile the scene (deterministic: the same scene gives the same model)."""
    try:
        return build_spec(scene, xml).compile()
    except ValueError as exc:
        raise SimError(f"cannot compile the tabletop model: {exc}") from None


def object_names(model: mujoco.MjModel) -> list[str]:
    """The objects of a built model: its free bodies, in scene order."""
    free = model.jnt_bodyid[model.jnt_type == mujoco.mjtJoint.mjJNT_FREE]
    return [model.body(int(b)).name for b in free]


# -- camera ---------------------------------------------------------------------------------


class Intrinsics(NamedTuple):
    """Pinhole intrinsics (px); continuous pixel coordinates."""

    fx: float
    fy: float
    cx: float
    cy: float


def _check_size(width: int, height: int) -> None:
    if not all(isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n > 0
               for n in (width, height)):
        raise SimError(f"image width and height must be positive integers, got {width}×{height}")


def _camera_id(model: mujoco.MjModel, camera: str) -> int:
    cam = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, camera)
    if cam < 0:
        raise SimError(f"the model has no camera {camera!r}")
    return cam


def camera_intrinsics(model: mujoco.MjModel, width: int, height: int,
                      camera: str = CAMERA) -> Intrinsics:
    """(fx, fy, cx, cy) of ``camera`` rendered at width×height, from its vertical fovy."""
    _check_size(width, height)
    fovy = math.radians(float(model.cam_fovy[_camera_id(model, camera)]))
    f = height / 2 / math.tan(fovy / 2)
    return Intrinsics(f, f, width / 2, height / 2)


def camera_pose(model: mujoco.MjModel, camera: str = CAMERA) -> tuple[np.ndarray, np.ndarray]:
    """World position and optical-frame rotation (columns: x right, y down, z forward)."""
    cam = _camera_id(model, camera)
    data = mujoco.MjData(model)
    mujoco.mj_kinematics(model, data)
    mujoco.mj_comPos(model, data)
    mujoco.mj_camlight(model, data)
    rot = data.cam_xmat[cam].reshape(3, 3) @ np.diag([1.0, -1.0, -1.0])   # MuJoCo: -z forward
    return data.cam_xpos[cam].copy(), rot


def world_to_pixel(points: np.ndarray, intrinsics: Intrinsics, model: mujoco.MjModel,
                   camera: str = CAMERA) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """World points (..., 3) → (u, v, depth): pixel coordinates, depth along the optical axis."""
    pos, rot = camera_pose(model, camera)
    return _project(np.asarray(points, dtype=float), pos, rot, intrinsics)


def _project(points, pos, rot, k: Intrinsics):
    cam = (points - pos) @ rot          # optical-frame coordinates
    z = cam[..., 2]
    if np.any(z <= 0):
        raise SimError("a point to project lies behind the camera")
    return k.cx + k.fx * cam[..., 0] / z, k.cy + k.fy * cam[..., 1] / z, z


def pixel_to_world(u, v, depth_m, intrinsics: Intrinsics, model: mujoco.MjModel,
                   camera: str = CAMERA) -> np.ndarray:
    """Pixel coordinates with depth along the optical axis (m) → world points (..., 3)."""
    pos, rot = camera_pose(model, camera)
    return _unproject(u, v, depth_m, pos, rot, intrinsics)


def _unproject(u, v, depth, pos, rot, k: Intrinsics) -> np.ndarray:
    u, v, depth = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in (u, v, depth)))
    cam = np.stack([(u - k.cx) / k.fx * depth, (v - k.cy) / k.fy * depth, depth], axis=-1)
    return cam @ rot.T + pos


def _on_plane(u, v, z: float, pos, rot, k: Intrinsics) -> np.ndarray:
    """Where the rays through pixels (u, v) meet the horizontal plane at height z."""
    ray = _unproject(u, v, 1.0, pos, rot, k) - pos      # world direction at depth 1
    if np.any(ray[..., 2] >= 0):
        raise SimError("a pixel's ray does not reach the table (the camera must look down)")
    return _unproject(u, v, (z - pos[2]) / ray[..., 2], pos, rot, k)


# -- rendering --------------------------------------------------------------------------------

_RENDERERS: "OrderedDict[tuple[int, int, int], mujoco.Renderer]" = OrderedDict()
_MAX_RENDERERS = 4


def _headless_gl() -> None:
    """Use EGL where mujoco fell back to GLFW (MUJOCO_GL unset when it was imported) and
    there is no display to open a GLFW window on."""
    try:
        from mujoco.rendering.classic import gl_context
    except ImportError:
        return
    chosen = getattr(gl_context, "_MUJOCO_GL", None)
    if chosen not in ("", "glfw") or not sys.platform.startswith("linux") \
            or os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return
    try:
        from mujoco.egl import GLContext
    except ImportError as exc:
        raise SimError(f"no display and no EGL for off-screen rendering ({exc}); set "
                       f"MUJOCO_GL=egl or osmesa before mujoco is first imported") from None
    gl_context.GLContext = GLContext


def _renderer(model: mujoco.MjModel, width: int, height: int) -> mujoco.Renderer:
    """A cached renderer for this model and size (a cache entry keeps its model alive)."""
    key = (id(model), width, height)
    renderer = _RENDERERS.get(key)
    if renderer is not None and renderer.model is model:
        _RENDERERS.move_to_end(key)
        return renderer
    limit = (model.vis.global_.offwidth, model.vis.global_.offheight)
    if width > limit[0] or height > limit[1]:
        raise SimError(f"{width}×{height} exceeds the model's off-screen buffer "
                       f"{limit[0]}×{limit[1]}")
    _headless_gl()
    try:
        renderer = mujoco.Renderer(model, height, width)
    except Exception as exc:
        raise SimError(f"cannot create an off-screen renderer ({exc}); set MUJOCO_GL=egl "
                       f"(or osmesa) before mujoco is first imported") from None
    _RENDERERS[key] = renderer
    while len(_RENDERERS) > _MAX_RENDERERS:
        _RENDERERS.popitem(last=False)[1].close()
    return renderer


def render(model: mujoco.MjModel, data: mujoco.MjData, width: int = 320, height: int = 240,
           camera: str = CAMERA, show_gripper: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """RGB (H, W, 3) uint8 and depth (H, W) float32 in m along the optical axis.

    The gripper is left out unless ``show_gripper``.
    """
    _check_size(width, height)
    _camera_id(model, camera)
    renderer = _renderer(model, int(width), int(height))
    option = mujoco.MjvOption()
    option.geomgroup[GRIPPER_GROUP] = int(show_gripper)
    option.sitegroup[GRIPPER_GROUP] = 0
    renderer.update_scene(data, camera, option)
    rgb = renderer.render().copy()
    renderer.enable_depth_rendering()
    try:
        depth = renderer.render().astype(np.float32)
    finally:
        renderer.disable_depth_rendering()
    return rgb, depth


# -- grasps -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorldGrasp:
    """A top-down parallel-jaw grasp in the world frame.

    The grasp point (x, y, z) lies midway between the pads, ``GRASP_DEPTH`` below the top it
    grips (never lower than ``MIN_GRASP_Z`` above the table); ``yaw`` is the closing axis
    from world +x towards +y in (-pi/2, pi/2]; ``opening`` the jaw opening the grasp needs
    (object thickness + clearance) and ``jaw`` the pad size across the closing axis, in m.
    ``top`` is the height of the highest surface between the jaws as seen from above: the
    image rectangle is drawn on that plane (None: on the grasp's own height).
    """

    x: float
    y: float
    z: float
    yaw: float
    opening: float
    jaw: float = PAD_WIDTH
    top: float | None = None

    def __post_init__(self) -> None:
        if not all(math.isfinite(v) for v in (self.x, self.y, self.z, self.yaw, self.opening,
                                              self.jaw, self.image_plane)):
            raise SimError(f"grasp has a non-finite value: {self}")
        if self.opening <= 0 or self.jaw <= 0:
            raise SimError(f"grasp opening and jaw must be > 0: {self}")
        object.__setattr__(self, "yaw", wrap_angle(self.yaw))

    @property
    def centre(self) -> np.ndarray:
        return np.array([self.x, self.y, self.z])

    @property
    def image_plane(self) -> float:
        """World height at which the grasp is drawn in images (m)."""
        return self.z if self.top is None else self.top

    @property
    def axis(self) -> np.ndarray:
        """Unit closing axis (world)."""
        return np.array([math.cos(self.yaw), math.sin(self.yaw), 0.0])


def _grasp_z(top: float) -> float:
    """Height above the table of a grasp gripping just below ``top`` (m above the table)."""
    return max(top - GRASP_DEPTH, MIN_GRASP_Z)


def world_grasps(obj: ObjectSpec) -> list[WorldGrasp]:
    """Antipodal grasps of one object from its geometry (only those the gripper can open to)."""
    c, s = obj.category, obj.size
    # x, y, z, yaw, opening, jaw (object frame); ``top`` is the height seen from above
    local: list[tuple[float, float, float, float, float, float]] = []
    top = obj.height
    handle_top = None
    if c == "box":
        z = _grasp_z(2 * s[2])
        for axis in (0, 1):
            across = s[1 - axis]
            jaw = min(PAD_WIDTH, 2 * across)
            reach = max(0.0, across - jaw / 2 - 0.003)
            for offset in sorted({-0.6 * reach, 0.0, 0.6 * reach}):
                pos = (0.0, offset) if axis == 0 else (offset, 0.0)
                local.append((*pos, z, axis * math.pi / 2, 2 * s[axis] + GRASP_CLEARANCE, jaw))
    elif c in ("cylinder", "can", "sphere", "bottle"):
        z = s[0] if c == "sphere" else _grasp_z(2 * s[1])   # sphere: at the equator
        for k in range(4):
            local.append((0.0, 0.0, max(z, MIN_GRASP_Z), k * math.pi / 4,
                          2 * s[0] + GRASP_CLEARANCE, PAD_WIDTH))
    else:                                          # mug, bowl: across the rim wall
        radius, half_height, wall = s
        n = _RING[c]
        face = 2 * radius * math.tan(math.pi / n)
        z = _grasp_z(2 * half_height)
        for i in range(0, n, 2):
            phi = 2 * math.pi * i / n
            if c == "mug" and abs(math.remainder(phi, 2 * math.pi)) < math.radians(50):
                continue                           # not next to the handle (local +x)
            r = radius - wall / 2
            local.append((r * math.cos(phi), r * math.sin(phi), z, phi,
                          wall + GRASP_CLEARANCE, min(PAD_WIDTH, face)))
        if c == "mug":                             # across the handle, tangentially
            hz = 0.6 * half_height
            handle_top = half_height + hz
            local.append((radius + 0.018, 0.0, _grasp_z(handle_top), math.pi / 2,
                          2 * _HANDLE[1] + GRASP_CLEARANCE, PAD_WIDTH))
    out = []
    for i, (x, y, z, yaw, opening, jaw) in enumerate(local):
        if opening > MAX_GRASP_OPENING:
            continue
        seen = handle_top if handle_top is not None and i == len(local) - 1 else top
        wx, wy, _ = obj.to_world(np.array([x, y, 0.0]))
        out.append(WorldGrasp(float(wx), float(wy), TABLE_TOP + z, obj.yaw + yaw, opening, jaw,
                              TABLE_TOP + seen))
    return out


def _to_image(grasps: list[WorldGrasp], pos, rot, k: Intrinsics) -> list[Grasp]:
    out = []
    for g in grasps:
        across = np.array([-g.axis[1], g.axis[0], 0.0])
        c = np.array([g.x, g.y, g.image_plane])
        pts = np.stack([c, c - g.axis * g.opening / 2, c + g.axis * g.opening / 2,
                        c - across * g.jaw / 2, c + across * g.jaw / 2])
        u, v, _ = _project(pts, pos, rot, k)
        du, dv = u[2] - u[1], v[2] - v[1]
        out.append(Grasp(float(u[0]), float(v[0]), math.atan2(dv, du), float(math.hypot(du, dv)),
                         float(math.hypot(u[4] - u[3], v[4] - v[3]))))
    return out


def project_grasp(grasp: WorldGrasp, intrinsics: Intrinsics, model: mujoco.MjModel,
                  camera: str = CAMERA) -> Grasp:
    """One world grasp as an image rectangle (px)."""
    pos, rot = camera_pose(model, camera)
    return _to_image([grasp], pos, rot, intrinsics)[0]


def image_grasps(model: mujoco.MjModel, scene: TabletopScene, width: int = 320,
                 height: int = 240, camera: str = CAMERA) -> dict[str, list[Grasp]]:
    """Every object's ground-truth grasps as image rectangles, by object name."""
    k = camera_intrinsics(model, width, height, camera)
    pos, rot = camera_pose(model, camera)
    return {obj.name: _to_image(world_grasps(obj), pos, rot, k) for obj in scene.objects}


def object_infos(model: mujoco.MjModel, scene: TabletopScene, width: int = 320,
                 height: int = 240, camera: str = CAMERA) -> list[ObjectInfo]:
    """Name, category, colour and pixel centre (the centre of the object's top)."""
    k = camera_intrinsics(model, width, height, camera)
    pos, rot = camera_pose(model, camera)
    out = []
    for obj in scene.objects:
        u, v, _ = _project(np.array([obj.x, obj.y, TABLE_TOP + obj.height]), pos, rot, k)
        out.append(obj.info(u, v))
    return out


def grasp_from_image(grasp: Grasp, depth: np.ndarray, intrinsics: Intrinsics,
                     model: mujoco.MjModel, camera: str = CAMERA) -> WorldGrasp:
    """An image rectangle → a world grasp, using the depth image.

    The rectangle is taken to lie on the highest surface seen inside it (the table when it
    holds nothing): centre, axis, opening and jaw are its own on that plane, and the grasp
    grips ``GRASP_DEPTH`` below that top. It inverts :func:`project_grasp` for a grasp
    whose ``top`` is what the camera sees.
    """
    depth = np.asarray(depth)
    if depth.ndim != 2 or depth.size == 0:
        raise SimError(f"depth must be an (H, W) image, got shape {depth.shape}")
    pos, rot = camera_pose(model, camera)
    along = np.array([math.cos(grasp.theta), math.sin(grasp.theta)])
    across = np.array([-along[1], along[0]])
    s, t = np.meshgrid(np.linspace(-0.5, 0.5, 11), np.linspace(-0.5, 0.5, 5))
    uv = (np.array([grasp.x, grasp.y]) + s[..., None] * along * grasp.width
          + t[..., None] * across * grasp.jaw).reshape(-1, 2)
    h, w = depth.shape
    cols = np.clip(np.floor(uv[:, 0]).astype(int), 0, w - 1)
    rows = np.clip(np.floor(uv[:, 1]).astype(int), 0, h - 1)
    surface = _unproject(cols + 0.5, rows + 0.5, depth[rows, cols], pos, rot, intrinsics)
    top = max(float(surface[:, 2].max()), TABLE_TOP)
    offsets = np.array([[0.0, 0.0], -along * grasp.width / 2, along * grasp.width / 2,
                        -across * grasp.jaw / 2, across * grasp.jaw / 2])
    ends = _on_plane(grasp.x + offsets[:, 0], grasp.y + offsets[:, 1], top, pos, rot, intrinsics)
    axis = ends[2] - ends[1]
    return WorldGrasp(float(ends[0, 0]), float(ends[0, 1]), TABLE_TOP + _grasp_z(top - TABLE_TOP),
                      math.atan2(axis[1], axis[0]), float(np.linalg.norm(axis)),
                      float(np.linalg.norm(ends[4] - ends[3])), top)


# -- one bundle -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SceneSample:
    """One rendered scene with its metadata and ground-truth grasps."""

    scene: TabletopScene
    rgb: np.ndarray                       # (H, W, 3) uint8
    depth: np.ndarray                     # (H, W) float32, m
    intrinsics: Intrinsics
    objects: list[ObjectInfo]
    grasps: dict[str, list[Grasp]]        # object name → ground-truth rectangles


def sample_scene(seed: int, n_objects: int | None = None, width: int = 320,
                 height: int = 240) -> SceneSample:
    """A random scene (1..MAX_OBJECTS objects when ``n_objects`` is None), rendered at rest."""
    _check_size(width, height)
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, MAX_OBJECTS + 1)) if n_objects is None else n_objects
    scene = TabletopScene.sample(rng, n)
    model = build_model(scene)
    data = mujoco.MjData(model)
    reset(model, data)
    rgb, depth = render(model, data, width, height)
    return SceneSample(scene, rgb, depth, camera_intrinsics(model, width, height),
                       object_infos(model, scene, width, height),
                       image_grasps(model, scene, width, height))


# -- executing a grasp ----------------------------------------------------------------------------


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
                  target: str | None = None) -> GraspOutcome:
    """Run one grasp from the current state: open, descend, close, lift ``LIFT``, hold 0.5 s.

    The gripper is first put (kinematically, in the free space above every object) over the
    grasp with the fingers open to ``opening + OPEN_MARGIN``; from there on it is physics.
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

    low = max(rel[2], TABLE_TOP + MIN_GRASP_Z - GRIPPER_HOME[2])
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
