"""grasp_reasoning: a camera image and an instruction in, one antipodal grasp out.

Subscribes ``image_raw`` (rgb8/bgr8/mono8), optional ``depth`` (32FC1 m or 16UC1 mm, aligned
with the colour image) and ``camera_info`` (all sensor QoS), and ``instruction``
(std_msgs/String, reliable). Each instruction is answered once, on the newest image (or
the next one if none has arrived); with ``continuous`` every image is answered while an
instruction is set, images that arrive during inference being counted as skipped.

Publishes ``grasp`` (GraspPose: the rectangle in the image; the image's header),
``grasp_3d`` (Grasp3D: the gripper pose a controller executes, in the image's optical frame,
with the jaw opening and pre-grasp standoff in metres; only when a depth image of the same
size and CameraInfo are present), ``grasp_pose`` (geometry_msgs/PoseStamped: the same pose,
for RViz) and ``grasp_image`` (the image with the grasp drawn). Serves ``plan_grasp``
(PlanGrasp.srv; its response carries both grasps). Inference runs on a worker thread; the
service callback is a coroutine that awaits it, so the executor keeps serving topics and
other requests.

Bad input (empty or unsupported images, depth/colour size mismatch, uncalibrated or missing
CameraInfo, empty instruction) and unparseable model output publish nothing on ``grasp``,
are counted per reason on /diagnostics, and the raw text is logged. The node stays up.

Lifecycle: configure loads the backend (a missing model fails the transition with the
reason), activate starts answering, cleanup frees the model.
"""
from __future__ import annotations

import concurrent.futures
import time

import numpy as np
from embodied_transfer_interfaces.msg import Grasp3D, GraspPose
from embodied_transfer_interfaces.srv import PlanGrasp
from geometry_msgs.msg import PoseStamped
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.task import Future
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import String

from embodied_transfer.grasp.config import GraspNodeConfig, parse_workspace
from embodied_transfer.grasp.errors import GraspError
from embodied_transfer.nodes.common import DIAGNOSTICS, Endpoint, Interface, run
from embodied_transfer.nodes.lifecycle import ManagedNode
from embodied_transfer.ros.conversions import (ConversionError, camera_info_to_intrinsics,
                                               convert_color, image_to_numpy, numpy_to_image,
                                               stamp_to_ns)
from embodied_transfer.ros.grasp_msgs import grasp_3d_to_msg
from embodied_transfer.ros.qos import RELIABLE_QOS, SENSOR_QOS


def decode_colour(msg: Image) -> np.ndarray:
    """A colour ``Image`` as (H, W, 3) uint8 RGB; mono8 is replicated."""
    if msg.width == 0 or msg.height == 0:
        raise ConversionError(f"colour image is empty ({msg.width}x{msg.height})")
    if msg.encoding not in ("rgb8", "bgr8", "mono8"):
        raise ConversionError(f"colour image encoding {msg.encoding!r} is not rgb8, bgr8 "
                              "or mono8")
    array = image_to_numpy(msg)
    return array if msg.encoding == "rgb8" else convert_color(array, msg.encoding, "rgb8")


def decode_depth(msg: Image) -> np.ndarray:
    """A depth ``Image`` as float32 metres (16UC1 millimetres are scaled; 0 = no reading)."""
    if msg.encoding not in ("32FC1", "16UC1"):
        raise ConversionError(f"depth encoding {msg.encoding!r} is not 32FC1 (m) or 16UC1 (mm)")
    array = image_to_numpy(msg)
    return array.astype(np.float32) / 1000.0 if msg.encoding == "16UC1" else array


class GraspReasoning(ManagedNode):
    """Runs a grasp backend on camera images as instructed (see the module docstring)."""

    CONFIG = GraspNodeConfig
    INTERFACE = Interface(
        subscribes=(Endpoint("image_raw", "sensor_msgs/Image"),
                    Endpoint("depth", "sensor_msgs/Image"),
                    Endpoint("camera_info", "sensor_msgs/CameraInfo"),
                    Endpoint("instruction", "std_msgs/String")),
        publishes=(Endpoint("grasp", "embodied_transfer_interfaces/GraspPose"),
                   Endpoint("grasp_3d", "embodied_transfer_interfaces/Grasp3D"),
                   Endpoint("grasp_pose", "geometry_msgs/PoseStamped"),
                   Endpoint("grasp_image", "sensor_msgs/Image"), DIAGNOSTICS),
        services=(Endpoint("plan_grasp", "embodied_transfer_interfaces/PlanGrasp"),))

    def __init__(self, **kwargs) -> None:
        super().__init__("grasp_reasoning", **kwargs)
        self.backend = None
        self._worker = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="grasp")
        self._busy = False
        self._reset_inputs()

    def _reset_inputs(self) -> None:
        self._image: Image | None = None
        self._depth: Image | None = None
        self._info: CameraInfo | None = None
        self._instruction = ""
        self._pending_instruction = False
        self._skipped = 0

    def _extra_values(self) -> list[tuple[str, str]]:
        backend = self.config.backend if self.config else ""
        return [("backend", backend), ("busy", str(self._busy).lower()),
                ("images_skipped_busy", str(self._skipped)), *super()._extra_values()]

    # --- lifecycle ---------------------------------------------------------------------
    def _load(self, config: GraspNodeConfig) -> list:
        from embodied_transfer.grasp.backends import load_backend

        try:
            self.backend = load_backend(config.backend, config.model_path,
                                        adapter=config.adapter_path,
                                        allow_download=config.allow_download,
                                        max_new_tokens=config.max_new_tokens,
                                        decoding=config.decoding, views=config.views or None,
                                        refine=config.refine,
                                        refine_model=config.refine_model_path,
                                        refine_radius_px=config.refine_radius_px,
                                        workspace=parse_workspace(config.workspace))
        except GraspError as exc:
            raise GraspError(f"cannot load grasp backend '{config.backend}': {exc}") from None
        self.health.model_info = f"{config.backend} {config.model_path or '(shipped)'}"
        self._pub_grasp = self.create_lifecycle_publisher(GraspPose, "grasp", RELIABLE_QOS)
        self._pub_3d = self.create_lifecycle_publisher(Grasp3D, "grasp_3d", RELIABLE_QOS)
        self._pub_pose = self.create_lifecycle_publisher(PoseStamped, "grasp_pose", RELIABLE_QOS)
        self._pub_image = self.create_lifecycle_publisher(Image, "grasp_image", RELIABLE_QOS)
        return [
            self._pub_grasp, self._pub_3d, self._pub_pose, self._pub_image,
            self.create_subscription(Image, "image_raw", self._on_image, SENSOR_QOS),
            self.create_subscription(Image, "depth", self._on_depth, SENSOR_QOS),
            self.create_subscription(CameraInfo, "camera_info", self._on_info, SENSOR_QOS),
            self.create_subscription(String, "instruction", self._on_instruction, RELIABLE_QOS),
            self.create_service(PlanGrasp, "plan_grasp", self._on_plan_grasp)]

    def on_cleanup(self, state) -> TransitionCallbackReturn:
        self._active = False
        self._worker.shutdown(wait=True)
        self._worker = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="grasp")
        return super().on_cleanup(state)

    def _release(self) -> None:
        if self.backend is not None:
            self.backend.close()
            self.backend = None
        self._reset_inputs()

    def destroy_node(self) -> None:
        self._worker.shutdown(wait=True)
        super().destroy_node()

    # --- inputs ------------------------------------------------------------------------
    def _on_image(self, msg: Image) -> None:
        if not self._active:
            return
        self.health.input()
        with self._lock:
            self._image = msg
            start = self._instruction and (self._pending_instruction
                                           or self.config.continuous)
            if start and self._busy:
                self._skipped += 1
                start = False
            if start:
                self._pending_instruction = False
                self._busy = True
                request = (msg, self._matching_depth(msg), self._info, self._instruction)
        if start:
            self._worker.submit(self._answer_topic, *request)

    def _on_depth(self, msg: Image) -> None:
        with self._lock:
            self._depth = msg

    def _on_info(self, msg: CameraInfo) -> None:
        with self._lock:
            self._info = msg

    def _on_instruction(self, msg: String) -> None:
        if not self._active:
            return
        text = msg.data.strip()
        if not text:
            self._reject("empty_instruction", "an empty instruction was ignored")
            return
        with self._lock:
            self._instruction = text
            image = self._image
            if image is None or self._busy:
                self._pending_instruction = True      # answered on the next image
                return
            self._busy = True
            request = (image, self._matching_depth(image), self._info, text)
        self._worker.submit(self._answer_topic, *request)

    def _matching_depth(self, image: Image) -> Image | None:
        """The newest depth image if its stamp is within ``max_depth_skew_s`` of ``image``."""
        if self._depth is None:
            return None
        skew = abs(stamp_to_ns(self._depth.header.stamp) - stamp_to_ns(image.header.stamp))
        return self._depth if skew <= self.config.max_depth_skew_s * 1e9 else None

    # --- inference ---------------------------------------------------------------------
    def _plan(self, image: Image, depth: Image | None, info: CameraInfo | None,
              instruction: str) -> tuple[GraspPose | None, Grasp3D | None, str]:
        """Run the backend; (grasp, 3-D grasp or None, message). Thread: the worker."""
        from embodied_transfer.grasp.geometry import annotate, check_inputs, grasp_3d

        start = time.perf_counter()
        try:
            rgb = decode_colour(image)
            depth_m = decode_depth(depth) if depth is not None and depth.width else None
            check_inputs(rgb, depth_m, instruction, self.backend.uses_instruction)
            prediction = self.backend.predict(rgb, depth_m, instruction)
        except (ConversionError, GraspError) as exc:
            self._reject("bad_input", str(exc))
            return None, None, str(exc)
        if prediction.grasp is None:
            self._reject("no_grasp", prediction.error or "backend gave no grasp")
            self.get_logger().warning(f"no grasp for '{instruction}': {prediction.error}; "
                                      f"raw answer: {prediction.text!r}")
            return None, None, f"no grasp: {prediction.error}; raw answer: {prediction.text!r}"
        g = prediction.grasp
        msg = GraspPose(header=image.header, x=g.x, y=g.y, theta=g.theta, width=g.width,
                        score=float(prediction.score), reasoning=prediction.reasoning)
        pose, note = None, ""
        if prediction.extra.get("refined") is False:    # refine asked for, not possible
            why = prediction.extra.get("not_refined", "")
            self._reject("not_refined", f"the text backend's own grasp is published ({why})")
            note = f"; not refined: {why}"
        if depth_m is not None and info is not None and info.width:
            try:
                k = camera_info_to_intrinsics(info)["K"]
                pose = grasp_3d_to_msg(grasp_3d(g, depth_m, k, self.config.grasp_depth_m,
                                                self.config.standoff_m,
                                                float(prediction.score)), image.header)
            except (ConversionError, GraspError) as exc:
                self._reject("no_pose", str(exc))
                note += f"; no 3-D pose: {exc}"
        elif depth_m is not None:
            self._reject("no_camera_info", "depth without CameraInfo: no grasp_3d")
            note += "; no 3-D pose: no CameraInfo"
        self._pub_image.publish(numpy_to_image(annotate(rgb, g, instruction), "rgb8",
                                               image.header))
        self.health.output(time.perf_counter() - start)
        return msg, pose, "ok" + note

    def _answer_topic(self, image, depth, info, instruction) -> None:
        try:
            grasp, pose, _ = self._plan(image, depth, info, instruction)
            if grasp is not None and self._active:
                self._pub_grasp.publish(grasp)
                if pose is not None:
                    self._pub_3d.publish(pose)
                    self._pub_pose.publish(PoseStamped(header=pose.header, pose=pose.pose))
        except Exception as exc:                       # noqa: BLE001 - keep the node up
            self._reject("backend_error", repr(exc))
        finally:
            with self._lock:
                self._busy = False

    async def _on_plan_grasp(self, request: PlanGrasp.Request,
                             response: PlanGrasp.Response) -> PlanGrasp.Response:
        """Service: awaits the worker, so the executor keeps running other callbacks."""
        self.health.input()
        if not self._active:
            response.success, response.message = False, "node is not active"
            return response
        done = Future(executor=self.executor)
        info = request.camera_info if request.camera_info.width else None
        depth = request.depth if request.depth.width else None

        def work():
            try:
                result = self._plan(request.image, depth, info, request.instruction)
            except Exception as exc:                   # noqa: BLE001 - reported below
                result = (None, None, f"backend error: {exc!r}")
            done.set_result(result)
            if self.executor is not None:
                self.executor.wake()

        self._worker.submit(work)
        grasp, grasp_3d, message = await done
        response.success, response.message = grasp is not None, message
        if grasp is not None:
            response.grasp = grasp
        if grasp_3d is not None:
            response.has_grasp_3d, response.grasp_3d = True, grasp_3d
        return response


def main(args=None) -> int:
    return run(GraspReasoning, args)


if __name__ == "__main__":
    raise SystemExit(main())
