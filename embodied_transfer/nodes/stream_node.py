"""What the Real2Sim nodes share: a lifecycle node that runs a model over a stream.

Subclasses load their model and create their topics in ``on_configure`` (then call
:meth:`StreamNode._start_processing`), say how many frames they hold (:meth:`_pending`),
how to flush them (:meth:`_flush`) and how to drop the model (:meth:`_release`). This class
keeps the lock, the active flag, the end-of-stream flush after ``flush_after_s`` of wall
time without input, per-reason rejection counts and the /diagnostics publisher.
"""
from __future__ import annotations

import threading
import time

from rclpy.clock import Clock, ClockType
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn

from embodied_transfer.nodes.model_node import teardown
from embodied_transfer.ros.diagnostics import DiagnosticsPublisher, NodeHealth

IDLE_CHECK_S = 0.05        # period of the end-of-stream check


class StreamNode(LifecycleNode):
    """Lifecycle scaffolding of a model node fed by a stream (see the module docstring)."""

    def __init__(self, name: str, **kwargs) -> None:
        super().__init__(name, **kwargs)
        self.health = NodeHealth(name, needs_model=True)
        self.flush_after = 1.0
        self._lock = threading.Lock()
        self._active = False
        self._last_input = time.monotonic()
        self._rejected: dict[str, int] = {}     # reasons found by the node, not its streams
        self._entities: list = []                # publishers, subscriptions, services, timer
        self._diagnostics = None

    def _param(self, name: str):
        return self.get_parameter(name).value

    # --- for subclasses ----------------------------------------------------------------
    def _pending(self) -> int:
        """Frames held back, waiting for more input."""
        raise NotImplementedError

    def _flush(self) -> None:
        """Process and publish every held frame (end of stream)."""
        raise NotImplementedError

    def _release(self) -> None:
        """Drop the model and the streams (cleanup)."""
        raise NotImplementedError

    def _start_processing(self, *entities) -> None:
        """End of a successful configure: keep ``entities`` for cleanup, start the idle
        check and /diagnostics."""
        self._entities = [*entities, self.create_timer(
            IDLE_CHECK_S, self._on_idle, clock=Clock(clock_type=ClockType.STEADY_TIME))]
        self._diagnostics = DiagnosticsPublisher(self, self.health)

    def _input(self) -> None:
        """Count one input (call with the lock held)."""
        self.health.input()
        self._last_input = time.monotonic()

    def _on_reject(self, reason: str, detail: str) -> None:
        self.health.reject(f"{reason}: {detail}")

    def _reject(self, reason: str, detail: str) -> None:
        self._rejected[reason] = self._rejected.get(reason, 0) + 1
        self._on_reject(reason, detail)

    # --- lifecycle ---------------------------------------------------------------------
    def on_activate(self, state) -> TransitionCallbackReturn:
        with self._lock:
            self._active = True
            self._last_input = time.monotonic()
        return super().on_activate(state)

    def on_deactivate(self, state) -> TransitionCallbackReturn:
        with self._lock:
            self._flush()
            self._active = False
        return super().on_deactivate(state)

    def on_cleanup(self, state) -> TransitionCallbackReturn:
        with self._lock:
            teardown(self)
        return TransitionCallbackReturn.SUCCESS

    def _on_idle(self) -> None:
        with self._lock:
            if self._active and self._pending() \
                    and time.monotonic() - self._last_input > self.flush_after:
                self._flush()
