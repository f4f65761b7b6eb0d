"""The simulation area's exception type."""
from __future__ import annotations


class SimError(Exception):
    """A simulation could not be built or run (bad model, bad parameters, unstable physics)."""
