"""Shared tiny models for the editing tests (built once per session, cached on disk)."""
from __future__ import annotations

import functools
import tempfile
from pathlib import Path

import torch


@functools.lru_cache(maxsize=1)
def tiny_models() -> tuple[Path, Path]:
    """(clip_dir, inpaint_dir) of tiny random models, built from config via the real code."""
    from embodied_transfer.editing.tiny import build_tiny_models

    torch.set_num_threads(1)
    root = Path(tempfile.mkdtemp(prefix="editing_tiny_"))
    return build_tiny_models(root)


@functools.lru_cache(maxsize=1)
def loaded():
    """(clip, pipe) loaded back through the real loaders."""
    from embodied_transfer.editing.clip import load_clip
    from embodied_transfer.editing.inpaint import load_inpaint

    clip_dir, inpaint_dir = tiny_models()
    return load_clip(str(clip_dir), "cpu"), load_inpaint(str(inpaint_dir), "cpu")
