"""The editing area's exception type."""
from __future__ import annotations


class EditError(Exception):
    """An editing problem: missing model, unreadable image, bad mask, bad option."""
