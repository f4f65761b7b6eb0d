"""Squat phase values, shared by the simulator's labels, the real-data reader and the models.

The integer values are those of ``embodied_transfer_interfaces/msg/SquatPhase``.
"""
from __future__ import annotations

STOP, DOWN, UP = 0, 1, 2
#: Names as the real recordings write them (column ``updown``), indexed by phase value.
PHASE_NAMES: tuple[str, ...] = ("Stop", "Down", "Up")
