"""Process-wide settings, made once by a process's entry point (never by a library module
or a node): the ``embodied-transfer`` command and ``ros2 run embodied_transfer <node>``.
"""
from __future__ import annotations

import os
import sys

#: torch intra-op threads of a process that serves nodes: one keeps per-frame latency steady
#: and leaves the other cores to the executor and DDS.
NODE_TORCH_THREADS = 1


def configure_process(torch_threads: int | None = None) -> None:
    """MuJoCo renders headless through EGL unless ``MUJOCO_GL`` says otherwise; with
    ``torch_threads``, torch uses that many intra-op threads (set now if torch is loaded,
    else through ``OMP_NUM_THREADS``, which torch reads when it is first imported)."""
    os.environ.setdefault("MUJOCO_GL", "egl")
    if torch_threads:
        if "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(torch_threads)
        else:
            os.environ["OMP_NUM_THREADS"] = str(torch_threads)
