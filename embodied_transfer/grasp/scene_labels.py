"""Image-plane labels of the MuJoCo tabletop: grasp rectangles and object metadata.

The simulator (:mod:`embodied_transfer.sim.tabletop` and its camera, labels and gripper
modules) knows the scene in the world frame; this module turns it into what the grasp
capability learns from:

* :func:`image_grasps` projects each object's antipodal ground-truth grasps
  (:class:`~embodied_transfer.sim.tabletop_labels.WorldGrasp`) into image rectangles
  (:class:`~embodied_transfer.grasp.rectangles.Grasp`), :func:`project_grasp` one of them;
* :func:`object_infos` gives each object's name, category, colour and pixel centre
  (:class:`~embodied_transfer.grasp.reasoning.ObjectInfo`);
* :func:`grasp_from_image` lifts an image rectangle back to a world grasp using the depth image;
* :func:`sample_scene` renders a random scene with all of the above (:class:`SceneSample`),
  optionally under a randomised look (:func:`scene_look`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import mujoco
import numpy as np

from embodied_transfer.grasp.reasoning import CATEGORY_TEXT, ObjectInfo
from embodied_transfer.grasp.rectangles import Grasp
from embodied_transfer.sim.errors import SimError
from embodied_transfer.sim.tabletop import (CAMERA, CATEGORIES, MAX_OBJECTS, TABLE_TOP,
                                            TabletopScene, build_model)
from embodied_transfer.sim.tabletop_camera import (Intrinsics, camera_intrinsics, camera_pose,
                                                   check_size, on_plane, project, render,
                                                   unproject)
from embodied_transfer.sim.tabletop_gripper import reset
from embodied_transfer.sim.tabletop_looks import Look, sample_image_size
from embodied_transfer.sim.tabletop_labels import WorldGrasp, grasp_z, world_grasps

assert set(CATEGORIES) <= set(CATEGORY_TEXT)     # the reasoning text can describe each object


def _to_image(grasps: list[WorldGrasp], pos, rot, k: Intrinsics) -> list[Grasp]:
    out = []
    for g in grasps:
        across = np.array([-g.axis[1], g.axis[0], 0.0])
        c = np.array([g.x, g.y, g.image_plane])
        pts = np.stack([c, c - g.axis * g.opening / 2, c + g.axis * g.opening / 2,
                        c - across * g.jaw / 2, c + across * g.jaw / 2])
        u, v, _ = project(pts, pos, rot, k)
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
        u, v, _ = project(np.array([obj.x, obj.y, TABLE_TOP + obj.height]), pos, rot, k)
        out.append(ObjectInfo(obj.name, obj.category, obj.colour, float(u), float(v)))
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
    rows, cols = grasp.sample_pixels(*depth.shape)
    surface = unproject(cols + 0.5, rows + 0.5, depth[rows, cols], pos, rot, intrinsics)
    top = max(float(surface[:, 2].max()), TABLE_TOP)
    offsets = np.array([[0.0, 0.0], -along * grasp.width / 2, along * grasp.width / 2,
                        -across * grasp.jaw / 2, across * grasp.jaw / 2])
    ends = on_plane(grasp.x + offsets[:, 0], grasp.y + offsets[:, 1], top, pos, rot, intrinsics)
    axis = ends[2] - ends[1]
    return WorldGrasp(float(ends[0, 0]), float(ends[0, 1]), TABLE_TOP + grasp_z(top - TABLE_TOP),
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


def scene_look(seed: int, n_objects: int) -> Look:
    """The random look of scene ``seed`` (its own stream: the same seed, the same look)."""
    return Look.sample(np.random.default_rng((seed, 1)), n_objects)


def scene_at_rest(seed: int, rng: np.random.Generator, n_objects: int | None,
                  randomise: bool):
    """Scene ``seed``'s objects (1..MAX_OBJECTS drawn from ``rng`` when ``n_objects`` is
    None), their model under the scene's look (``randomise``) and its data settled at rest:
    (scene, model, data)."""
    n = int(rng.integers(1, MAX_OBJECTS + 1)) if n_objects is None else n_objects
    look = scene_look(seed, n) if randomise else None
    scene = TabletopScene.sample(rng, n, look)
    model = build_model(scene, look=look)
    data = mujoco.MjData(model)
    reset(model, data)
    return scene, model, data


def sample_scene(seed: int, n_objects: int | None = None, width: int = 320,
                 height: int = 240, randomise: bool = False,
                 random_size: bool = True) -> SceneSample:
    """A random scene (1..MAX_OBJECTS objects when ``n_objects`` is None), rendered at rest;
    with ``randomise``, under a random look (:func:`scene_look`) and, with ``random_size``,
    at a random image size (:func:`~embodied_transfer.sim.tabletop_looks.sample_image_size`)."""
    check_size(width, height)
    if randomise and random_size:
        width, height = sample_image_size(np.random.default_rng((seed, 2)))
    scene, model, data = scene_at_rest(seed, np.random.default_rng(seed), n_objects, randomise)
    rgb, depth = render(model, data, width, height)
    return SceneSample(scene, rgb, depth, camera_intrinsics(model, width, height),
                       object_infos(model, scene, width, height),
                       image_grasps(model, scene, width, height))
