"""Settings of the bag nodes (``bag_player``, ``bag_recorder``): the one source of their
parameters, their ``config/<node>.yaml`` and docs tables (:mod:`embodied_transfer.core.config`)."""
from __future__ import annotations

from dataclasses import dataclass

from embodied_transfer.core.config import duration, setting
from embodied_transfer.ros.bags import STORAGES


@dataclass
class BagPlayerConfig:
    """``bag_player``: a rosbag2 bag played with its recorded timing."""

    bag: str = setting("", "Path of the rosbag2 directory to play")
    rate: float = setting(1.0, "Playback speed factor (2.0 = twice as fast)", low=0.0)
    clock: bool = setting(False, "Publish /clock from the bag's time")
    clock_rate_hz: float = setting(100.0, "Rate of /clock between messages", unit="Hz",
                                   low=0.0)
    loop: bool = setting(False, "Start again at the end of the bag")
    topics: list = setting([""], "Topics to play ([\"\"] or empty: all)")
    start_delay: float = duration(0.0, "Seconds to wait before playing")
    wait_for_subscribers: float = duration(
        0.0, "Up to this many seconds, wait until every topic has a subscriber (0: don't)")


@dataclass
class BagRecorderConfig:
    """``bag_recorder``: topics recorded into a new rosbag2 bag."""

    out: str = setting("", "Path of the bag directory to create")
    storage: str = setting("sqlite3", "Storage plugin: sqlite3 or mcap", choices=STORAGES)
    topics: list = setting([""], "Topics to record, relative or absolute (required)")
    discovery_period: float = duration(0.1, "Seconds between looks for the topics' publishers")
