"""Grasp messages ↔ the grasp capability's types (embodied_transfer_interfaces)."""
from __future__ import annotations

import math

import numpy as np
from embodied_transfer_interfaces.msg import Grasp3D as Grasp3DMsg
from geometry_msgs.msg import Pose
from std_msgs.msg import Header

from embodied_transfer.core.geometry import matrix_from_quaternion
from embodied_transfer.grasp.geometry import Grasp3D
from embodied_transfer.ros.conversions import ConversionError


def grasp_3d_to_msg(grasp: Grasp3D, header: Header) -> Grasp3DMsg:
    """A :class:`~embodied_transfer.grasp.geometry.Grasp3D` as a message in ``header``'s frame."""
    return Grasp3DMsg(header=header, pose=_pose(grasp), width=float(grasp.width),
                      standoff=float(grasp.standoff), score=float(grasp.score))


def _pose(grasp: Grasp3D) -> Pose:
    pose = Pose()
    pose.position.x, pose.position.y, pose.position.z = (float(v) for v in grasp.position)
    o = pose.orientation
    o.x, o.y, o.z, o.w = grasp.orientation
    return pose


def msg_to_grasp_3d(msg: Grasp3DMsg) -> Grasp3D:
    """A received Grasp3D message, checked: finite pose, unit-able quaternion, width > 0,
    standoff >= 0, a frame named (:class:`ConversionError` says what is wrong)."""
    if not msg.header.frame_id:
        raise ConversionError("grasp has no header.frame_id")
    p, q = msg.pose.position, msg.pose.orientation
    position = np.array([p.x, p.y, p.z], dtype=float)
    if not np.all(np.isfinite(position)):
        raise ConversionError(f"grasp position {position.tolist()} is not finite")
    norm = math.sqrt(q.x ** 2 + q.y ** 2 + q.z ** 2 + q.w ** 2)
    if not math.isfinite(norm) or abs(norm - 1.0) > 1e-3:
        raise ConversionError(f"grasp orientation ({q.x}, {q.y}, {q.z}, {q.w}) is not a unit "
                              "quaternion")
    if not (math.isfinite(msg.width) and msg.width > 0):
        raise ConversionError(f"grasp width {msg.width} must be > 0 (m)")
    if not (math.isfinite(msg.standoff) and msg.standoff >= 0):
        raise ConversionError(f"grasp standoff {msg.standoff} must be >= 0 (m)")
    return Grasp3D(position, matrix_from_quaternion((q.x, q.y, q.z, q.w)), float(msg.width),
                   float(msg.standoff), float(msg.score))
