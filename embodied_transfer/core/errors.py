"""The package's base exception type.

Every area defines its own error type next to its code (``SimError``, ``SquatDataError``,
``GraspError``, ``TactileError``, ``EditError``, ``BagError``, ``ConversionError``,
``BringupError``), each a subclass of :class:`EmbodiedTransferError`, so that
``embodied-transfer`` and the node entry points turn any of them into a one-line error by
catching this one type, without this module importing the areas.
"""
from __future__ import annotations


class EmbodiedTransferError(Exception):
    """Base of every error the package raises on purpose (bad input, missing model, ...)."""


class ConfigError(EmbodiedTransferError, ValueError):
    """A setting outside its range or choices, or an unknown setting."""
