"""The squat area's exception type."""
from __future__ import annotations


class SquatDataError(Exception):
    """Squat data could not be read or used: malformed recording, bad dataset, bad labels."""
