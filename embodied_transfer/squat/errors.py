"""The squat area's exception type."""
from __future__ import annotations

from embodied_transfer.core.errors import EmbodiedTransferError


class SquatDataError(EmbodiedTransferError):
    """Squat data could not be read or used: malformed recording, bad dataset, bad labels."""
