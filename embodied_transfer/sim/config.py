"""Settings of the ``mujoco_bridge`` node: the one source of its parameters, its
``config/mujoco_bridge.yaml`` and its docs table (:mod:`embodied_transfer.core.config`)."""
from __future__ import annotations

from dataclasses import dataclass

from embodied_transfer.core.config import LifecycleSettings, duration, setting

SCENE_NAMES = ("squat", "tabletop")


@dataclass
class BridgeConfig(LifecycleSettings):
    """``mujoco_bridge``: a MuJoCo scene stepped in (scaled) real time, on ROS topics."""

    scene: str = setting("squat", "Scene to simulate: squat or tabletop", choices=SCENE_NAMES)
    seed: int = setting(0, "Seed of the scene (person and squats, or objects); ~/reset uses "
                           "the current value", low=0)
    real_time_factor: float = setting(1.0, "Sim seconds per wall second (2.0 = twice as "
                                           "fast)", low=0.0)
    # scene squat
    imu_rate_hz: float = setting(20.0, "Squat scene: IMU output rate; its period must be a "
                                       "multiple of the 2 ms physics step", unit="Hz",
                                 low=0.0)
    publish_clock: bool = setting(True, "Squat scene: publish sim time on /clock")
    imu_remove_gravity: bool = setting(
        False, "Squat scene: publish user acceleration (gravity removed, as the real watch's "
               "CSV holds it) instead of the accelerometer's specific force with gravity "
               "(REP-145, the default); the watch's orientation is published either way")
    imu_frame_id: str = setting("watch_imu", "Squat scene: frame of the watch IMU")
    uwb_frame_id: str = setting("uwb_phone", "Squat scene: frame of the UWB ranging")
    base_frame_id: str = setting("base_link", "Squat scene: frame of joint_states")
    # scene tabletop
    camera_rate_hz: float = setting(2.0, "Tabletop scene: camera frame rate", unit="Hz",
                                    low=0.0)
    image_width: int = setting(320, "Tabletop scene: camera image width", unit="px", low=1)
    image_height: int = setting(240, "Tabletop scene: camera image height", unit="px", low=1)
    camera_frame_id: str = setting("overhead_camera_optical_frame",
                                   "Tabletop scene: optical frame of the overhead camera "
                                   "(REP-105)")
    camera_link_frame_id: str = setting(
        "overhead_camera_link", "Tabletop scene: the camera's body frame (REP-103 axes), "
                                "parent of its optical frame on /tf_static")
    world_frame_id: str = setting(
        "world", "Tabletop scene: the fixed frame of the table, parent of the camera on "
                 "/tf_static, in which the gripper executes grasps")
    instruction_repeat_s: float = duration(
        20.0, "Tabletop scene: re-send the instruction after this long without a grasp")
