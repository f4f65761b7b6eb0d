"""Where the real squat recordings are: ``$ET_REAL_SQUAT_DATA``, else ``../shared/data/real_squat``
beside the repository, else ``/work/shared/data/real_squat`` (this project's machine)."""
from __future__ import annotations

import os
from pathlib import Path

_REPO = Path(__file__).resolve().parents[2]


def real_squat_dir() -> Path:
    """The first of the candidate directories that exists (the first candidate if none)."""
    candidates = [Path(p) for p in [os.environ.get("ET_REAL_SQUAT_DATA")] if p] + [
        _REPO.parent / "shared/data/real_squat", Path("/work/shared/data/real_squat")]
    return next((c for c in candidates if c.is_dir()), candidates[0])
