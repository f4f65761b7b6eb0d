"""What the in-process ROS tests share: spinning a bring-up until a condition, calling services."""
from __future__ import annotations

import time


def spin(started, seconds: float, until=None) -> None:
    """Spin ``started``'s executor for up to ``seconds`` or until ``until()`` is true."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not (until and until()):
        started.executor.spin_once(timeout_sec=0.02)


def call(started, client, request, wait_s: float = 1.0):
    """Call a service; retried because a request sent before the server has matched the
    client's response reader loses its answer (wait_for_service only sees the request side)."""
    assert client.wait_for_service(timeout_sec=5.0)
    for _ in range(5):
        future = client.call_async(request)
        spin(started, wait_s, until=future.done)
        if future.done():
            return future.result()
        client.remove_pending_request(future)
    raise AssertionError(f"no answer from {client.srv_name}")
