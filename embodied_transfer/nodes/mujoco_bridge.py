"""mujoco_bridge: the simulated squatter, stepped in (scaled) real time, on ROS topics.

Scene ``squat``: :class:`~embodied_transfer.sim.episode.LiveSquat` publishes, stamped
with sim time, ``imu`` (sensor_msgs/Imu, watch frame), ``uwb/range`` (sensor_msgs/Range,
at the UWB reading times), ``squat/phase_truth`` (SquatPhase), ``joint_states`` and
``/clock``. Services ``~/reset`` (std_srvs/Trigger) and ``~/pause`` (std_srvs/SetBool).
Sim time never runs backwards: a reset continues the clock where it was.

Lifecycle: configure builds the MuJoCo model (a bad scene fails the transition), activate
starts stepping, deactivate stops it, cleanup frees the model.
"""
from __future__ import annotations

import threading
import time

from embodied_transfer_interfaces.msg import SquatPhase
from rclpy.clock import Clock, ClockType
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn
from rosgraph_msgs.msg import Clock as ClockMsg
from sensor_msgs.msg import Imu, JointState, Range
from std_srvs.srv import SetBool, Trigger

from embodied_transfer.nodes.common import declare, run
from embodied_transfer.ros.conversions import make_header, numpy_to_imu, numpy_to_range
from embodied_transfer.ros.diagnostics import DiagnosticsPublisher, NodeHealth
from embodied_transfer.ros.qos import CLOCK_QOS, RELIABLE_QOS, SENSOR_QOS
from embodied_transfer.sim.errors import SimError
from embodied_transfer.sim.squat import JOINTS

SCENES = ("squat",)
MAX_CATCH_UP = 10      # frames stepped in one timer callback when behind real time


class MujocoBridge(LifecycleNode):
    """Steps a MuJoCo scene at ``real_time_factor`` and publishes its sensors."""

    def __init__(self, **kwargs) -> None:
        super().__init__("mujoco_bridge", **kwargs)
        self.scene = declare(self, "scene", "squat", f"Scene to simulate: {', '.join(SCENES)}")
        self.seed = declare(self, "seed", 0, "Seed of the person, the squats and sensor noise")
        self.rtf = declare(self, "real_time_factor", 1.0,
                           "Sim seconds per wall second (2.0 = twice as fast)")
        self.rate_hz = declare(self, "imu_rate_hz", 20.0,
                               "IMU output rate [Hz]; its period must be a multiple of 2 ms")
        self.publish_clock = declare(self, "publish_clock", True, "Publish sim time on /clock")
        self.remove_gravity = declare(
            self, "imu_remove_gravity", False,
            "Publish user acceleration (gravity removed, as the real watch reports) instead "
            "of the accelerometer's specific force (REP-145)")
        self.imu_frame = declare(self, "imu_frame_id", "watch_imu", "Frame of the watch IMU")
        self.uwb_frame = declare(self, "uwb_frame_id", "uwb_phone", "Frame of the UWB ranging")
        self.base_frame = declare(self, "base_frame_id", "base_link", "Frame of joint_states")
        self.health = NodeHealth("mujoco_bridge", needs_model=True)
        self.sim = None
        self._lock = threading.Lock()
        self._paused = False
        self._clock_offset = 0.0      # sim time before the last reset (s)
        self._timer = None
        self._diagnostics = None

    # --- lifecycle ---------------------------------------------------------------------
    def on_configure(self, state) -> TransitionCallbackReturn:
        from embodied_transfer.sim.episode import EpisodeConfig, LiveSquat

        if self.scene not in SCENES:
            self.get_logger().error(f"unknown scene '{self.scene}' (known: {', '.join(SCENES)})")
            return TransitionCallbackReturn.FAILURE
        if not self.rtf > 0 or not self.rate_hz > 0:
            self.get_logger().error(f"real_time_factor ({self.rtf}) and imu_rate_hz "
                                    f"({self.rate_hz}) must be > 0")
            return TransitionCallbackReturn.FAILURE
        try:
            self.sim = LiveSquat(self.seed, EpisodeConfig(frame_dt=1.0 / self.rate_hz))
        except SimError as exc:
            self.get_logger().error(f"cannot build scene '{self.scene}': {exc}")
            return TransitionCallbackReturn.FAILURE
        self.health.model_loaded = True
        self.health.model_info = f"scene {self.scene}, seed {self.seed}"
        self._pub_imu = self.create_publisher(Imu, "imu", SENSOR_QOS)
        self._pub_uwb = self.create_publisher(Range, "uwb/range", SENSOR_QOS)
        self._pub_phase = self.create_publisher(SquatPhase, "squat/phase_truth", RELIABLE_QOS)
        self._pub_joints = self.create_publisher(JointState, "joint_states", RELIABLE_QOS)
        self._pub_clock = (self.create_publisher(ClockMsg, "/clock", CLOCK_QOS)
                           if self.publish_clock else None)
        self._services = [self.create_service(Trigger, "~/reset", self._on_reset),
                          self.create_service(SetBool, "~/pause", self._on_pause)]
        self._diagnostics = DiagnosticsPublisher(self, self.health)
        self.get_logger().info(f"scene '{self.scene}' ready (seed {self.seed}, "
                               f"{self.rate_hz:g} Hz, real-time factor {self.rtf:g})")
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state) -> TransitionCallbackReturn:
        self._wall_start = time.monotonic()
        self._sim_start = self.sim.time
        self._timer = self.create_timer(1.0 / (self.rate_hz * self.rtf), self._tick,
                                        clock=Clock(clock_type=ClockType.STEADY_TIME))
        return super().on_activate(state)

    def on_deactivate(self, state) -> TransitionCallbackReturn:
        if self._timer is not None:
            self.destroy_timer(self._timer)
            self._timer = None
        return super().on_deactivate(state)

    def on_cleanup(self, state) -> TransitionCallbackReturn:
        if self._diagnostics is not None:
            self._diagnostics.destroy()
            self._diagnostics = None
        for pub in (self._pub_imu, self._pub_uwb, self._pub_phase, self._pub_joints,
                    self._pub_clock):
            if pub is not None:
                self.destroy_publisher(pub)
        for srv in self._services:
            self.destroy_service(srv)
        self.sim = None
        self.health.model_loaded = False
        return TransitionCallbackReturn.SUCCESS

    # --- stepping ----------------------------------------------------------------------
    def _tick(self) -> None:
        """Step as many frames as wall time asks for (at most MAX_CATCH_UP at once)."""
        with self._lock:
            if self._paused or self.sim is None:
                return
            due = (time.monotonic() - self._wall_start) * self.rtf - (self.sim.time - self._sim_start)
            for _ in range(min(MAX_CATCH_UP, max(1, int(due * self.rate_hz + 1e-6)))):
                start = time.perf_counter()
                self.health.input()
                try:
                    frame = self.sim.step_frame()
                except SimError as exc:
                    self.health.reject(str(exc))
                    self.get_logger().error(f"{exc}; resetting the scene")
                    self._reset_locked()
                    return
                self._publish(frame)
                self.health.output(time.perf_counter() - start)
            if due * self.rate_hz > MAX_CATCH_UP:       # cannot keep up: do not spiral
                self._wall_start = time.monotonic()
                self._sim_start = self.sim.time

    def _stamp_ns(self, t: float) -> int:
        return int(round((self._clock_offset + t) * 1e9))

    def _publish(self, frame) -> None:
        stamp = self._stamp_ns(frame.t)
        if self._pub_clock is not None:
            clock = ClockMsg()
            clock.clock = make_header(stamp).stamp
            self._pub_clock.publish(clock)
        accel = frame.accel - frame.gravity if self.remove_gravity else frame.accel
        self._pub_imu.publish(numpy_to_imu(accel, frame.gyro,
                                           header=make_header(stamp, self.imu_frame)))
        uwb = self.sim.config.uwb
        for t, value in frame.uwb:
            self._pub_uwb.publish(numpy_to_range(
                value, make_header(self._stamp_ns(t), self.uwb_frame),
                min_range=uwb.min_range, max_range=uwb.max_range, variance=uwb.noise ** 2))
        self._pub_phase.publish(SquatPhase(header=make_header(stamp, self.imu_frame),
                                           phase=frame.phase, confidence=1.0,
                                           rep_count=frame.reps))
        joints = JointState(header=make_header(stamp, self.base_frame), name=list(JOINTS),
                            position=frame.joint_positions.tolist(),
                            velocity=frame.joint_velocities.tolist())
        self._pub_joints.publish(joints)

    # --- services ----------------------------------------------------------------------
    def _reset_locked(self) -> None:
        """Start the scene again (seed: the parameter's current value), clock continuing."""
        self._clock_offset += self.sim.time
        self.sim.reset(self.get_parameter("seed").value)
        self._wall_start = time.monotonic()
        self._sim_start = 0.0

    def _on_reset(self, request, response):
        with self._lock:
            if self.sim is None:
                response.success, response.message = False, "not configured"
                return response
            self._reset_locked()
        response.success = True
        response.message = f"scene '{self.scene}' reset (seed {self.sim.seed})"
        return response

    def _on_pause(self, request, response):
        with self._lock:
            was = self._paused
            self._paused = bool(request.data)
            if was and not self._paused and self.sim is not None:
                self._wall_start = time.monotonic()
                self._sim_start = self.sim.time
        response.success = True
        response.message = "paused" if self._paused else "running"
        return response


def main(args=None) -> int:
    return run(lambda: MujocoBridge(), args)


if __name__ == "__main__":
    raise SystemExit(main())
