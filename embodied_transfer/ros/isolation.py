"""Environment for running ROS 2 processes in isolation (tests, benchmarks, demos).

Set these before ``rclpy.init()`` in the process and pass them to child processes:
a private ``ROS_DOMAIN_ID``, discovery restricted to this host
(``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST``; Kilted ignores ``ROS_LOCALHOST_ONLY``) and a
Fast DDS profile with quick initial announcements.
"""
from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path
from typing import MutableMapping

FASTDDS_PROFILE = Path(str(files(__package__) / "fastdds_fast_discovery.xml"))

# Fast DDS 3 (Kilted) reads this variable; the older FASTRTPS_ name only adds a warning.
_PROFILE_VAR = "FASTDDS_DEFAULT_PROFILES_FILE"
# Domain ids 0..101 and 215..232 are safe with the default port mapping; avoid 0, the one
# every other ROS process on the host uses.
_DOMAIN_RANGE = range(1, 101)


def pick_domain_id(seed: int | None = None) -> int:
    """A domain id in 1..100 derived from ``seed`` (default: this process id)."""
    seed = os.getpid() if seed is None else seed
    return _DOMAIN_RANGE[seed % len(_DOMAIN_RANGE)]


def isolated_env(domain_id: int | None = None,
                 base: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Return a copy of ``base`` (default ``os.environ``) set up for an isolated ROS graph."""
    env = dict(os.environ if base is None else base)
    env["ROS_DOMAIN_ID"] = str(pick_domain_id() if domain_id is None else domain_id)
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    env.pop("ROS_STATIC_PEERS", None)
    env.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
    env[_PROFILE_VAR] = str(FASTDDS_PROFILE)
    return env


def apply_isolation(domain_id: int | None = None) -> dict[str, str]:
    """Apply :func:`isolated_env` to this process (call before ``rclpy.init``)."""
    env = isolated_env(domain_id)
    os.environ.update(env)
    return env
