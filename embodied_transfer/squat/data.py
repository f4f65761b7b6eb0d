"""Where the real squat recordings are: ``$ET_REAL_SQUAT_DATA``, else
``../shared/data/real_squat`` beside the repository checkout."""
from __future__ import annotations

import os
from pathlib import Path

_REPO = Path(__file__).resolve().parents[2]


def real_squat_dir() -> Path:
    """``$ET_REAL_SQUAT_DATA`` when set, else ``shared/data/real_squat`` beside the checkout."""
    override = os.environ.get("ET_REAL_SQUAT_DATA")
    return Path(override) if override else _REPO.parent / "shared/data/real_squat"
