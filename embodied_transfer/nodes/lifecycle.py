"""The one lifecycle base of the package's nodes that load something in configure.

A subclass names its settings dataclass (``CONFIG``; its parameters are declared from it)
and fills in hooks:

* :meth:`ManagedNode._load` (configure): load the model or build the scene from the
  validated settings, create the topics and services and return them; raise an error of
  the package's types (or ValueError) with a clear message when it cannot;
* :meth:`ManagedNode._release` (cleanup, or a failed configure): drop what ``_load`` made;
* for stream nodes (``STREAM = True``): :meth:`_pending` and :meth:`_flush`, the frames held
  back for more input and how to process them at the end of a stream; the base flushes on
  deactivate and at the end of a stream: once the node's clock (sim time under
  ``use_sim_time``, so a slow or fast replay is judged in its own time) has run
  ``flush_after_s`` past the last input, or, while that clock stands still (a replay ended
  and its /clock stopped), after ``flush_after_s`` of wall time without input; :meth:`_streams`, the
  stream states, reset on activate and logged when time jumps back (a replayed bag);
* :meth:`_extra_values`: the node's own key/value pairs on /diagnostics.

The base keeps the lock, the active flag, per-reason rejection counts (logged, throttled,
and on /diagnostics), the entities to destroy and the /diagnostics publisher.
"""
from __future__ import annotations

import threading
import time

from rclpy.clock import Clock, ClockType
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn

from embodied_transfer.core.errors import EmbodiedTransferError
from embodied_transfer.nodes.common import declare_config, destroy_entities, read_config
from embodied_transfer.ros.diagnostics import DiagnosticsPublisher, NodeHealth, count_values

IDLE_CHECK_S = 0.05        # period of the end-of-stream check of stream nodes


class ManagedNode(LifecycleNode):
    """Lifecycle scaffolding shared by every model or simulation node (module docstring)."""

    #: The node's settings (a dataclass of :func:`~embodied_transfer.core.config.setting`).
    CONFIG: type
    #: A stream node holds frames back and flushes them at the end of a stream.
    STREAM = False

    def __init__(self, name: str, **kwargs) -> None:
        super().__init__(name, **kwargs)
        declare_config(self, self.CONFIG)
        self.config = None
        self.health = NodeHealth(name, needs_model=True)
        self.health.extra = self._extra_values
        self._lock = threading.Lock()          # held by stream callbacks and transitions
        self._count_lock = threading.Lock()    # rejection counts (any thread)
        self._active = False
        self._last_input = time.monotonic()
        self._last_input_clock = 0            # node clock (ns) at the last input
        self._clock_seen, self._clock_moved = 0, time.monotonic()
        self._rejected: dict[str, int] = {}
        self._entities: list = []
        self._diagnostics = None

    @property
    def active(self) -> bool:
        """True between activate and deactivate."""
        return self._active

    # --- hooks ---------------------------------------------------------------------------
    def _load(self, config) -> list:
        """Configure: load and create from ``config``; return the entities to destroy."""
        raise NotImplementedError

    def _release(self) -> None:
        """Cleanup: drop what :meth:`_load` made."""

    def _pending(self) -> int:
        """Stream nodes: frames held back, waiting for more input."""
        return 0

    def _flush(self) -> None:
        """Stream nodes: process and publish every held frame (end of stream)."""

    def _streams(self) -> list:
        """Stream nodes: their stream-state objects (``reset()``, ``on_restart``)."""
        return []

    def _extra_values(self) -> list[tuple[str, str]]:
        """The node's own (key, value) pairs on /diagnostics (default: rejection counts)."""
        return count_values("rejected_", self._rejected)

    # --- for subclasses ------------------------------------------------------------------
    def _input(self) -> None:
        """Count one input."""
        self.health.input()
        self._mark_input()

    def _mark_input(self) -> None:
        self._last_input = time.monotonic()
        self._last_input_clock = self.get_clock().now().nanoseconds

    def _on_reject(self, reason: str, detail: str) -> None:
        """Report a rejection counted elsewhere (a stream's own counts)."""
        self.health.reject(f"{reason}: {detail}")
        self.get_logger().warning(f"{reason}: {detail}", throttle_duration_sec=1.0)

    def _reject(self, reason: str, detail: str) -> None:
        """Count a rejected input under ``reason`` and report it."""
        with self._count_lock:
            self._rejected[reason] = self._rejected.get(reason, 0) + 1
        self._on_reject(reason, detail)

    # --- lifecycle -----------------------------------------------------------------------
    def on_configure(self, state) -> TransitionCallbackReturn:
        try:
            self.config = read_config(self, self.CONFIG)
            entities = self._load(self.config)
        except (EmbodiedTransferError, ValueError) as exc:
            self.get_logger().error(f"configure failed: {exc}")
            destroy_entities(self, self._entities)
            self._entities = []
            self._release()
            return TransitionCallbackReturn.FAILURE
        self._entities = list(entities)
        for stream in self._streams():
            stream.on_restart = self._on_restart
        if self.STREAM:
            self._entities.append(self.create_timer(
                IDLE_CHECK_S, self._on_idle, clock=Clock(clock_type=ClockType.STEADY_TIME)))
        self._diagnostics = DiagnosticsPublisher(self, self.health)
        self.health.model_loaded = True
        self.get_logger().info(f"ready: {self.health.model_info}")
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state) -> TransitionCallbackReturn:
        with self._lock:
            for stream in self._streams():     # a new start: earlier stamps are welcome
                stream.reset()
            self._active = True
            self._mark_input()
        return super().on_activate(state)

    def on_deactivate(self, state) -> TransitionCallbackReturn:
        with self._lock:
            self._flush()
            self._active = False
        return super().on_deactivate(state)

    def on_cleanup(self, state) -> TransitionCallbackReturn:
        with self._lock:            # callbacks check the flag under the lock, then stop
            self._active = False
        # Without the lock: releasing may wait for a worker thread that takes it.
        if self._diagnostics is not None:
            self._diagnostics.destroy()
            self._diagnostics = None
        destroy_entities(self, self._entities)
        self._entities = []
        self._release()
        self._rejected = {}
        self.health.model_loaded = False
        return TransitionCallbackReturn.SUCCESS

    def _on_restart(self, why: str) -> None:
        """A stream started again because time jumped back (logged; /diagnostics counts it
        as ``events_time_jump_back``)."""
        self.get_logger().info(why)

    def _end_of_stream(self) -> bool:
        """No input for ``flush_after_s`` on the node's clock, or on the wall clock while
        the node's clock stands still (module docstring)."""
        now, clock = time.monotonic(), self.get_clock().now().nanoseconds
        if clock != self._clock_seen:
            self._clock_seen, self._clock_moved = clock, now
        limit = self.config.flush_after_s
        if clock - self._last_input_clock > limit * 1e9:
            return True
        return now - self._clock_moved > limit and now - self._last_input > limit

    def _on_idle(self) -> None:
        with self._lock:
            if self._active and self._end_of_stream() and self._pending():
                self._flush()
