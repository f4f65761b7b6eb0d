"""Tactile-latent alignment (UniTacHand-style): glove and robot-hand tactile readings
projected onto one canonical hand surface (a UV map of the package's parametric hand) and
aligned in a shared latent space.

Modules: :mod:`surface` (parametric hand, UV unwrap, validity mask), :mod:`layouts`
(sensor layouts as data files), :mod:`data` (synthetic paired/unpaired grasp data),
:mod:`models` (per-domain encoders/decoders, discriminator, baselines, :class:`Aligner`),
:mod:`train` and :mod:`evaluate`.
"""
from __future__ import annotations

from embodied_transfer.core.shipped import shipped_model
from embodied_transfer.tactile.errors import TactileError

#: The shipped checkpoint (``embodied-transfer tactile train`` writes it).
DEFAULT_MODEL = shipped_model("tactile")

__all__ = ["DEFAULT_MODEL", "TactileError"]
