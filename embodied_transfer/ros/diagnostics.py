"""Per-node health reporting on /diagnostics (diagnostic_msgs/DiagnosticArray).

:class:`NodeHealth` is pure (no rclpy) and counts what a node sees: inputs and their rate,
processing latency percentiles, rejected inputs with the last reason, and whether the model
is loaded. :class:`DiagnosticsPublisher` turns it into a DiagnosticStatus once a second.
"""
from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

OK, WARN, ERROR = 0, 1, 2  # diagnostic_msgs/DiagnosticStatus levels
#: A rejection keeps the status at WARN this long (s); then, with healthy input, it clears
#: to OK (the counts stay in the report's values).
WARN_HOLD_S = 5.0


@dataclass
class NodeHealth:
    """Counters behind one node's diagnostics; thread-safe enough for rclpy callbacks."""

    name: str
    needs_model: bool = False
    window: int = 200
    clock: Callable[[], float] = time.monotonic
    model_loaded: bool = False
    model_info: str = ""
    inputs: int = 0
    outputs: int = 0
    rejected: int = 0
    last_rejection: str = ""
    #: The node's own (key, value) pairs, appended to every report.
    extra: Callable[[], list[tuple[str, str]]] | None = None
    #: A warning text ("" when none), reported as WARN while everything else is OK.
    warning: Callable[[], str] | None = None
    _arrivals: deque = field(default_factory=deque, repr=False)
    _latencies: deque = field(default_factory=deque, repr=False)
    _rejected_at: float | None = field(default=None, repr=False)

    def input(self) -> None:
        """Count one received input (call at the top of a callback)."""
        self.inputs += 1
        self._arrivals.append(self.clock())
        while len(self._arrivals) > self.window:
            self._arrivals.popleft()

    def output(self, latency_s: float) -> None:
        """Count one published output and the time it took to produce it."""
        self.outputs += 1
        self._latencies.append(latency_s)
        while len(self._latencies) > self.window:
            self._latencies.popleft()

    def reject(self, reason: str) -> None:
        """Count one rejected input; ``reason`` is kept for the next report."""
        self.rejected += 1
        self.last_rejection = reason
        self._rejected_at = self.clock()

    def input_rate_hz(self) -> float:
        """Rate of inputs over the recent window (0 until two have arrived)."""
        if len(self._arrivals) < 2:
            return 0.0
        span = self._arrivals[-1] - self._arrivals[0]
        if self.clock() - self._arrivals[-1] > max(span, 1.0):
            return 0.0  # inputs stopped: do not keep reporting a stale rate
        return (len(self._arrivals) - 1) / span if span > 0 else 0.0

    def latency_ms(self) -> tuple[float, float]:
        """(p50, p99) processing latency in milliseconds over the window (NaN if none)."""
        if not self._latencies:
            return float("nan"), float("nan")
        p50, p99 = np.percentile(np.asarray(self._latencies) * 1e3, [50, 99])
        return float(p50), float(p99)

    def level(self) -> tuple[int, str]:
        """Overall level and a one-line summary."""
        if self.needs_model and not self.model_loaded:
            return ERROR, "model not loaded"
        if self._rejected_at is not None and self.clock() - self._rejected_at < WARN_HOLD_S:
            return WARN, f"rejected {self.rejected} input(s), last: {self.last_rejection}"
        text = self.warning() if self.warning else ""
        return (WARN, text) if text else (OK, "ok")

    def key_values(self) -> list[tuple[str, str]]:
        """The report as (key, value) strings, as DiagnosticStatus.values wants them."""
        p50, p99 = self.latency_ms()
        values = [
            ("model_loaded", str(self.model_loaded).lower() if self.needs_model else "n/a"),
            ("input_rate_hz", f"{self.input_rate_hz():.2f}"),
            ("inputs", str(self.inputs)),
            ("outputs", str(self.outputs)),
            ("rejected_inputs", str(self.rejected)),
            ("last_rejection", self.last_rejection),
            ("latency_p50_ms", f"{p50:.3f}"),
            ("latency_p99_ms", f"{p99:.3f}"),
        ]
        if self.model_info:
            values.append(("model", self.model_info))
        return values + (self.extra() if self.extra else [])


def count_values(prefix: str, counts: dict[str, int]) -> list[tuple[str, str]]:
    """Per-reason counters as (``prefix + reason``, count) pairs, sorted by reason."""
    return [(f"{prefix}{k}", str(v)) for k, v in sorted(counts.items())]


class DiagnosticsPublisher:
    """Publishes a node's :class:`NodeHealth` on /diagnostics at ``period_s``."""

    def __init__(self, node, health: NodeHealth, period_s: float = 1.0) -> None:
        from diagnostic_msgs.msg import DiagnosticArray  # noqa: F401  (fail early if absent)

        self._node = node
        self.health = health
        self._pub = node.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._timer = node.create_timer(period_s, self.publish)

    def publish(self) -> None:
        from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

        level, message = self.health.level()
        status = DiagnosticStatus(level=bytes([level]),
                                  name=self._node.get_fully_qualified_name(),
                                  message=message, hardware_id=self.health.name)
        status.values = [KeyValue(key=k, value=v) for k, v in self.health.key_values()]
        array = DiagnosticArray(status=[status])
        array.header.stamp = self._node.get_clock().now().to_msg()
        self._pub.publish(array)

    def destroy(self) -> None:
        self._node.destroy_timer(self._timer)
        self._node.destroy_publisher(self._pub)
