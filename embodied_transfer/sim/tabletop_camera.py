"""The tabletop's overhead RGB-D camera: intrinsics, pose, projections and rendering.

:func:`camera_intrinsics`, :func:`camera_pose` and :func:`camera_link_pose` describe a
camera of a built tabletop model (:mod:`embodied_transfer.sim.tabletop`); :func:`world_to_pixel` and
:func:`pixel_to_world` (and :func:`project`, :func:`unproject`, :func:`on_plane` for a pose
computed once) map between the world and the image; :func:`render` takes an RGB and a metric
depth image through a small cache of off-screen renderers.

Conventions: world REP-103 (x forward, y left, z up); the camera's optical frame REP-105
(z forward, x right, y down); continuous pixel coordinates (pixel column ``j`` covers
u ∈ [j, j + 1)) with the principal point at the image centre.

Rendering needs an off-screen OpenGL: the entry points set ``MUJOCO_GL=egl`` by default
(:func:`~embodied_transfer.core.runtime.configure_process`). mujoco reads it when first
imported; when mujoco was imported without it on a machine with no display (where its
default, GLFW, cannot work and a second try aborts the process), the first render
switches mujoco's off-screen context to EGL (see :func:`_headless_gl`).
"""
from __future__ import annotations

import math
import os
import sys
from collections import OrderedDict
from typing import NamedTuple

import mujoco
import numpy as np

from embodied_transfer.sim.errors import SimError
from embodied_transfer.sim.tabletop import CAMERA, GRIPPER_GROUP


# -- camera ---------------------------------------------------------------------------------


class Intrinsics(NamedTuple):
    """Pinhole intrinsics (px); continuous pixel coordinates."""

    fx: float
    fy: float
    cx: float
    cy: float


def check_size(width: int, height: int) -> None:
    """Raise :class:`SimError` unless width and height are positive integers (px)."""
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
    check_size(width, height)
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


#: The optical frame's axes (columns: x right, y down, z forward) in the camera body frame
#: (REP-103: x forward, y left, z up), as REP-105's <camera>_link → <camera>_optical_frame.
OPTICAL_IN_LINK = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])


def camera_link_pose(model: mujoco.MjModel, camera: str = CAMERA) -> tuple[np.ndarray, np.ndarray]:
    """World position and rotation of the camera's body frame (REP-103 axes: x along the
    view, z up the image), the parent of its optical frame (:data:`OPTICAL_IN_LINK`)."""
    pos, rot = camera_pose(model, camera)
    return pos, rot @ OPTICAL_IN_LINK.T


def world_to_pixel(points: np.ndarray, intrinsics: Intrinsics, model: mujoco.MjModel,
                   camera: str = CAMERA) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """World points (..., 3) → (u, v, depth): pixel coordinates, depth along the optical axis."""
    pos, rot = camera_pose(model, camera)
    return project(np.asarray(points, dtype=float), pos, rot, intrinsics)


def project(points, pos, rot, k: Intrinsics):
    """World points (..., 3) → (u, v, depth) for a camera pose from :func:`camera_pose`."""
    cam = (points - pos) @ rot          # optical-frame coordinates
    z = cam[..., 2]
    if np.any(z <= 0):
        raise SimError("a point to project lies behind the camera")
    return k.cx + k.fx * cam[..., 0] / z, k.cy + k.fy * cam[..., 1] / z, z


def pixel_to_world(u, v, depth_m, intrinsics: Intrinsics, model: mujoco.MjModel,
                   camera: str = CAMERA) -> np.ndarray:
    """Pixel coordinates with depth along the optical axis (m) → world points (..., 3)."""
    pos, rot = camera_pose(model, camera)
    return unproject(u, v, depth_m, pos, rot, intrinsics)


def unproject(u, v, depth, pos, rot, k: Intrinsics) -> np.ndarray:
    """Pixels with depth along the optical axis → world points, for a pose from
    :func:`camera_pose`."""
    u, v, depth = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in (u, v, depth)))
    cam = np.stack([(u - k.cx) / k.fx * depth, (v - k.cy) / k.fy * depth, depth], axis=-1)
    return cam @ rot.T + pos


def on_plane(u, v, z: float, pos, rot, k: Intrinsics) -> np.ndarray:
    """Where the rays through pixels (u, v) meet the horizontal plane at height z."""
    ray = unproject(u, v, 1.0, pos, rot, k) - pos       # world direction at depth 1
    if np.any(ray[..., 2] >= 0):
        raise SimError("a pixel's ray does not reach the table (the camera must look down)")
    return unproject(u, v, (z - pos[2]) / ray[..., 2], pos, rot, k)


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
    check_size(width, height)
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

