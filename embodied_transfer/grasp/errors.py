"""The grasp area's exception types."""
from __future__ import annotations

from embodied_transfer.core.errors import EmbodiedTransferError


class GraspError(EmbodiedTransferError):
    """A grasp, dataset, scene or backend problem (bad rectangle, unreadable file, no model)."""


class GraspParseError(GraspError):
    """A model's answer holds no valid numeric grasp; ``text`` is the raw answer."""

    def __init__(self, message: str, text: str = "") -> None:
        super().__init__(message)
        self.text = text
