"""QoS profiles used across the package (one place, so nodes agree with each other)."""
from __future__ import annotations

from rclpy.qos import (DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy,
                       qos_profile_sensor_data)

#: Sensor inputs (imu, uwb/range, image_raw, ...): best effort, keep last 5.
SENSOR_QOS = qos_profile_sensor_data

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
