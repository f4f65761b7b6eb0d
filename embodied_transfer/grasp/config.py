"""Settings of the ``grasp_reasoning`` node: the one source of its parameters, its
``config/grasp_reasoning.yaml`` and its docs table (:mod:`embodied_transfer.core.config`)."""
from __future__ import annotations

from dataclasses import dataclass

from embodied_transfer.core.config import LifecycleSettings, duration, setting
from embodied_transfer.grasp.backends import (BACKENDS, DECODINGS, DEFAULT_DECODING,
                                              DEFAULT_REFINE_RADIUS_PX, REFINERS)
from embodied_transfer.grasp.errors import GraspError
from embodied_transfer.grasp.mirroring import FLIPS


def parse_workspace(text: str) -> tuple[float, ...] | None:
    """``"x0 y0 x1 y1"`` (fractions) → a tuple; "" → None (the model's own workspace)."""
    if not text.strip():
        return None
    try:
        values = tuple(float(v) for v in text.replace(",", " ").split())
    except ValueError:
        values = ()
    if len(values) != 4:
        raise GraspError(f"workspace must be four fractions 'x0 y0 x1 y1', got {text!r}")
    return values


@dataclass
class GraspNodeConfig(LifecycleSettings):
    """``grasp_reasoning``: camera images + an instruction in, an antipodal grasp out."""

    backend: str = setting("tiny-vlm", "Grasp backend: tiny-vlm (shipped), vlm (LLaVA "
                                       "family, GPU workstation) or cnn", choices=BACKENDS)
    model_path: str = setting(
        "", "Model directory (or hub id for vlm); empty: the package's shipped model")
    adapter_path: str = setting("", "LoRA adapter directory for vlm/tiny-vlm (optional)")
    allow_download: bool = setting(
        False, "Let a vlm backend fetch a hub id that is not in the local cache")
    max_new_tokens: int = setting(160, "Longest answer a VLM backend may generate",
                                  unit="tokens", low=1)
    decoding: str = setting(
        DEFAULT_DECODING, "VLM answers: 'free' (as the model writes them) or 'consistent' "
                          "(the named object's restated position held to the position the "
                          "answer's list gives it)", choices=DECODINGS)
    views: int = setting(
        0, "VLM mirrorings of each image answered (1-4), the grasp most agree on kept; 0: "
           "the backend's default (tiny-vlm 4, vlm 1)", low=0, high=len(FLIPS))
    refine: str = setting(
        "", "VLM grasps: kept ('none'), or replaced by the cnn's best grasp within "
            "refine_radius_px of them ('cnn'; needs the depth image); empty: the backend's "
            "default (tiny-vlm cnn, vlm none)", choices=("", *REFINERS))
    refine_model_path: str = setting(
        "", "cnn model directory for refine 'cnn'; empty: the package's tabletop cnn (the "
            "renders the tiny VLM was trained on)")
    refine_radius_px: float = setting(
        DEFAULT_REFINE_RADIUS_PX, "How far refine may move the VLM's grasp centre",
        unit="px", low=0.0)
    workspace: str = setting(
        "", "cnn (as backend or refiner): the fixed part of the camera image it sees, 'x0 y0 "
            "x1 y1' as fractions of the width and height; empty: the model's own (the whole "
            "image)")
    continuous: bool = setting(
        False, "Answer every image while an instruction is set (else once per instruction)")
    max_depth_skew_s: float = duration(
        0.05, "Largest stamp difference between a colour image and the depth used with it")
    grasp_depth_m: float = setting(
        0.02, "grasp_3d: how far beyond the nearest surface seen in the grasp rectangle the "
              "tool centre point goes", unit="m", low=0.0, high=0.5)
    standoff_m: float = setting(
        0.1, "grasp_3d: distance of the pre-grasp pose back along the approach", unit="m",
        low=0.0, high=1.0)
