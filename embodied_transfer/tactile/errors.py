"""The tactile area's exception type."""
from __future__ import annotations

from embodied_transfer.core.errors import EmbodiedTransferError


class TactileError(EmbodiedTransferError):
    """A tactile layout, frame, dataset or model problem (unknown domain, bad values, no model).

    ``reason`` is a short machine-readable tag (``unknown_domain``, ``wrong_size``,
    ``not_finite``, ``out_of_range``, ...) that nodes count on /diagnostics.
    """

    def __init__(self, message: str, reason: str = "error") -> None:
        super().__init__(message)
        self.reason = reason
