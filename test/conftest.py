"""Test isolation: a private ROS domain, localhost discovery, fast Fast DDS announcements.

Applied at import, before any test initialises rclpy; child processes inherit it through
``os.environ``.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from embodied_transfer.ros.isolation import apply_isolation

REPO = Path(__file__).resolve().parent.parent
os.environ.setdefault("MUJOCO_GL", "egl")      # headless rendering (tabletop camera)
# One domain per test run (derived from the pid), unless the caller chose one.
apply_isolation(int(os.environ["ET_TEST_DOMAIN_ID"]) if "ET_TEST_DOMAIN_ID" in os.environ else None)


@pytest.fixture
def rclpy_context():
    """rclpy initialised for one test, shut down after it."""
    import rclpy

    rclpy.init()
    yield rclpy
    rclpy.shutdown()


@pytest.fixture
def cli():
    """Run ``embodied-transfer`` in a child process; returns (rc, stdout, stderr)."""
    import subprocess

    def run(*args: str, timeout: float = 60.0):
        proc = subprocess.run([sys.executable, "-m", "embodied_transfer", *args],
                              capture_output=True, text=True, timeout=timeout, cwd=REPO)
        return proc.returncode, proc.stdout, proc.stderr
    return run


def in_ci() -> bool:
    """True where the environment variable ``CI`` is set (``CI=true`` on CI services);
    empty, ``0``, ``false`` and ``no`` count as not set."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def require_real_data(path: str | os.PathLike) -> Path:
    """``path`` (a real recording, or the folder of them) for a test that needs it.

    When it is missing the test fails under CI (``CI`` set: the real data must be there, a
    skip would hide that no shipped squat model was checked) and is skipped elsewhere (a
    clone without ``../shared/data``).
    """
    path = Path(path)
    if not path.exists():
        message = (f"real squat data not found at {path} (../shared/data beside the repo, "
                   f"or ET_REAL_SQUAT_DATA)")
        if in_ci():
            pytest.fail(f"{message}; CI is set, so this is a failure, not a skip",
                        pytrace=False)
        pytest.skip(message)
    return path
