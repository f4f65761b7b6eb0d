"""QoS profiles used across the package (one place, so nodes agree with each other)."""
from __future__ import annotations

from rclpy.qos import (DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy,
                       qos_profile_sensor_data)

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
