"""The one interface every grasp backend implements (``cnn``, ``tiny-vlm``, ``vlm``)."""
from __future__ import annotations

import abc
from dataclasses import dataclass, field

import numpy as np

from embodied_transfer.grasp.errors import GraspError
from embodied_transfer.grasp.rectangles import Grasp


#: How a text backend decodes an answer: greedily as the model writes it (``free``), or
#: greedily with the restatement of the named object held to the position the answer's own
#: list gives it (``consistent``, :func:`~embodied_transfer.grasp.reasoning.consistent_prefix`).
DECODINGS = ("free", "consistent")
DEFAULT_DECODING = "consistent"
#: What may replace a text backend's grasp rectangle (:mod:`~.refined`): nothing, or the
#: ``cnn`` backend's best grasp within ``DEFAULT_REFINE_RADIUS_PX`` of its centre; by default
#: the shipped ``tiny-vlm``'s (trained on the same tabletop scenes as the shipped ``cnn``)
#: are refined, other backends' are not.
REFINERS = ("none", "cnn")
DEFAULT_REFINE = {"tiny-vlm": "cnn"}
DEFAULT_REFINE_RADIUS_PX = 10.0


def checked_choice(kind: str, value: str, choices) -> str:
    """``value`` if it is one of ``choices``; else :class:`GraspError` naming them."""
    if value not in choices:
        raise GraspError(f"unknown {kind} {value!r} (one of {', '.join(choices)})")
    return value


@dataclass
class Prediction:
    """One backend answer: the grasp (None when there is none), its raw text, and why not."""

    grasp: Grasp | None
    text: str = ""                  # the model's raw answer (empty for non-text backends)
    reasoning: str = ""             # the reasoning part of the answer
    score: float = float("nan")     # confidence in [0, 1] when the backend has one
    error: str = ""                 # why there is no grasp (parse error, ...)
    extra: dict = field(default_factory=dict)


class GraspBackend(abc.ABC):
    """Image (+ optional depth) + instruction → one grasp in image pixels."""

    name: str = "base"
    uses_instruction: bool = True

    @abc.abstractmethod
    def predict(self, rgb: np.ndarray, depth: np.ndarray | None, instruction: str) -> Prediction:
        """``rgb``: (H, W, 3) uint8; ``depth``: (H, W) float32 metres or None."""

    def close(self) -> None:
        """Free the model (lifecycle cleanup)."""
