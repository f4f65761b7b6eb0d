"""Grasp backends behind one interface (see :mod:`embodied_transfer.grasp.backends.base`).

``cnn`` (GR-ConvNet-style maps, no instruction), ``tiny-vlm`` (a small LLaVA trained here,
shipped) and ``vlm`` (any LLaVA-family model from a local directory or hub id, optionally with
a LoRA adapter). :func:`load_backend` is what the node and the commands call.
"""
from __future__ import annotations

from pathlib import Path

from embodied_transfer.grasp.backends.base import (DECODINGS, DEFAULT_DECODING,
                                                  DEFAULT_REFINE, DEFAULT_REFINE_RADIUS_PX,
                                                  REFINERS, GraspBackend, Prediction,
                                                  checked_choice)
from embodied_transfer.core.shipped import shipped_model
from embodied_transfer.grasp.errors import GraspError

BACKENDS = ("cnn", "tiny-vlm", "vlm")
#: Shipped checkpoints (reproduce with the command in their MODEL_CARD.md).
DEFAULT_MODELS = shipped_model("grasp")
DEFAULT_DIRS = {"cnn": DEFAULT_MODELS / "cnn", "tiny-vlm": DEFAULT_MODELS / "tiny_vlm"}
#: The cnn trained on the rendered tabletop alone: where the shipped cnn's real-image
#: fine-tuning starts.
TABLETOP_CNN = DEFAULT_MODELS / "cnn_tabletop"

__all__ = ["BACKENDS", "DECODINGS", "DEFAULT_DECODING", "DEFAULT_DIRS", "DEFAULT_REFINE",
           "DEFAULT_REFINE_RADIUS_PX", "GraspBackend", "Prediction", "REFINERS", "load_backend"]


def load_backend(name: str, model: str | Path = "", *, adapter: str | Path = "",
                 allow_download: bool = False, max_new_tokens: int = 160,
                 decoding: str = DEFAULT_DECODING, views: int | None = None,
                 refine: str | None = None, refine_model: str | Path = "",
                 refine_radius_px: float = DEFAULT_REFINE_RADIUS_PX,
                 workspace=None) -> GraspBackend:
    """The backend ``name`` with its model (a directory, a hub id for ``vlm``, or "" for the
    shipped default); ``decoding`` and ``views`` (None: the backend's default) apply to the
    text backends (``cnn`` writes no text). ``refine="cnn"`` wraps a text backend in a
    :class:`~embodied_transfer.grasp.backends.refined.RefinedBackend` whose grasp comes from
    the ``cnn`` model ``refine_model`` ("": the shipped tabletop cnn, :data:`TABLETOP_CNN`,
    trained on the same renders as the text backend) within ``refine_radius_px``
    of the text backend's (None or "": :data:`DEFAULT_REFINE`, i.e. ``tiny-vlm`` refined,
    the others not). ``workspace`` (fractions x0, y0, x1, y1 of the image; None or empty:
    the model's own) is the part of the image the ``cnn`` sees, as backend or refiner.
    Raises :class:`GraspError` saying what is missing."""
    if name not in BACKENDS:
        raise GraspError(f"unknown grasp backend {name!r} (known: {', '.join(BACKENDS)})")
    checked_choice("decoding", decoding, DECODINGS)          # before any model is loaded
    refine = checked_choice("grasp refiner", refine or DEFAULT_REFINE.get(name, "none"),
                            REFINERS)
    if refine != "none":
        if name == "cnn":
            raise GraspError("refine applies to the text backends (tiny-vlm, vlm): the cnn "
                             "backend's grasps are the cnn's already")
        from embodied_transfer.grasp.backends.refined import RefinedBackend, checked_radius

        checked_radius(refine_radius_px)                 # before any model is loaded
        planner = load_backend("cnn", refine_model or TABLETOP_CNN,    # fail fast
                               workspace=workspace)
        picker = load_backend(name, model, adapter=adapter, allow_download=allow_download,
                              max_new_tokens=max_new_tokens, decoding=decoding, views=views,
                              refine="none")
        return RefinedBackend(picker, planner, refine_radius_px)
    if name == "vlm" and not str(model):
        raise GraspError("backend 'vlm' needs a model: a local directory or a hub id such as "
                         "llava-hf/llava-1.5-7b-hf (fetched beforehand, or allow_download)")
    source = str(model) if str(model) else str(DEFAULT_DIRS[name])
    if name == "cnn":
        from embodied_transfer.grasp.backends.cnn import CnnBackend

        backend = CnnBackend.load(source)
        backend.set_workspace(workspace)
        return backend
    from embodied_transfer.grasp.backends.vlm import VlmBackend

    return VlmBackend(source, adapter=str(adapter) or None, allow_download=allow_download,
                      max_new_tokens=max_new_tokens, decoding=decoding, views=views,
                      name=name)
