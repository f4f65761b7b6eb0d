"""Zero-shot concept editing: a BiomedCLIP text direction steers Stable Diffusion inpainting.

* :mod:`.clip` loads BiomedCLIP (open_clip) and computes the text direction ΔT, image
  embeddings (differentiable) and the directional loss ``L_dir = 1 - cos(ΔI, ΔT)``.
* :mod:`.inpaint` loads a diffusers inpainting pipeline and runs CLIP-guided inpainting.
* :mod:`.lora` fine-tunes the inpainting U-Net with LoRA (noise MSE + λ·L_dir).
* :mod:`.directions` checks whether state directions agree across organs.
* :mod:`.tiny` builds tiny random models for tests, the bench and the demo.
"""
from __future__ import annotations

from embodied_transfer.editing.errors import EditError

__all__ = ["EditError"]
