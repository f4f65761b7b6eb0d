"""NodeHealth counts honestly; DiagnosticsPublisher puts it on /diagnostics."""
from __future__ import annotations

import math

import pytest

from embodied_transfer.ros.diagnostics import ERROR, OK, WARN, DiagnosticsPublisher, NodeHealth


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_rate_latency_rejections_and_model_state():
    clock = FakeClock()
    health = NodeHealth("converter", needs_model=True, clock=clock)
    assert health.level() == (ERROR, "model not loaded")
    assert math.isnan(health.latency_ms()[0])
    health.model_loaded = True
    for i in range(21):  # 20 Hz for one second
        clock.t = i * 0.05
        health.input()
        health.output(0.001 if i < 20 else 0.010)
    assert health.input_rate_hz() == pytest.approx(20.0)
    p50, p99 = health.latency_ms()
    assert p50 == pytest.approx(1.0) and 1.0 < p99 <= 10.0
    assert health.level() == (OK, "ok")
    health.reject("NaN in imu.linear_acceleration")
    level, message = health.level()
    assert level == WARN and "NaN in imu" in message
    values = dict(health.key_values())
    assert values["rejected_inputs"] == "1" and values["model_loaded"] == "true"
    clock.t = 10.0  # inputs stopped: the rate must not stay at 20 Hz
    assert health.input_rate_hz() == 0.0


def test_a_rejection_warns_for_a_while_then_clears_with_healthy_input():
    clock = FakeClock()
    health = NodeHealth("converter", clock=clock)
    health.reject("imu_out_of_order: 3 ms back")
    assert health.level()[0] == WARN
    for i in range(1, 200):                     # healthy input for ~6 s
        clock.t = i * 0.03
        health.input()
    assert health.level() == (OK, "ok")
    values = dict(health.key_values())
    assert values["rejected_inputs"] == "1" and values["last_rejection"].startswith("imu_out")


def test_window_bounds_memory():
    health = NodeHealth("x", window=10)
    for _ in range(100):
        health.input()
        health.output(0.0)
    assert len(health._arrivals) == 10 and len(health._latencies) == 10
    assert health.inputs == 100 and health.outputs == 100


@pytest.mark.ros
def test_publisher_reports_on_diagnostics(rclpy_context):
    from diagnostic_msgs.msg import DiagnosticArray

    rclpy = rclpy_context
    node = rclpy.create_node("diag_source")
    listener = rclpy.create_node("diag_listener")
    got: list[DiagnosticArray] = []
    listener.create_subscription(DiagnosticArray, "/diagnostics", got.append, 10)
    health = NodeHealth("diag_source", needs_model=True)
    DiagnosticsPublisher(node, health, period_s=0.05)
    executor = rclpy.executors.SingleThreadedExecutor()
    executor.add_node(node)
    executor.add_node(listener)
    for _ in range(200):
        executor.spin_once(timeout_sec=0.02)
        if got:
            break
    assert got, "nothing on /diagnostics"
    status = got[0].status[0]
    assert status.name == "/diag_source" and status.level == bytes([ERROR])
    assert {kv.key for kv in status.values} >= {"model_loaded", "input_rate_hz",
                                                 "rejected_inputs", "latency_p99_ms"}
