"""What the request-style model nodes share (grasp_reasoning, tactile_alignment).

Subclasses load their model in ``on_configure``, create their topics and services, then call
:meth:`ModelNode._ready` with them; they free the model in :meth:`ModelNode._release`. This
class keeps the active flag, per-reason rejection counts (logged, throttled, and on
/diagnostics), the entities to destroy and the /diagnostics publisher.
"""
from __future__ import annotations

import threading

from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn

from embodied_transfer.nodes.common import destroy_entities
from embodied_transfer.ros.diagnostics import DiagnosticsPublisher, NodeHealth, count_values


class ModelNode(LifecycleNode):
    """Lifecycle scaffolding of a node that answers requests with a model."""

    def __init__(self, name: str, **kwargs) -> None:
        super().__init__(name, **kwargs)
        self.health = NodeHealth(name, needs_model=True)
        self.health.extra = lambda: [*self._extra_values(),
                                     *count_values("rejected_", self._rejected)]
        self._lock = threading.Lock()
        self._active = False
        self._entities: list = []
        self._diagnostics = None
        self._rejected: dict[str, int] = {}

    def _param(self, name: str):
        return self.get_parameter(name).value

    # --- for subclasses ----------------------------------------------------------------
    def _extra_values(self) -> list[tuple[str, str]]:
        """The node's own (key, value) pairs on /diagnostics."""
        return []

    def _release(self) -> None:
        """Drop the model (cleanup)."""

    def _ready(self, *entities) -> None:
        """End of a successful configure: keep ``entities`` for cleanup, start /diagnostics."""
        self._entities = list(entities)
        self._diagnostics = DiagnosticsPublisher(self, self.health)

    def _reject(self, reason: str, detail: str) -> None:
        """Count a rejected input under ``reason`` and report it."""
        with self._lock:
            self._rejected[reason] = self._rejected.get(reason, 0) + 1
        self.health.reject(f"{reason}: {detail}")
        self.get_logger().warning(f"{reason}: {detail}", throttle_duration_sec=1.0)

    # --- lifecycle ---------------------------------------------------------------------
    def on_activate(self, state) -> TransitionCallbackReturn:
        self._active = True
        return super().on_activate(state)

    def on_deactivate(self, state) -> TransitionCallbackReturn:
        self._active = False
        return super().on_deactivate(state)

    def on_cleanup(self, state) -> TransitionCallbackReturn:
        teardown(self)
        self._rejected = {}
        return TransitionCallbackReturn.SUCCESS


def teardown(node) -> None:
    """Cleanup shared by the model nodes: inactive, /diagnostics stopped, entities
    destroyed, the model released (``node._release()``), reported as not loaded."""
    node._active = False
    if node._diagnostics is not None:
        node._diagnostics.destroy()
        node._diagnostics = None
    destroy_entities(node, node._entities)
    node._entities = []
    node._release()
    node.health.model_loaded = False
