"""Grasp backends behind one interface (see :mod:`embodied_transfer.grasp.backends.base`)."""
