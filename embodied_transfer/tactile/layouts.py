"""Sensor layouts: data files mapping each taxel to a place on the canonical hand surface.

A layout file ``layouts/<id>.json`` holds, per taxel in reading order, its segment, its
segment-normalised position ``(s, t)``, its UV coordinates and its sensing area (mm²).
:func:`build_layouts` regenerates the shipped files deterministically:

* ``glove_137``: a haptic glove, coarse (≈12 mm pitch) over palm, phalanges and thumb;
* ``robot_hand_1062``: a robot hand with dense pads on fingertips, middle and proximal
  phalanges and the palm, with bare gaps over the joints and the pad edges;
* ``fingertips_5x40``: five fingertip sensors of 5×8 taxels, nothing elsewhere;
* ``shadow_palmar_62``: the Shadow Hand's 62 palmar touch sites in MuJoCo (read from the
  hand's model files, :func:`~embodied_transfer.tactile.physical.shadow_taxels`);
* ``shadow_grid_600``: the Shadow Hand with MuJoCo touch grids on its phalanges and palm
  (:func:`~embodied_transfer.tactile.physical.grid_taxels`).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from embodied_transfer.tactile.errors import TactileError
from embodied_transfer.tactile.surface import CANVAS_MM, segment, segments

LAYOUT_DIR = Path(__file__).resolve().parent / "layouts"
GLOVE, ROBOT, FINGERTIPS = "glove_137", "robot_hand_1062", "fingertips_5x40"
SHADOW, SHADOW_GRID = "shadow_palmar_62", "shadow_grid_600"


@dataclass(frozen=True)
class Layout:
    """One sensor layout (taxels in reading order)."""

    id: str
    description: str
    segment: np.ndarray        # (N,) int: index into surface.segments()
    st: np.ndarray             # (N, 2) segment-normalised position
    uv: np.ndarray             # (N, 2) canonical UV coordinates
    area: np.ndarray           # (N,) sensing area, mm²
    digest: str                # sha256 of the file (checkpoints record it)

    @property
    def size(self) -> int:
        return len(self.uv)

    @property
    def group(self) -> np.ndarray:
        """(N,) group (thumb … little, palm) of each taxel."""
        return np.array([segments()[i].group for i in self.segment])

    @property
    def mm(self) -> np.ndarray:
        """(N, 2) positions in surface millimetres."""
        return self.uv * CANVAS_MM


def available() -> list[str]:
    """Ids of the shipped layouts."""
    return sorted(p.stem for p in LAYOUT_DIR.glob("*.json"))


@lru_cache(maxsize=16)
def load_layout(layout_id: str) -> Layout:
    """The layout ``layout_id`` (a shipped id or a path to a layout JSON file)."""
    path = Path(layout_id) if layout_id.endswith(".json") else LAYOUT_DIR / f"{layout_id}.json"
    try:
        raw = path.read_bytes()
        data = json.loads(raw)
        names = [s.name for s in segments()]
        seg = np.array([names.index(n) for n in data["segment"]], np.int64)
        st = np.asarray(data["st"], np.float64).reshape(-1, 2)
        uv = np.asarray(data["uv"], np.float64).reshape(-1, 2)
        area = np.asarray(data["area_mm2"], np.float64)
    except FileNotFoundError:
        raise TactileError(f"unknown tactile layout {layout_id!r} (known: "
                           f"{', '.join(available())})") from None
    except (json.JSONDecodeError, KeyError, ValueError, TypeError) as exc:
        raise TactileError(f"'{path}' is not a tactile layout: {exc}") from None
    if not (len(seg) == len(st) == len(uv) == len(area)) or len(seg) == 0:
        raise TactileError(f"'{path}': segment, st, uv and area_mm2 differ in length")
    return Layout(data.get("id", path.stem), data.get("description", ""), seg, st, uv, area,
                  hashlib.sha256(raw).hexdigest())


# --- generation of the shipped files ---------------------------------------------------

def _grid(name: str, cols: int, rows: int, s_range=(0.1, 0.9), t_range=(0.1, 0.9)):
    """A cols×rows grid of taxels on segment ``name`` (each taxel's area: its cell)."""
    seg = segment(name)
    s = np.linspace(*s_range, cols) if cols > 1 else np.array([np.mean(s_range)])
    t = np.linspace(*t_range, rows) if rows > 1 else np.array([np.mean(t_range)])
    ss, tt = np.meshgrid(s, t)
    cell = ((s_range[1] - s_range[0]) * seg.width / max(cols - 1, 1)
            * (t_range[1] - t_range[0]) * seg.height / max(rows - 1, 1)) * CANVAS_MM ** 2
    return [(name, float(a), float(b), cell) for a, b in zip(ss.ravel(), tt.ravel())]


FINGERS = ("index", "middle", "ring", "little")


def _glove() -> list:
    taxels = []
    for f in FINGERS:
        taxels += _grid(f"{f}_distal", 2, 3, (0.25, 0.75), (0.2, 0.8))
        taxels += _grid(f"{f}_middle", 2, 2, (0.25, 0.75), (0.25, 0.75))
        taxels += _grid(f"{f}_proximal", 2, 2, (0.25, 0.75), (0.2, 0.8))
    taxels += _grid("thumb_distal", 2, 3, (0.25, 0.75), (0.2, 0.8))
    taxels += _grid("thumb_proximal", 2, 2, (0.25, 0.75), (0.2, 0.8))
    palm = _grid("palm", 8, 9, (0.06, 0.94), (0.05, 0.95))
    return taxels + palm[1:]         # 66 + 71 = 137 (no taxel in the wrist-side thumb corner)


def _robot() -> list:
    taxels = []
    for f in FINGERS:
        taxels += _grid(f"{f}_distal", 6, 10, (0.1, 0.9), (0.08, 0.92))
        taxels += _grid(f"{f}_middle", 5, 6, (0.15, 0.85), (0.2, 0.8))
        taxels += _grid(f"{f}_proximal", 5, 8, (0.15, 0.85), (0.2, 0.8))
    taxels += _grid("thumb_distal", 6, 10, (0.1, 0.9), (0.08, 0.92))
    taxels += _grid("thumb_proximal", 5, 8, (0.15, 0.85), (0.2, 0.8))
    taxels += _grid("palm", 26, 17, (0.06, 0.94), (0.08, 0.92))
    return taxels                    # 4·130 + 100 + 442 = 1062


def _fingertips() -> list:
    taxels = []
    for f in ("thumb",) + FINGERS:
        taxels += _grid(f"{f}_distal", 5, 8, (0.12, 0.88), (0.1, 0.9))
    return taxels                    # 5·40 = 200


def _shadow() -> list:
    from embodied_transfer.tactile.physical import shadow_taxels

    return shadow_taxels()


def _shadow_grid() -> list:
    from embodied_transfer.tactile.physical import grid_taxels

    return grid_taxels()


LAYOUT_SPECS = {
    GLOVE: (_glove, "haptic glove: 137 taxels, ≈12 mm pitch over palm, phalanges and thumb"),
    ROBOT: (_robot, "robot hand: 1062 taxels on fingertip, middle/proximal phalanx and palm "
                    "pads (≈2-5 mm pitch), bare over joints"),
    FINGERTIPS: (_fingertips, "five fingertip sensors, 5x8 taxels each (200), nothing else"),
    SHADOW: (_shadow, "Shadow Hand in MuJoCo: its 62 palmar touch sites (pads, tips, palm; "
                      "8-20 mm each)"),
    SHADOW_GRID: (_shadow_grid, "Shadow Hand in MuJoCo with touch grids: 600 taxels on its "
                                "phalanges and palm (1.5-6 mm pitch)"),
}


def build_layouts(directory: Path = LAYOUT_DIR) -> list[Path]:
    """Write the shipped layout files (deterministic)."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for layout_id, (make, description) in LAYOUT_SPECS.items():
        taxels = make()
        uv = [segment(n).to_uv(s, t).round(6).tolist() for n, s, t, _ in taxels]
        data = {"id": layout_id, "description": description, "count": len(taxels),
                "segment": [n for n, *_ in taxels],
                "st": [[round(s, 6), round(t, 6)] for _, s, t, _ in taxels],
                "uv": uv, "area_mm2": [round(a, 3) for *_, a in taxels]}
        path = directory / f"{layout_id}.json"
        path.write_text(json.dumps(data, separators=(",", ":")) + "\n")
        paths.append(path)
    load_layout.cache_clear()
    return paths


if __name__ == "__main__":
    for p in build_layouts():
        print(p, load_layout(p.stem).size)
