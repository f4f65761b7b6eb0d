"""mujoco_bridge: a MuJoCo scene stepped in (scaled) real time, on ROS topics.

Scenes (parameter ``scene``; their topics are described in
:mod:`embodied_transfer.nodes.bridge_scenes`):

* ``squat``: the squatting humanoid's watch IMU, UWB range, phase truth, joints and /clock;
* ``tabletop``: an overhead RGB-D camera over random objects (its frames on /tf_static), an
  instruction naming one, and a parallel-jaw gripper that executes the Grasp3D messages it
  receives, through TF.

Services ``~/reset`` (std_srvs/Trigger; the scene starts again with the ``seed`` parameter's
current value) and ``~/pause`` (std_srvs/SetBool).

Lifecycle: configure builds the MuJoCo model (a bad scene or parameter fails the
transition), activate starts stepping, deactivate stops it, cleanup frees the model.
"""
from __future__ import annotations

from rclpy.clock import Clock, ClockType
from rclpy.lifecycle import TransitionCallbackReturn
from std_srvs.srv import SetBool, Trigger

from embodied_transfer.nodes.bridge_scenes import SCENES
from embodied_transfer.nodes.common import DIAGNOSTICS, Endpoint, Interface, run
from embodied_transfer.nodes.lifecycle import ManagedNode
from embodied_transfer.sim.config import BridgeConfig
from embodied_transfer.sim.errors import SimError

SQUAT, TABLETOP = "scene squat", "scene tabletop"


class MujocoBridge(ManagedNode):
    """Steps a MuJoCo scene at ``real_time_factor`` and publishes its sensors."""

    CONFIG = BridgeConfig
    INTERFACE = Interface(
        subscribes=(Endpoint("grasp_3d", "embodied_transfer_interfaces/Grasp3D", TABLETOP),
                    Endpoint("/tf_static", "tf2_msgs/TFMessage", TABLETOP),
                    Endpoint("/tf", "tf2_msgs/TFMessage", TABLETOP)),
        publishes=(Endpoint("imu", "sensor_msgs/Imu", SQUAT),
                   Endpoint("uwb/range", "sensor_msgs/Range", SQUAT),
                   Endpoint("squat/phase_truth", "embodied_transfer_interfaces/SquatPhase", SQUAT),
                   Endpoint("joint_states", "sensor_msgs/JointState", SQUAT),
                   Endpoint("/clock", "rosgraph_msgs/Clock", SQUAT + ", publish_clock"),
                   Endpoint("image_raw", "sensor_msgs/Image", TABLETOP),
                   Endpoint("depth", "sensor_msgs/Image", TABLETOP),
                   Endpoint("camera_info", "sensor_msgs/CameraInfo", TABLETOP),
                   Endpoint("instruction", "std_msgs/String", TABLETOP),
                   Endpoint("grasp_outcome", "embodied_transfer_interfaces/GraspOutcome",
                            TABLETOP),
                   Endpoint("/tf_static", "tf2_msgs/TFMessage", TABLETOP),
                   DIAGNOSTICS),
        services=(Endpoint("~/reset", "std_srvs/Trigger"),
                  Endpoint("~/pause", "std_srvs/SetBool")))

    def __init__(self, **kwargs) -> None:
        super().__init__("mujoco_bridge", **kwargs)
        self.io = None
        self._paused = False
        self._timer = None

    @property
    def sim(self):
        """The scene's simulation (None when not configured)."""
        return self.io.sim if self.io is not None else None

    @property
    def lock(self):
        """The lock the stepping, the services and the transitions hold."""
        return self._lock

    def _extra_values(self) -> list[tuple[str, str]]:
        extra = getattr(self.io, "extra", None)
        return [*(extra() if extra else []), *super()._extra_values()]

    # --- lifecycle ---------------------------------------------------------------------
    def _load(self, config: BridgeConfig) -> list:
        if not config.real_time_factor > 0:
            raise SimError(f"real_time_factor ({config.real_time_factor}) must be > 0")
        io = SCENES[config.scene](self)
        try:
            io.configure(config.seed)
        except SimError as exc:
            io.destroy()
            raise SimError(f"cannot build scene '{config.scene}': {exc}") from None
        self.io = io
        self.health.model_info = (f"scene {config.scene}, seed {config.seed}, "
                                  f"{1.0 / io.period_s:g} Hz, real-time factor "
                                  f"{config.real_time_factor:g}")
        return [self.create_service(Trigger, "~/reset", self._on_reset),
                self.create_service(SetBool, "~/pause", self._on_pause)]

    def _release(self) -> None:
        if self.io is not None:
            self.io.destroy()
            self.io = None

    def on_activate(self, state) -> TransitionCallbackReturn:
        result = super().on_activate(state)       # publishers active before the scene starts
        self.io.start()
        self._timer = self.create_timer(self.io.period_s / self.config.real_time_factor,
                                        self._tick, clock=Clock(clock_type=ClockType.STEADY_TIME))
        return result

    def on_deactivate(self, state) -> TransitionCallbackReturn:
        if self._timer is not None:
            self.destroy_timer(self._timer)
            self._timer = None
        return super().on_deactivate(state)

    # --- stepping and services -----------------------------------------------------------
    def _tick(self) -> None:
        with self._lock:
            if not self._paused and self.io is not None:
                self.io.tick()

    def _on_reset(self, request, response):
        with self._lock:
            if self.io is None:
                response.success, response.message = False, "not configured"
                return response
            response.message = self.io.reset(self.get_parameter("seed").value)
        response.success = True
        return response

    def _on_pause(self, request, response):
        with self._lock:
            was = self._paused
            self._paused = bool(request.data)
            if was and not self._paused and self.io is not None:
                self.io.start()
        response.success = True
        response.message = "paused" if self._paused else "running"
        return response


def main(args=None) -> int:
    return run(lambda: MujocoBridge(), args)


if __name__ == "__main__":
    raise SystemExit(main())
