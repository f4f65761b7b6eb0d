"""The README's workstation build: colcon builds both packages against the ROS wheels."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_colcon_builds_both_packages():
    proc = subprocess.run(["bash", str(REPO / "test" / "colcon_build.sh"), sys.prefix],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "colcon build ok: 2 packages" in proc.stdout
