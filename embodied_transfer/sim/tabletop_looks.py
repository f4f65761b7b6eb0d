"""Domain randomisation of the tabletop camera: how a scene looks, not what is in it.

A :class:`Look` is everything about the picture that a grasp model must not memorise: the
lights (direction, strength, shadows, ambient), the table (colour and texture), the camera
(height above the table and vertical field of view), the shade of each object's colour and flat
distractors on the table (sheets of paper, coasters, tape) that are no objects to grasp.
:meth:`Look.sample` draws one; ``Look()`` is the nominal tabletop of ``tabletop.xml``;
:meth:`Look.apply` edits a scene's spec (:func:`~embodied_transfer.sim.tabletop.build_spec`
calls it). :func:`sample_image_size` draws an image size for the renderer.

What a look changes is seen only by the camera: the objects, their poses and their ground-truth
grasps stay the scene's (labels are projected through the look's camera), distractors are
visual geoms that nothing collides with, and the gripper executes the same grasps.
Everything random is drawn from the caller's ``numpy.random.Generator``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import mujoco
import numpy as np

from embodied_transfer.sim.errors import SimError

TABLE_TEXTURES = ("plain", "grain", "checker")
DISTRACTOR_KINDS = ("sheet", "disc")
NOMINAL_CAMERA = (0.75, 45.0)        # m above the table, vertical fovy in degrees
CAMERA_HEIGHTS = (0.55, 1.0)         # m, the sampled range
VIEW_HALF_HEIGHTS = (0.24, 0.45)     # m, half the table seen along the image's height
SIZES = ((320, 240), (400, 300), (480, 360), (640, 480), (424, 240), (640, 360))
_MAX_DISTRACTORS = 4


@dataclass(frozen=True)
class Distractor:
    """A flat visual item on the table (world frame, m): nothing collides with it."""

    kind: str
    x: float
    y: float
    yaw: float
    half_x: float                 # a disc's radius
    half_y: float
    thickness: float
    rgb: tuple[float, float, float]

    def __post_init__(self) -> None:
        if self.kind not in DISTRACTOR_KINDS:
            raise SimError(f"unknown distractor {self.kind!r}; known: {DISTRACTOR_KINDS}")


@dataclass(frozen=True)
class Look:
    """The picture's randomised parameters; the defaults are the nominal tabletop."""

    sun_dir: tuple[float, float, float] = (-0.12, 0.12, -1.0)
    sun: float = 0.55              # diffuse strength of the directional light
    ambient: float = 0.35          # the headlight's ambient strength
    headlight: float = 0.3         # the headlight's diffuse strength
    tint: tuple[float, float, float] = (1.0, 1.0, 1.0)   # colour of the light
    shadows: bool = True
    table_rgb: tuple[float, float, float] | None = None  # None: the XML's table material
    table_texture: str = "plain"
    cam_height: float = NOMINAL_CAMERA[0]
    fovy: float = NOMINAL_CAMERA[1]
    shades: tuple[float, ...] = ()  # per object: a brightness factor on its colour
    distractors: tuple[Distractor, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.table_texture not in TABLE_TEXTURES:
            raise SimError(f"unknown table texture {self.table_texture!r}; "
                           f"known: {TABLE_TEXTURES}")
        if not (0.2 <= self.cam_height <= 2.0 and 10.0 <= self.fovy <= 120.0):
            raise SimError(f"camera height {self.cam_height} m / fovy {self.fovy}° out of range "
                           f"(0.2..2 m, 10..120°)")
        if self.sun_dir[2] >= 0:
            raise SimError(f"the sun must shine down (dir z < 0), got {self.sun_dir}")

    @property
    def nominal(self) -> bool:
        return self == Look()

    @classmethod
    def sample(cls, rng: np.random.Generator, n_objects: int = 0) -> "Look":
        """A random look: lights, table, camera, object shades and 0..4 distractors."""
        u = rng.uniform
        tilt, azimuth = u(0.0, 0.6), u(-math.pi, math.pi)
        sun_dir = (math.sin(tilt) * math.cos(azimuth), math.sin(tilt) * math.sin(azimuth),
                   -math.cos(tilt))
        height = u(*CAMERA_HEIGHTS)
        fovy = math.degrees(2 * math.atan(u(*VIEW_HALF_HEIGHTS) / height))
        base = u(0.15, 0.9)
        table = tuple(float(np.clip(base * c, 0.0, 1.0))
                      for c in (u(0.8, 1.2), u(0.8, 1.15), u(0.7, 1.1)))
        half_x, half_y = view_half_extents(fovy, height)
        distractors = []
        for _ in range(int(rng.integers(0, _MAX_DISTRACTORS + 1))):
            kind = DISTRACTOR_KINDS[int(rng.integers(len(DISTRACTOR_KINDS)))]
            a = u(0.02, 0.09)
            distractors.append(Distractor(
                kind, float(u(-half_x, half_x)), float(u(-half_y, half_y)),
                float(u(-math.pi, math.pi)), float(a),
                float(a if kind == "disc" else u(0.02, 0.12)), float(u(0.0005, 0.003)),
                tuple(float(c) for c in u(0.05, 0.95, 3))))
        return cls(sun_dir=tuple(float(d) for d in sun_dir), sun=float(u(0.25, 0.85)),
                   ambient=float(u(0.15, 0.5)), headlight=float(u(0.1, 0.45)),
                   tint=tuple(float(c) for c in u(0.85, 1.0, 3)), shadows=bool(rng.random() < 0.7),
                   table_rgb=table, table_texture=TABLE_TEXTURES[int(rng.integers(3))],
                   cam_height=float(height), fovy=float(fovy),
                   shades=tuple(float(s) for s in u(0.8, 1.15, n_objects)),
                   distractors=tuple(distractors))

    def shade(self, index: int, rgba: tuple[float, ...]) -> list[float]:
        """Object ``index``'s colour under this look (its colour name still applies)."""
        k = self.shades[index] if index < len(self.shades) else 1.0
        return [*(float(np.clip(c * k, 0.0, 1.0)) for c in rgba[:3]), float(rgba[3])]

    def apply(self, spec: mujoco.MjSpec, table_top: float) -> None:
        """Set the lights, table, camera and distractors of a tabletop spec."""
        sun, cam, table = spec.light("sun"), spec.camera("overhead"), spec.material("table")
        if sun is None or cam is None or table is None:
            raise SimError("a look needs the tabletop's light 'sun', camera 'overhead' and "
                           "material 'table'")
        sun.dir = list(self.sun_dir)
        sun.diffuse = [self.sun * t for t in self.tint]
        sun.castshadow = self.shadows
        spec.visual.headlight.ambient = [self.ambient * t for t in self.tint]
        spec.visual.headlight.diffuse = [self.headlight * t for t in self.tint]
        cam.pos = [0.0, 0.0, table_top + self.cam_height]
        cam.fovy = self.fovy
        if self.table_rgb is not None:
            table.rgba = [*self.table_rgb, 1.0]
        if self.table_texture != "plain":
            self._texture(spec, table)
        for i, d in enumerate(self.distractors):
            geom = mujoco.mjtGeom
            kind = geom.mjGEOM_BOX if d.kind == "sheet" else geom.mjGEOM_CYLINDER
            size = [d.half_x, d.half_y, d.thickness / 2] if d.kind == "sheet" \
                else [d.half_x, d.thickness / 2, 0.0]
            spec.worldbody.add_geom(
                name=f"distractor_{i}", type=kind, size=size, rgba=[*d.rgb, 1.0],
                pos=[d.x, d.y, table_top + d.thickness / 2],
                quat=[math.cos(d.yaw / 2), 0.0, 0.0, math.sin(d.yaw / 2)],
                contype=0, conaffinity=0, mass=0.0)

    def _texture(self, spec: mujoco.MjSpec, table) -> None:
        rgb = np.asarray(table.rgba[:3], dtype=float)
        grain = self.table_texture == "grain"
        builtin = mujoco.mjtBuiltin
        spec.add_texture(
            name="table_look", type=mujoco.mjtTexture.mjTEXTURE_2D,
            builtin=builtin.mjBUILTIN_FLAT if grain else builtin.mjBUILTIN_CHECKER,
            rgb1=list(rgb), rgb2=list(rgb * 0.8), width=128, height=128,
            mark=mujoco.mjtMark.mjMARK_RANDOM if grain else mujoco.mjtMark.mjMARK_NONE,
            random=0.25 if grain else 0.0, markrgb=list(rgb * 0.7))
        table.textures[mujoco.mjtTextureRole.mjTEXROLE_RGB] = "table_look"
        table.texrepeat = [3.0, 3.0] if grain else [6.0, 6.0]
        table.rgba = [1.0, 1.0, 1.0, 1.0]


def view_half_extents(fovy_deg: float, cam_height: float,
                      aspect: float = 4 / 3) -> tuple[float, float]:
    """Half extents (x, y) of a camera's view on the table plane (m), for an image at least
    ``aspect`` wide."""
    half_y = cam_height * math.tan(math.radians(fovy_deg) / 2)
    return half_y * aspect, half_y


def sample_image_size(rng: np.random.Generator) -> tuple[int, int]:
    """A random (width, height) among common camera sizes (4:3 and 16:9)."""
    return SIZES[int(rng.integers(len(SIZES)))]
