"""The simulation area's exception type."""
from __future__ import annotations

from embodied_transfer.core.errors import EmbodiedTransferError


class SimError(EmbodiedTransferError):
    """A simulation could not be built or run (bad model, bad parameters, unstable physics)."""
