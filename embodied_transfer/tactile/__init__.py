"""Tactile-latent alignment (UniTacHand-style): glove and robot-hand tactile readings
projected onto one canonical hand surface (a UV map of the package's parametric hand) and
aligned in a shared latent space.

Modules: :mod:`surface` (parametric hand, UV unwrap, validity mask), :mod:`layouts`
(sensor layouts as data files), :mod:`data` (synthetic paired/unpaired grasp data),
:mod:`models` (per-domain encoders/decoders, discriminator, baselines, :class:`Aligner`),
:mod:`train` and :mod:`evaluate`; :mod:`physical` (paired frames of the Shadow Hand grasping
objects in MuJoCo) and :mod:`transfer` (evaluation on them, and the transfer-of-skill task).
"""
from __future__ import annotations

from embodied_transfer.core.shipped import shipped_model
from embodied_transfer.tactile.errors import TactileError

#: The shipped checkpoint (``embodied-transfer tactile train`` writes it).
DEFAULT_MODEL = shipped_model("tactile")
#: The shipped checkpoint of the glove and the Shadow Hand in MuJoCo
#: (``embodied-transfer tactile train --source mujoco`` writes it).
PHYSICAL_MODEL = shipped_model("tactile_shadow")

__all__ = ["DEFAULT_MODEL", "PHYSICAL_MODEL", "TactileError"]
