"""What the commands write for their users: result files."""
from __future__ import annotations

import json
from pathlib import Path


def write_json(path: str | Path | None, result: dict) -> None:
    """Write ``result`` as indented JSON to ``path`` (its folder made) and say so; nothing
    when no path is given."""
    if not path:
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {path}")
