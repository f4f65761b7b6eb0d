"""QoS profiles used across the package (one place, so nodes agree with each other)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from rclpy.qos import (DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy,
                       qos_profile_sensor_data)

if TYPE_CHECKING:
    from rosbags.interfaces import Qos, QosTime

#: Sensor inputs (imu, uwb/range, image_raw, ...): best effort, keep last 5.
SENSOR_QOS = qos_profile_sensor_data

#: Sensor streams processed frame by frame, where every frame counts (the Real2Sim
#: converter's imu and uwb/range): best effort and volatile like sensor data, with a queue
#: deep enough for a replay's bursts (5 frames of 200 Hz IMU are 25 ms of executor time).
SENSOR_STREAM_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100,
                               reliability=ReliabilityPolicy.BEST_EFFORT,
                               durability=DurabilityPolicy.VOLATILE)

#: Outputs that controllers act on (grasps, phases, features): reliable, keep last 10.
RELIABLE_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10,
                          reliability=ReliabilityPolicy.RELIABLE,
                          durability=DurabilityPolicy.VOLATILE)

#: Bag replay and recording: reliable with a deep queue so bursts are not dropped.
BAG_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1000,
                     reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.VOLATILE)

#: /clock, as published by ros2 bag play and simulators.
CLOCK_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                       reliability=ReliabilityPolicy.BEST_EFFORT,
                       durability=DurabilityPolicy.VOLATILE)

#: /tf_static, as tf2_ros: reliable, transient local (latched), keep last 1 per publisher.
TF_STATIC_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                           reliability=ReliabilityPolicy.RELIABLE,
                           durability=DurabilityPolicy.TRANSIENT_LOCAL)

#: /tf, as tf2_ros' listener: reliable, volatile, a deep queue.
TF_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100,
                    reliability=ReliabilityPolicy.RELIABLE,
                    durability=DurabilityPolicy.VOLATILE)


# -- QoS in bags (rosbag2's offered_qos_profiles) -------------------------------------------

_MAX_SEC = 2**31 - 1          # rosbag2 writes "infinite" durations as (2^31 - 1, 2^32 - 1)


def _bag_time(duration) -> "QosTime":
    from rosbags.interfaces import QosTime

    sec, nsec = divmod(int(duration.nanoseconds), 1_000_000_000)
    return QosTime(_MAX_SEC, 2**32 - 1) if sec >= _MAX_SEC else QosTime(int(sec), int(nsec))


def to_bag_qos(profile: QoSProfile) -> "Qos":
    """A publisher's QoS (rclpy) as a rosbag2 offered profile (rosbags)."""
    from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability

    return Qos(QosHistory(int(profile.history)), int(profile.depth),
               QosReliability(int(profile.reliability)), QosDurability(int(profile.durability)),
               _bag_time(profile.deadline), _bag_time(profile.lifespan),
               QosLiveliness(int(profile.liveliness)),
               _bag_time(profile.liveliness_lease_duration),
               bool(profile.avoid_ros_namespace_conventions))


def _policy(value) -> int:
    """A policy's rmw number (rclpy's are IntEnums, rosbags' plain Enums)."""
    return int(getattr(value, "value", value))


def _all(values, wanted) -> bool:
    return bool(values) and all(v == wanted for v in values)


def replay_qos(offered) -> QoSProfile:
    """The QoS to replay (or record) a topic with, from its publishers' offered profiles, as
    ``ros2 bag`` adapts it: reliable only if every publisher was, transient local (latched,
    e.g. ``/tf_static``) only if every publisher was; :data:`BAG_QOS` without profiles.

    ``offered``: rosbags ``Qos`` tuples or rclpy ``QoSProfile`` objects."""
    reliability = [_policy(q.reliability) for q in offered]
    durability = [_policy(q.durability) for q in offered]
    if not offered:
        return BAG_QOS
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST, depth=BAG_QOS.depth,
        reliability=(ReliabilityPolicy.RELIABLE if _all(reliability, ReliabilityPolicy.RELIABLE)
                     else ReliabilityPolicy.BEST_EFFORT),
        durability=(DurabilityPolicy.TRANSIENT_LOCAL
                    if _all(durability, DurabilityPolicy.TRANSIENT_LOCAL)
                    else DurabilityPolicy.VOLATILE))
