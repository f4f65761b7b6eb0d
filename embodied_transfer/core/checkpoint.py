"""Checkpoints as the package writes them: ``model.safetensors`` + ``config.json``.

The squat models, the tactile aligner and the CNN grasp network share this layout; each
keeps its own config type and error class (the errors name the path and say what is
missing or wrong).
"""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

WEIGHTS, CONFIG = "model.safetensors", "config.json"
T = TypeVar("T")


def save(directory: str | Path, module, config: dict) -> Path:
    """Write ``module``'s weights and ``config`` (JSON) into ``directory``."""
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in module.state_dict().items()}
    save_file(state, str(directory / WEIGHTS))
    (directory / CONFIG).write_text(json.dumps(config, indent=2) + "\n")
    return directory


def read_config(directory: str | Path, parse: Callable[[dict], T], error: type[Exception],
                what: str) -> tuple[dict, T]:
    """``config.json`` of the checkpoint in ``directory`` and ``parse(config)``.

    ``error`` is raised when the file is missing, is not JSON, or ``parse`` fails on it with
    a ValueError, TypeError, KeyError or AttributeError (``what`` names the model kind in
    the message; ``parse`` raises ValueError for a config of another kind).
    """
    path = Path(directory) / CONFIG
    try:
        config = json.loads(path.read_text())
        return config, parse(config)
    except FileNotFoundError:
        raise error(f"no {what} at '{directory}' ({CONFIG} missing)") from None
    except (ValueError, TypeError, KeyError, AttributeError) as exc:   # JSON errors included
        raise error(f"'{path}' is not a {what} config: {exc}") from None


def load_weights(module: Any, directory: str | Path, error: type[Exception]) -> Any:
    """Load ``model.safetensors`` from ``directory`` into ``module`` (strictly)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(directory) / WEIGHTS
    try:
        module.load_state_dict(load_file(str(path)))
    except FileNotFoundError:
        raise error(f"no weights at '{path}'") from None
    except (SafetensorError, RuntimeError, OSError) as exc:
        raise error(f"cannot load '{path}': {exc}") from None
    return module
