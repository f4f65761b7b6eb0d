"""Grasp datasets in the Cornell layout (read and write).

One sample ``pcdNNNN`` is a set of files in one directory:

``pcdNNNNr.png``
    the RGB image (required).
``pcdNNNNd.tiff``
    optional depth, float32 (metres for the datasets written here; real Cornell depth made
    by GG-CNN's ``generate_cornell_depth`` is in the point cloud's units). NaN = no reading.
``pcdNNNNcpos.txt``
    the positive grasp rectangles (required): four lines ``"u v"`` (column, row; floats
    such as ``253.000 319.700`` in the real files) per rectangle, corners in Cornell order
    = :meth:`Grasp.corners` (p0→p1 along the closing axis). Real Cornell files hold some
    rectangles with ``NaN`` corners; those are skipped and counted, not an error.
``pcdNNNNinstruction.txt``
    optional: one instruction; then ``cpos`` lists only the named target object's grasps.
``pcdNNNNmeta.json``
    optional: ``{"objects": [ObjectInfo fields...], "target": name | null}`` for reasoning.

The real Cornell dataset keeps its samples in sub-directories ``01`` … ``10``;
:func:`read_dataset` looks in the directory itself and, when that holds no sample, in its
immediate sub-directories. Annotations (small text files) are parsed and checked when the
dataset is opened, so a bad file fails at once with its name and line; images are read only
when a sample is accessed.
"""
from __future__ import annotations

import copy
import json
import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from embodied_transfer.grasp.errors import GraspError
from embodied_transfer.grasp.reasoning import ObjectInfo
from embodied_transfer.grasp.rectangles import Grasp

ID_PATTERN = re.compile(r"^pcd\d+$")
RGB_SUFFIX, DEPTH_SUFFIX, CPOS_SUFFIX = "r.png", "d.tiff", "cpos.txt"
INSTRUCTION_SUFFIX, META_SUFFIX = "instruction.txt", "meta.json"


@dataclass
class CornellSample:
    """One image with its grasp rectangles (and, for reasoning data, instruction and objects)."""

    id: str
    rgb: np.ndarray                         # (H, W, 3) uint8, RGB order
    depth: np.ndarray | None = None         # (H, W) float32 or None
    grasps: list[Grasp] = field(default_factory=list)
    instruction: str | None = None
    objects: list[ObjectInfo] = field(default_factory=list)
    target: str | None = None               # name of the instructed object (in ``objects``)
    skipped_rectangles: int = 0             # NaN rectangles dropped from the cpos file

    @property
    def target_object(self) -> ObjectInfo | None:
        return next((o for o in self.objects if o.name == self.target), None)


@dataclass(frozen=True)
class _Annotation:
    grasps: tuple[Grasp, ...]
    skipped: int
    instruction: str | None
    objects: tuple[ObjectInfo, ...]
    target: str | None


def read_cpos(path: str | Path) -> tuple[list[Grasp], int]:
    """The rectangles in a ``cpos`` file and how many NaN rectangles were skipped.

    Raises :class:`GraspError` naming ``file:line`` for a line that is not two numbers, a
    line count that is not a multiple of 4, or a degenerate rectangle.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise GraspError(f"cannot read '{path}': {exc}") from None
    points: list[tuple[float, float]] = []
    first_line: list[int] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        try:
            if len(parts) != 2:
                raise ValueError
            u, v = float(parts[0]), float(parts[1])
        except ValueError:
            raise GraspError(f"{path}:{number}: expected two numbers 'u v', got {line!r}") \
                from None
        if math.isinf(u) or math.isinf(v):
            raise GraspError(f"{path}:{number}: infinite corner {line!r}")
        if len(points) % 4 == 0:
            first_line.append(number)
        points.append((u, v))
    if len(points) % 4:
        raise GraspError(f"{path}:{first_line[-1]}: {len(points)} corner lines is not a "
                         "multiple of 4 (each rectangle has four 'u v' lines)")
    grasps, skipped = [], 0
    corners = np.asarray(points, dtype=np.float64).reshape(-1, 4, 2)
    for rect, number in zip(corners, first_line):
        if np.isnan(rect).any():
            skipped += 1
            continue
        try:
            grasps.append(Grasp.from_corners(rect))
        except GraspError as exc:
            raise GraspError(f"{path}:{number}: {exc}") from None
    return grasps, skipped


def write_cpos(path: str | Path, grasps: list[Grasp]) -> Path:
    """Write rectangles as Cornell ``cpos`` lines (three decimals, like the real files)."""
    path = Path(path)
    lines = [f"{u:.3f} {v:.3f}" for g in grasps for u, v in g.corners()]
    path.write_text("".join(line + "\n" for line in lines))
    return path


def _read_instruction(path: Path) -> str:
    lines = [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]
    if len(lines) != 1:
        raise GraspError(f"'{path}' must hold exactly one instruction line, "
                         f"found {len(lines)}")
    return lines[0]


def _read_meta(path: Path) -> tuple[tuple[ObjectInfo, ...], str | None]:
    try:
        meta = json.loads(path.read_text())
        objects = tuple(ObjectInfo(str(o["name"]), str(o["category"]), str(o["colour"]),
                                   float(o["u"]), float(o["v"]))
                        for o in meta.get("objects", []))
        target = meta.get("target")
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise GraspError(f"'{path}' is not sample metadata ({{'objects': [...], "
                         f"'target': name}}): {exc!r}") from None
    names = [o.name for o in objects]
    if len(set(names)) != len(names):
        raise GraspError(f"'{path}': object names are not unique: {names}")
    if target is not None and target not in names:
        raise GraspError(f"'{path}': target {target!r} is not one of the objects {names}")
    return objects, target


def _read_annotation(directory: Path, sample_id: str) -> _Annotation:
    cpos = directory / f"{sample_id}{CPOS_SUFFIX}"
    if not cpos.is_file():
        raise GraspError(f"sample '{directory / (sample_id + RGB_SUFFIX)}' has no grasp "
                         f"file '{cpos.name}'")
    grasps, skipped = read_cpos(cpos)
    instr_path = directory / f"{sample_id}{INSTRUCTION_SUFFIX}"
    instruction = _read_instruction(instr_path) if instr_path.is_file() else None
    meta_path = directory / f"{sample_id}{META_SUFFIX}"
    objects, target = _read_meta(meta_path) if meta_path.is_file() else ((), None)
    return _Annotation(tuple(grasps), skipped, instruction, objects, target)


def _find_ids(directory: Path) -> dict[str, Path]:
    """Sample id → the directory holding it (the directory itself, else its sub-dirs)."""
    def scan(d: Path) -> dict[str, Path]:
        found = {}
        for p in d.glob(f"*{RGB_SUFFIX}"):
            sid = p.name[:-len(RGB_SUFFIX)]
            if ID_PATTERN.match(sid) and p.is_file():
                found[sid] = d
        return found

    ids = scan(directory)
    if ids:
        return ids
    for sub in sorted(p for p in directory.iterdir() if p.is_dir()):
        for sid, d in scan(sub).items():
            if sid in ids:
                raise GraspError(f"sample id '{sid}' appears in both '{ids[sid]}' and '{d}'")
            ids[sid] = d
    return ids


class CornellDataset:
    """A Cornell-layout dataset: indexable (``ds[i]`` → :class:`CornellSample`), ``len``,
    iterable, ``ids`` sorted; ``ds.get(id)`` by id. Images are read on access."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        if not self.directory.is_dir():
            raise GraspError(f"no grasp dataset at '{self.directory}' (not a directory)")
        found = _find_ids(self.directory)
        if not found:
            raise GraspError(f"'{self.directory}' holds no Cornell samples "
                             f"('pcdNNNN{RGB_SUFFIX}' files, here or one level down)")
        self.ids: list[str] = sorted(found)
        self._dirs = found
        self._annotations = {sid: _read_annotation(found[sid], sid) for sid in self.ids}
        self._index = {sid: i for i, sid in enumerate(self.ids)}

    @property
    def skipped_rectangles(self) -> int:
        """NaN rectangles skipped over the whole dataset."""
        return sum(a.skipped for a in self._annotations.values())

    @property
    def has_reasoning(self) -> bool:
        """True when some sample carries an instruction with object metadata and a target."""
        return any(a.target is not None and a.objects for a in self._annotations.values())

    def __len__(self) -> int:
        return len(self.ids)

    def __iter__(self) -> Iterator[CornellSample]:
        for i in range(len(self)):
            yield self[i]

    def has_depth(self, i: int) -> bool:
        """True when sample ``i`` has a depth file (without reading it)."""
        sid = self.ids[i]
        return (self._dirs[sid] / f"{sid}{DEPTH_SUFFIX}").is_file()

    def grasps(self, i: int) -> list[Grasp]:
        """The rectangles of sample ``i`` without reading its images."""
        return list(self._annotations[self.ids[i]].grasps)

    def get(self, sample_id: str) -> CornellSample:
        if sample_id not in self._index:
            raise GraspError(f"no sample '{sample_id}' in '{self.directory}'")
        return self[self._index[sample_id]]

    def __getitem__(self, i: int) -> CornellSample:
        if not isinstance(i, (int, np.integer)):
            raise TypeError(f"dataset index must be an int, got {type(i).__name__}")
        sid = self.ids[i]
        d, ann = self._dirs[sid], self._annotations[sid]
        rgb = read_rgb(d / f"{sid}{RGB_SUFFIX}")
        depth_path = d / f"{sid}{DEPTH_SUFFIX}"
        depth = read_depth(depth_path) if depth_path.is_file() else None
        if depth is not None and depth.shape != rgb.shape[:2]:
            raise GraspError(f"'{depth_path}' is {depth.shape[1]}x{depth.shape[0]} but its "
                             f"image is {rgb.shape[1]}x{rgb.shape[0]}")
        return CornellSample(sid, rgb, depth, list(ann.grasps), ann.instruction,
                             list(ann.objects), ann.target, ann.skipped)

    def subset(self, ids) -> "CornellDataset":
        """The samples ``ids`` of this dataset as a dataset of their own (same files), for
        example one fold of a cross-validation."""
        ids = sorted(set(ids))
        missing = [sid for sid in ids if sid not in self._index]
        if missing:
            raise GraspError(f"no sample(s) {', '.join(missing)} in '{self.directory}'")
        view = copy.copy(self)
        view.ids = ids
        view._index = {sid: i for i, sid in enumerate(ids)}
        return view

    def __repr__(self) -> str:
        return f"CornellDataset('{self.directory}', {len(self)} samples)"


def read_dataset(directory: str | Path) -> CornellDataset:
    """Open a Cornell-layout dataset (see the module docstring); GraspError if unusable."""
    return CornellDataset(directory)


def read_rgb(path: str | Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise GraspError(f"cannot read image '{path}'")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_depth(path: str | Path) -> np.ndarray:
    depth = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if depth is None or depth.ndim != 2:
        raise GraspError(f"cannot read depth image '{path}' (expected one float channel)")
    return depth.astype(np.float32, copy=False)


def write_sample(directory: str | Path, sample: CornellSample) -> Path:
    """Write ``sample`` into ``directory`` (created) in the Cornell layout; returns its rgb path.

    Depth is stored as a float32 TIFF (exact round trip, NaN kept); instruction and metadata
    files are written when the sample has them (stale ones from an earlier write are removed).
    """
    directory = Path(directory)
    if not ID_PATTERN.match(sample.id):
        raise GraspError(f"sample id {sample.id!r} is not Cornell-style 'pcdNNNN'")
    rgb = np.asarray(sample.rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise GraspError(f"sample {sample.id}: rgb must be (H, W, 3) uint8, got "
                         f"{rgb.shape} {rgb.dtype}")
    if sample.depth is not None and np.shape(sample.depth) != rgb.shape[:2]:
        raise GraspError(f"sample {sample.id}: depth {np.shape(sample.depth)} does not match "
                         f"the image {rgb.shape[:2]}")
    names = [o.name for o in sample.objects]
    if sample.target is not None and sample.target not in names:
        raise GraspError(f"sample {sample.id}: target {sample.target!r} is not one of the "
                         f"objects {names}")
    if sample.instruction is not None and (not sample.instruction.strip()
                                           or "\n" in sample.instruction.strip()):
        raise GraspError(f"sample {sample.id}: the instruction must be one non-empty line")
    directory.mkdir(parents=True, exist_ok=True)
    base = directory / sample.id
    rgb_path = Path(f"{base}{RGB_SUFFIX}")
    if not cv2.imwrite(str(rgb_path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise GraspError(f"cannot write '{rgb_path}'")
    depth_path = Path(f"{base}{DEPTH_SUFFIX}")
    if sample.depth is not None:
        if not cv2.imwrite(str(depth_path), np.asarray(sample.depth, dtype=np.float32)):
            raise GraspError(f"cannot write '{depth_path}'")
    else:
        depth_path.unlink(missing_ok=True)
    write_cpos(f"{base}{CPOS_SUFFIX}", sample.grasps)
    instr_path = Path(f"{base}{INSTRUCTION_SUFFIX}")
    if sample.instruction is not None:
        instr_path.write_text(sample.instruction.strip() + "\n")
    else:
        instr_path.unlink(missing_ok=True)
    meta_path = Path(f"{base}{META_SUFFIX}")
    if sample.objects or sample.target is not None:
        meta = {"objects": [asdict(o) for o in sample.objects], "target": sample.target}
        meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    else:
        meta_path.unlink(missing_ok=True)
    return rgb_path
