"""Where the package's shipped models live: the one place that resolves them.

Every loader whose model path is left empty (node parameter ``model_path: ""``, a command's
``--model`` / ``--models`` left out) gets its default from :func:`shipped_model`.
"""
from __future__ import annotations

from pathlib import Path

#: ``embodied_transfer/models``: checkpoints + MODEL_CARD.md per capability.
MODELS_DIR = Path(__file__).resolve().parent.parent / "models"


def shipped_model(*parts: str) -> Path:
    """The shipped model directory ``models/<parts...>`` (for example ``("squat",
    "classifier")``, ``("grasp", "cnn")``, ``("tactile",)``)."""
    return MODELS_DIR.joinpath(*parts)
