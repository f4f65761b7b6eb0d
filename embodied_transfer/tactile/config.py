"""Settings of the ``tactile_alignment`` node: the one source of its parameters, its
``config/tactile_alignment.yaml`` and its docs table (:mod:`embodied_transfer.core.config`)."""
from __future__ import annotations

from dataclasses import dataclass

from embodied_transfer.core.config import LifecycleSettings, setting


@dataclass
class TactileNodeConfig(LifecycleSettings):
    """``tactile_alignment``: the ``align_tactile`` service and the streaming converter."""

    model_path: str = setting(
        "", "Tactile alignment checkpoint directory; empty: the package's shipped model")
    stream_enabled: bool = setting(
        True, "Convert every frame on tactile/input into stream_target_domain on "
              "tactile/converted")
    stream_target_domain: str = setting(
        "robot_hand_1062", "Layout id the stream converts into (one of the model's domains)")
