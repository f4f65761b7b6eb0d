"""The simulation area's exception type, and compiling a model spec into it."""
from __future__ import annotations

from embodied_transfer.core.errors import EmbodiedTransferError


class SimError(EmbodiedTransferError):
    """A simulation could not be built or run (bad model, bad parameters, unstable physics)."""


def compiled(spec, what: str):
    """``spec`` (a ``mujoco.MjSpec``) compiled into an ``MjModel``; MuJoCo's compiler error
    becomes a :class:`SimError` that names ``what`` (e.g. "the squat model")."""
    try:
        return spec.compile()
    except ValueError as exc:
        raise SimError(f"cannot compile {what}: {exc}") from None
