"""TF for the package's nodes: broadcast static frames, look transforms up along the tree.

tf2_ros is not among the ROS 2 wheels this package can be installed from, so this module
covers what the nodes use of it, with the same topics, QoS and message (tf2_msgs/TFMessage):

* :class:`StaticBroadcaster`: like tf2_ros' StaticTransformBroadcaster, one latched
  (transient local, reliable) ``/tf_static`` message holding every static transform the node
  has sent (a later transform of the same child frame replaces the earlier one);
* :class:`TransformTree` (pure): the latest transform of each child frame, and
  :meth:`~TransformTree.lookup` along the tree (no time interpolation: the latest of each);
* :class:`TfListener`: fills a tree from ``/tf_static`` and ``/tf``.

Transforms are (rotation 3x3, translation 3): ``lookup(target, source)`` maps a point ``p``
given in ``source`` to ``rotation @ p + translation`` in ``target``, as tf2's
``lookup_transform(target_frame, source_frame)``.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
from geometry_msgs.msg import TransformStamped

from embodied_transfer.core.geometry import matrix_from_quaternion, quaternion_from_matrix
from embodied_transfer.ros.conversions import ConversionError, make_header, stamp_to_ns
from embodied_transfer.ros.qos import TF_QOS, TF_STATIC_QOS


class TransformError(ConversionError):
    """A transform cannot be looked up (unknown or unconnected frames, bad values)."""


@dataclass(frozen=True)
class Transform:
    """``child`` expressed in ``parent``: p_parent = rotation @ p_child + translation."""

    parent: str
    child: str
    rotation: np.ndarray
    translation: np.ndarray
    stamp_ns: int = 0

    def to_msg(self) -> TransformStamped:
        msg = TransformStamped(header=make_header(self.stamp_ns, self.parent),
                               child_frame_id=self.child)
        t, q = msg.transform.translation, msg.transform.rotation
        t.x, t.y, t.z = (float(v) for v in self.translation)
        q.x, q.y, q.z, q.w = quaternion_from_matrix(self.rotation)
        return msg

    @classmethod
    def from_msg(cls, msg: TransformStamped) -> "Transform":
        t, q = msg.transform.translation, msg.transform.rotation
        translation = np.array([t.x, t.y, t.z], dtype=float)
        if not msg.header.frame_id or not msg.child_frame_id \
                or msg.header.frame_id == msg.child_frame_id:
            raise TransformError(f"transform '{msg.header.frame_id}' -> "
                                 f"'{msg.child_frame_id}' needs two different frame names")
        try:
            rotation = matrix_from_quaternion((q.x, q.y, q.z, q.w))
        except ValueError as exc:
            raise TransformError(f"transform '{msg.header.frame_id}' -> "
                                 f"'{msg.child_frame_id}': {exc}") from None
        if not np.all(np.isfinite(translation)):
            raise TransformError(f"transform '{msg.header.frame_id}' -> "
                                 f"'{msg.child_frame_id}' has a non-finite translation")
        return cls(msg.header.frame_id, msg.child_frame_id, rotation, translation,
                   stamp_to_ns(msg.header.stamp))


class TransformTree:
    """The latest transform of each child frame; lookups between any two connected frames."""

    def __init__(self) -> None:
        self._parent: dict[str, Transform] = {}      # child → its transform from the parent

    def set(self, transform: Transform) -> None:
        self._parent[transform.child] = transform

    def frames(self) -> set[str]:
        return set(self._parent) | {t.parent for t in self._parent.values()}

    def _to_root(self, frame: str) -> tuple[list[str], np.ndarray, np.ndarray]:
        """Frames from ``frame`` up to its root, and ``frame`` expressed in the root."""
        chain, rot, trans = [frame], np.eye(3), np.zeros(3)
        while chain[-1] in self._parent:
            t = self._parent[chain[-1]]
            rot, trans = t.rotation @ rot, t.rotation @ trans + t.translation
            if t.parent in chain:
                raise TransformError(f"the TF tree has a loop through '{t.parent}'")
            chain.append(t.parent)
        return chain, rot, trans

    def lookup(self, target: str, source: str) -> tuple[np.ndarray, np.ndarray]:
        """(rotation, translation) taking points in ``source`` to ``target``."""
        for frame in (target, source):
            if frame not in self.frames():
                known = ", ".join(sorted(self.frames())) or "none yet"
                raise TransformError(f"frame '{frame}' is not in the TF tree (known: {known})")
        s_chain, s_rot, s_trans = self._to_root(source)
        t_chain, t_rot, t_trans = self._to_root(target)
        if s_chain[-1] != t_chain[-1]:
            raise TransformError(f"frames '{target}' and '{source}' are not connected (roots "
                                 f"'{t_chain[-1]}' and '{s_chain[-1]}')")
        # root ← source, then target ← root (the inverse of root ← target)
        return t_rot.T @ s_rot, t_rot.T @ (s_trans - t_trans)


class TfListener:
    """Keeps a :class:`TransformTree` filled from ``/tf_static`` and ``/tf`` (any thread)."""

    def __init__(self, node) -> None:
        from tf2_msgs.msg import TFMessage

        self.tree = TransformTree()
        self._lock = threading.Lock()
        self._node = node
        self.subscriptions = [
            node.create_subscription(TFMessage, "/tf_static", self._on_tf, TF_STATIC_QOS),
            node.create_subscription(TFMessage, "/tf", self._on_tf, TF_QOS)]

    def _on_tf(self, msg) -> None:
        for t in msg.transforms:
            try:
                transform = Transform.from_msg(t)
            except TransformError as exc:
                self._node.get_logger().warning(f"TF ignored: {exc}",
                                                throttle_duration_sec=5.0)
                continue
            with self._lock:
                self.tree.set(transform)

    def lookup(self, target: str, source: str) -> tuple[np.ndarray, np.ndarray]:
        with self._lock:
            return self.tree.lookup(target, source)


class StaticBroadcaster:
    """Publishes every static transform sent so far in one latched ``/tf_static`` message."""

    def __init__(self, node, publisher=None) -> None:
        from tf2_msgs.msg import TFMessage

        self._msg_type = TFMessage
        self.publisher = publisher or node.create_publisher(TFMessage, "/tf_static",
                                                            TF_STATIC_QOS)
        self._sent: dict[str, TransformStamped] = {}

    def send(self, transforms: list[Transform]) -> None:
        for t in transforms:
            self._sent[t.child] = t.to_msg()
        self.publisher.publish(self._msg_type(transforms=list(self._sent.values())))
