"""The ROS side of each mujoco_bridge scene: what it publishes, subscribes and how it steps.

A scene object is made by :class:`~embodied_transfer.nodes.mujoco_bridge.MujocoBridge` in
configure, driven by its timer (``tick`` every ``period_s`` of wall time divided by the
real-time factor) under the bridge's lock, reset by ``~/reset`` and destroyed in cleanup.
"""
from __future__ import annotations

import concurrent.futures
import time

import numpy as np

from rosgraph_msgs.msg import Clock as ClockMsg

from embodied_transfer.nodes.common import destroy_entities
from embodied_transfer.ros.conversions import make_header, numpy_to_imu, numpy_to_range
from embodied_transfer.ros.qos import CLOCK_QOS, RELIABLE_QOS, SENSOR_QOS, TF_STATIC_QOS
from embodied_transfer.sim.errors import SimError

MAX_CATCH_UP = 10      # frames stepped in one timer callback when behind real time


class SceneIO:
    """Base: the bridge node, the entities to destroy, and the interface the node drives."""

    period_s = 0.05

    def __init__(self, node) -> None:
        self.node = node
        self.entities: list = []
        self.sim = None

    def configure(self, seed: int) -> None:
        """Build the simulation and the topics; raise SimError if the scene cannot be built."""
        raise NotImplementedError

    def start(self) -> None:
        """Activation: stepping starts now."""

    def tick(self) -> None:
        """One timer callback (the node's lock is held)."""
        raise NotImplementedError

    def reset(self, seed: int) -> str:
        """Start again with ``seed``; returns a description for the service response."""
        raise NotImplementedError

    def destroy(self) -> None:
        destroy_entities(self.node, self.entities)
        self.entities = []
        self.sim = None


class SquatIO(SceneIO):
    """Scene ``squat``: the squatting humanoid's watch IMU, UWB, phase truth and joints.

    Publishes, stamped with sim time, ``imu`` (watch frame), ``uwb/range`` (at the UWB
    reading times), ``squat/phase_truth``, ``joint_states`` and ``/clock``. Sim time never
    runs backwards: a reset continues the clock where it was.
    """

    def configure(self, seed: int) -> None:
        from embodied_transfer_interfaces.msg import SquatPhase
        from sensor_msgs.msg import Imu, JointState, Range

        from embodied_transfer.sim.episode import EpisodeConfig, LiveSquat

        c = self.node.config
        self.rate_hz = c.imu_rate_hz
        if not self.rate_hz > 0:
            raise SimError(f"imu_rate_hz ({self.rate_hz}) must be > 0")
        self.period_s = 1.0 / self.rate_hz
        self.remove_gravity = c.imu_remove_gravity
        self.frames = {"imu": c.imu_frame_id, "uwb": c.uwb_frame_id, "base": c.base_frame_id}
        self.sim = LiveSquat(seed, EpisodeConfig(frame_dt=self.period_s))
        self._clock_offset = 0.0      # sim time before the last reset (s)
        n = self.node
        self.pub_imu = n.create_lifecycle_publisher(Imu, "imu", SENSOR_QOS)
        self.pub_uwb = n.create_lifecycle_publisher(Range, "uwb/range", SENSOR_QOS)
        self.pub_phase = n.create_lifecycle_publisher(SquatPhase, "squat/phase_truth", RELIABLE_QOS)
        self.pub_joints = n.create_lifecycle_publisher(JointState, "joint_states", RELIABLE_QOS)
        self.pub_clock = (n.create_lifecycle_publisher(ClockMsg, "/clock", CLOCK_QOS)
                          if c.publish_clock else None)
        self.entities = [e for e in (self.pub_imu, self.pub_uwb, self.pub_phase,
                                     self.pub_joints, self.pub_clock) if e is not None]
        self._squat_phase, self._joint_state = SquatPhase, JointState

    def start(self) -> None:
        self._wall_start = time.monotonic()
        self._sim_start = self.sim.time

    def tick(self) -> None:
        """Step as many frames as wall time asks for (at most MAX_CATCH_UP at once)."""
        rtf, health = self.node.config.real_time_factor, self.node.health
        due = (time.monotonic() - self._wall_start) * rtf - (self.sim.time - self._sim_start)
        for _ in range(min(MAX_CATCH_UP, max(1, int(due * self.rate_hz + 1e-6)))):
            start = time.perf_counter()
            health.input()
            try:
                frame = self.sim.step_frame()
            except SimError as exc:
                health.reject(str(exc))
                self.node.get_logger().error(f"{exc}; resetting the scene")
                self.reset(self.sim.seed)
                return
            self._publish(frame)
            health.output(time.perf_counter() - start)
        if due * self.rate_hz > MAX_CATCH_UP:       # cannot keep up: do not spiral
            self.start()

    def _stamp_ns(self, t: float) -> int:
        return int(round((self._clock_offset + t) * 1e9))

    def _publish(self, frame) -> None:
        from embodied_transfer.sim.squat import JOINTS

        stamp = self._stamp_ns(frame.t)
        if self.pub_clock is not None:
            clock = ClockMsg()
            clock.clock = make_header(stamp).stamp
            self.pub_clock.publish(clock)
        accel = frame.accel - frame.gravity if self.remove_gravity else frame.accel
        w, x, y, z = frame.orientation
        self.pub_imu.publish(numpy_to_imu(accel, frame.gyro, orientation=(x, y, z, w),
                                          header=make_header(stamp, self.frames["imu"])))
        uwb = self.sim.config.uwb
        for t, value in frame.uwb:
            self.pub_uwb.publish(numpy_to_range(
                value, make_header(self._stamp_ns(t), self.frames["uwb"]),
                min_range=uwb.min_range, max_range=uwb.max_range, variance=uwb.noise ** 2))
        self.pub_phase.publish(self._squat_phase(header=make_header(stamp, self.frames["imu"]),
                                                 phase=frame.phase, confidence=1.0,
                                                 rep_count=frame.reps))
        self.pub_joints.publish(self._joint_state(
            header=make_header(stamp, self.frames["base"]), name=list(JOINTS),
            position=frame.joint_positions.tolist(), velocity=frame.joint_velocities.tolist()))

    def reset(self, seed: int) -> str:
        self._clock_offset += self.sim.time
        self.sim.reset(seed)
        self._wall_start = time.monotonic()
        self._sim_start = 0.0
        return f"scene 'squat' reset (seed {self.sim.seed})"


class TabletopIO(SceneIO):
    """Scene ``tabletop``: an overhead RGB-D camera, an instruction, grasps executed.

    Publishes ``image_raw`` (rgb8), ``depth`` (32FC1, m), ``camera_info`` at
    ``camera_rate_hz`` (wall-clock stamps, the camera's optical frame), the camera's frames
    on ``/tf_static`` (world → camera link → optical frame, sent again when a scene moves the
    camera) and, once per scene from its second image on (so listeners hold an image of
    it), ``instruction`` naming a random object (re-sent every ``instruction_repeat_s`` until
    a grasp arrives). Each ``grasp_3d`` (Grasp3D, in any frame TF connects to the world) is
    transformed to the world through TF, as a real controller does, executed on a worker
    thread (pre-grasp, approach, close, lift) and answered on ``grasp_outcome``; then the
    next scene is drawn.
    """

    def configure(self, seed: int) -> None:
        from embodied_transfer_interfaces.msg import Grasp3D, GraspOutcome
        from sensor_msgs.msg import CameraInfo, Image
        from std_msgs.msg import String
        from tf2_msgs.msg import TFMessage

        from embodied_transfer.grasp.tabletop_task import LiveTabletop
        from embodied_transfer.ros.tf import StaticBroadcaster, TfListener

        c = self.node.config
        rate = c.camera_rate_hz
        if not rate > 0:
            raise SimError(f"camera_rate_hz ({rate}) must be > 0")
        self.period_s = 1.0 / rate
        self.frame_id = c.camera_frame_id
        self.frames = (c.world_frame_id, c.camera_link_frame_id, c.camera_frame_id)
        if len(set(self.frames)) != 3 or not all(self.frames):
            raise SimError(f"world_frame_id, camera_link_frame_id and camera_frame_id must be "
                           f"three different names, got {self.frames}")
        self.repeat_s = c.instruction_repeat_s
        self.sim = LiveTabletop(seed, c.image_width, c.image_height)
        n = self.node
        self.pub_image = n.create_lifecycle_publisher(Image, "image_raw", SENSOR_QOS)
        self.pub_depth = n.create_lifecycle_publisher(Image, "depth", SENSOR_QOS)
        self.pub_info = n.create_lifecycle_publisher(CameraInfo, "camera_info", SENSOR_QOS)
        self.pub_instruction = n.create_lifecycle_publisher(String, "instruction", RELIABLE_QOS)
        self.pub_outcome = n.create_lifecycle_publisher(GraspOutcome, "grasp_outcome", RELIABLE_QOS)
        self.tf_static = StaticBroadcaster(n, n.create_lifecycle_publisher(
            TFMessage, "/tf_static", TF_STATIC_QOS))
        self.tf = TfListener(n)
        self.entities = [self.pub_image, self.pub_depth, self.pub_info, self.pub_instruction,
                         self.pub_outcome, self.tf_static.publisher, *self.tf.subscriptions,
                         n.create_subscription(Grasp3D, "grasp_3d", self._on_grasp,
                                               RELIABLE_QOS)]
        self._msgs = {"String": String, "GraspOutcome": GraspOutcome}
        self._worker = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="gripper")
        self._executing = False
        self._instruction_sent = -1.0
        self._images = 0                # images of the current scene published so far
        self.outcomes: list = []

    def start(self) -> None:
        self._send_camera_frames()

    def _send_camera_frames(self) -> None:
        """The current scene's camera on /tf_static (a randomised look may move it)."""
        from embodied_transfer.ros.tf import Transform
        from embodied_transfer.sim.tabletop_camera import OPTICAL_IN_LINK

        world, link, optical = self.frames
        stamp = self.node.get_clock().now().nanoseconds
        pos, rot = self.sim.camera_link_pose()
        self.tf_static.send([Transform(world, link, rot, pos, stamp),
                             Transform(link, optical, OPTICAL_IN_LINK, np.zeros(3), stamp)])

    def tick(self) -> None:
        from embodied_transfer.ros.conversions import intrinsics_to_camera_info, numpy_to_image

        if self._executing:
            return
        start = time.perf_counter()
        self.node.health.input()
        obs = self.sim.observe()
        header = make_header(self.node.get_clock().now().nanoseconds, self.frame_id)
        k = obs.intrinsics
        self.pub_image.publish(numpy_to_image(obs.rgb, "rgb8", header))
        self.pub_depth.publish(numpy_to_image(obs.depth, "32FC1", header))
        self.pub_info.publish(intrinsics_to_camera_info(
            [[k.fx, 0.0, k.cx], [0.0, k.fy, k.cy], [0.0, 0.0, 1.0]], obs.rgb.shape[1],
            obs.rgb.shape[0], header=header))
        self._images += 1
        now = time.monotonic()
        # from the scene's second image on, so a listener has this scene's image already
        if self._images >= 2 and self.pub_instruction.get_subscription_count() and \
                (self._instruction_sent < 0 or now - self._instruction_sent > self.repeat_s):
            self.pub_instruction.publish(self._msgs["String"](data=self.sim.instruction))
            self._instruction_sent = now
        self.node.health.output(time.perf_counter() - start)

    def _on_grasp(self, msg) -> None:
        from embodied_transfer.ros.conversions import ConversionError
        from embodied_transfer.ros.grasp_msgs import msg_to_grasp_3d

        with self.node.lock:
            if self._executing or self.sim is None:
                self.node.health.reject("grasp arrived while another was executing; ignored")
                return
            try:       # the grasp in the world frame, through TF (as a controller does)
                grasp = msg_to_grasp_3d(msg).transformed(
                    *self.tf.lookup(self.frames[0], msg.header.frame_id))
            except ConversionError as exc:       # TransformError included
                self.node.health.reject(f"grasp not executed: {exc}")
                self.node.get_logger().warning(f"grasp not executed: {exc}")
                return
            self._executing = True
        self._worker.submit(self._execute, msg, grasp)

    def _execute(self, msg, grasp) -> None:
        outcome = self._msgs["GraspOutcome"](header=msg.header, target=self.sim.target.name)
        try:
            result = self.sim.execute_3d(grasp)
            outcome.success = bool(result.success and result.lifted == self.sim.target.name)
            outcome.lifted, outcome.lift_height = result.lifted or "", result.lift_height
            outcome.message = result.reason
        except SimError as exc:
            outcome.message = f"not executable: {exc}"
        with self.node.lock:
            self.outcomes.append(outcome.success)
            self.pub_outcome.publish(outcome)
            self.node.get_logger().info(
                f"grasp on '{outcome.target}': {'success' if outcome.success else 'failure'} "
                f"({outcome.message})")
            self._next()
            self._executing = False

    def _next(self, seed: int | None = None) -> None:
        self.sim.next_scene(seed)
        self._instruction_sent = -1.0
        self._images = 0
        if self.node.active:
            self._send_camera_frames()

    def reset(self, seed: int) -> str:
        self._next(seed)
        return f"scene 'tabletop' reset (seed {seed}): '{self.sim.instruction}'"

    def extra(self) -> list[tuple[str, str]]:
        done = len(self.outcomes)
        return [("grasps_executed", str(done)),
                ("grasp_success_rate", f"{sum(self.outcomes) / done:.3f}" if done else "n/a")]

    def destroy(self) -> None:
        self._worker.shutdown(wait=True)
        super().destroy()


SCENES = {"squat": SquatIO, "tabletop": TabletopIO}
