"""The editing area's exception type."""
from __future__ import annotations

from embodied_transfer.core.errors import EmbodiedTransferError


class EditError(EmbodiedTransferError):
    """An editing problem: missing model, unreadable image, bad mask, bad option."""
