"""mujoco_bridge: a MuJoCo scene stepped in (scaled) real time, on ROS topics.

Scenes (parameter ``scene``; their topics are described in
:mod:`embodied_transfer.nodes.bridge_scenes`):

* ``squat``: the squatting humanoid's watch IMU, UWB range, phase truth, joints and /clock;
* ``tabletop``: an overhead RGB-D camera over random objects, an instruction naming one,
  and a parallel-jaw gripper that executes the GraspPose messages it receives.

Services ``~/reset`` (std_srvs/Trigger; the scene starts again with the ``seed`` parameter's
current value) and ``~/pause`` (std_srvs/SetBool).

Lifecycle: configure builds the MuJoCo model (a bad scene or parameter fails the
transition), activate starts stepping, deactivate stops it, cleanup frees the model.
"""
from __future__ import annotations

import threading

from rclpy.clock import Clock, ClockType
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn
from std_srvs.srv import SetBool, Trigger

from embodied_transfer.nodes.bridge_scenes import SCENES
from embodied_transfer.nodes.common import declare, run
from embodied_transfer.ros.diagnostics import DiagnosticsPublisher, NodeHealth
from embodied_transfer.sim.errors import SimError


class MujocoBridge(LifecycleNode):
    """Steps a MuJoCo scene at ``real_time_factor`` and publishes its sensors."""

    def __init__(self, **kwargs) -> None:
        super().__init__("mujoco_bridge", **kwargs)
        self.scene = declare(self, "scene", "squat", f"Scene to simulate: {', '.join(SCENES)}")
        self.seed = declare(self, "seed", 0, "Seed of the scene (person and squats, or objects)")
        self.rtf = declare(self, "real_time_factor", 1.0,
                           "Sim seconds per wall second (2.0 = twice as fast)")
        for io in SCENES.values():
            io.declare_parameters(self)
        self.health = NodeHealth("mujoco_bridge", needs_model=True)
        self.io = None
        self.lock = threading.Lock()
        self._paused = False
        self._timer = None
        self._services: list = []
        self._diagnostics = None

    @property
    def sim(self):
        """The scene's simulation (None when not configured)."""
        return self.io.sim if self.io is not None else None

    # --- lifecycle ---------------------------------------------------------------------
    def on_configure(self, state) -> TransitionCallbackReturn:
        if self.scene not in SCENES:
            self.get_logger().error(f"unknown scene '{self.scene}' (known: {', '.join(SCENES)})")
            return TransitionCallbackReturn.FAILURE
        if not self.rtf > 0:
            self.get_logger().error(f"real_time_factor ({self.rtf}) must be > 0")
            return TransitionCallbackReturn.FAILURE
        io = SCENES[self.scene](self)
        try:
            io.configure(self.seed)
        except SimError as exc:
            io.destroy()
            self.get_logger().error(f"cannot build scene '{self.scene}': {exc}")
            return TransitionCallbackReturn.FAILURE
        self.io = io
        self.health.model_loaded = True
        self.health.model_info = f"scene {self.scene}, seed {self.seed}"
        self.health.extra = getattr(io, "extra", None)
        self._services = [self.create_service(Trigger, "~/reset", self._on_reset),
                          self.create_service(SetBool, "~/pause", self._on_pause)]
        self._diagnostics = DiagnosticsPublisher(self, self.health)
        self.get_logger().info(f"scene '{self.scene}' ready (seed {self.seed}, "
                               f"{1.0 / io.period_s:g} Hz, real-time factor {self.rtf:g})")
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state) -> TransitionCallbackReturn:
        self.io.start()
        self._timer = self.create_timer(self.io.period_s / self.rtf, self._tick,
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
        for srv in self._services:
            self.destroy_service(srv)
        self._services = []
        if self.io is not None:
            self.io.destroy()
            self.io = None
        self.health.model_loaded = False
        return TransitionCallbackReturn.SUCCESS

    # --- stepping and services -----------------------------------------------------------
    def _tick(self) -> None:
        with self.lock:
            if not self._paused and self.io is not None:
                self.io.tick()

    def _on_reset(self, request, response):
        with self.lock:
            if self.io is None:
                response.success, response.message = False, "not configured"
                return response
            response.message = self.io.reset(self.get_parameter("seed").value)
        response.success = True
        return response

    def _on_pause(self, request, response):
        with self.lock:
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
