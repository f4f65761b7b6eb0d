"""Hugging Face hub helpers shared by every model loader (grasp VLMs, editing models)."""
from __future__ import annotations

import os
from contextlib import contextmanager


@contextmanager
def hub_offline(offline: bool = True):
    """While active (and ``offline``), the Hugging Face hub client makes no network calls.

    Sets ``HF_HUB_OFFLINE=1`` in the environment and in ``huggingface_hub.constants`` (read
    once at import, so the environment alone is too late), restoring both afterwards.
    """
    if not offline:
        yield
        return
    import huggingface_hub.constants as hub_constants

    old_env, old_const = os.environ.get("HF_HUB_OFFLINE"), hub_constants.HF_HUB_OFFLINE
    os.environ["HF_HUB_OFFLINE"] = "1"
    hub_constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        hub_constants.HF_HUB_OFFLINE = old_const
        if old_env is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = old_env
