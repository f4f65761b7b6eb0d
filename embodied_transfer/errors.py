"""The package's exception types, one per area, gathered for the command line's handler.

Each area defines its own type next to its code; this module only collects them so that
``embodied-transfer`` and the node entry points can turn any of them into a one-line error.
"""
from __future__ import annotations

from embodied_transfer.editing.errors import EditError
from embodied_transfer.grasp.errors import GraspError
from embodied_transfer.ros.bags import BagError
from embodied_transfer.ros.conversions import ConversionError
from embodied_transfer.sim.errors import SimError
from embodied_transfer.squat.errors import SquatDataError
from embodied_transfer.tactile.errors import TactileError


class BringupError(Exception):
    """A graph could not be brought up (unknown graph, bad parameter file, failed start)."""


PACKAGE_ERRORS: tuple[type[Exception], ...] = (BagError, ConversionError, BringupError,
                                               EditError, GraspError, SimError, SquatDataError,
                                               TactileError)
