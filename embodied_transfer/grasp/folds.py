"""Object-wise folds of a real grasp dataset, and the cross-validation of the ``cnn`` on them.

Images of one object must never be split between training and test: the score would then
measure how well a model remembers that object. Objects come from a groups file (lines
``pcd0100-pcd0105 stapler`` or ``pcd0100 stapler``; ``objects.txt`` in the dataset is read
when no file is given); without one, consecutive ids are taken to show the same object
(the Cornell convention) and the ids are cut into ``k`` contiguous blocks. Objects are dealt
to the folds in id order, round robin.
"""
from __future__ import annotations

import dataclasses
import re
import tempfile
from pathlib import Path

import numpy as np

from embodied_transfer.grasp.errors import GraspError

GROUPS_FILE = "objects.txt"
_LINE = re.compile(r"^\s*(pcd\d{4})(?:\s*-\s*(pcd\d{4}))?\s+(\S.*?)\s*$")


def read_groups(path: str | Path) -> dict[str, str]:
    """id → object name from a groups file (see the module docstring)."""
    groups: dict[str, str] = {}
    for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        m = _LINE.match(line)
        if not m:
            raise GraspError(f"{path}:{number}: expected 'pcdNNNN[-pcdNNNN] object', "
                             f"got {line!r}")
        first, last, name = int(m[1][3:]), int((m[2] or m[1])[3:]), m[3]
        if last < first:
            raise GraspError(f"{path}:{number}: range {m[1]}-{m[2]} runs backwards")
        for n in range(first, last + 1):
            groups[f"pcd{n:04d}"] = name
    return groups


def object_folds(ids: list[str], k: int, groups: dict[str, str] | None = None
                 ) -> list[list[str]]:
    """``ids`` in ``k`` folds, every object's images in one fold (module docstring)."""
    ids = sorted(ids)
    if k < 2:
        raise GraspError(f"--folds needs at least 2 folds, got {k}")
    if groups is None:
        if k > len(ids):
            raise GraspError(f"{k} folds of {len(ids)} images")
        return [list(block) for block in np.array_split(np.array(ids, dtype=object), k)]
    unknown = [sid for sid in ids if sid not in groups]
    if unknown:
        raise GraspError(f"the groups file names no object for {', '.join(unknown[:5])}"
                         + (" ..." if len(unknown) > 5 else ""))
    objects = list(dict.fromkeys(groups[sid] for sid in ids))       # in id order
    if k > len(objects):
        raise GraspError(f"{k} folds of {len(objects)} objects")
    fold_of = {name: i % k for i, name in enumerate(objects)}
    return [[sid for sid in ids if fold_of[groups[sid]] == f] for f in range(k)]


def dataset_groups(dataset, groups_file: str | Path | None = None) -> dict[str, str] | None:
    """The groups of ``dataset``: ``groups_file``, else its ``objects.txt``, else None."""
    path = Path(groups_file) if groups_file else Path(dataset.directory) / GROUPS_FILE
    if groups_file and not path.is_file():
        raise GraspError(f"groups file '{path}' does not exist")
    return read_groups(path) if path.is_file() else None


class WithoutDepth:
    """A dataset's samples with their depth images left out (the RGB-only fallback)."""

    def __init__(self, dataset) -> None:
        self.dataset, self.ids = dataset, dataset.ids

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int):
        return dataclasses.replace(self.dataset[i], depth=None)


def cross_validate_cnn(dataset, k: int, *, groups: dict[str, str] | None = None,
                       sim_data=None, init=None, config=None, workspace=None,
                       epochs: int = 60, batch_size: int = 8, lr: float = 5e-4,
                       seed: int = 0, progress: bool = False) -> dict:
    """Object-wise ``k``-fold cross-validation of ``cnn`` fine-tuning on a real dataset.

    Each fold: :func:`~embodied_transfer.grasp.cnn_train.train_cnn` on the other folds'
    images (``real_data``, seen through ``workspace``; with ``sim_data``, every batch half
    simulated) starting from ``init``, then :func:`~embodied_transfer.grasp.evaluate.evaluate`
    on the fold's images through the same workspace, with their depth and, when the model
    answers without depth, without it (``rgb_only_accuracy``). Returns the pooled rectangle
    accuracies, the per-fold results and the folds.
    """
    from embodied_transfer.grasp.cnn_train import train_cnn
    from embodied_transfer.grasp.backends.cnn import CnnBackend
    from embodied_transfer.grasp.evaluate import evaluate

    folds = object_folds(list(dataset.ids), k, groups)
    per_fold, correct, total, rgb_correct = [], 0, 0, 0
    for f, test_ids in enumerate(folds):
        train_ids = [sid for sid in dataset.ids if sid not in set(test_ids)]
        with tempfile.TemporaryDirectory() as tmp:
            train_cnn(sim_data, tmp, real_data=dataset.subset(train_ids),
                      real_workspace=workspace, init=init, config=config, epochs=epochs,
                      batch_size=batch_size, lr=lr, seed=seed, progress=progress)
            backend = CnnBackend.load(tmp)
        backend.set_workspace(workspace)
        result = evaluate(dataset.subset(test_ids), backend)
        n = len(result["ids"])
        hits = int(round((result["rectangle_accuracy"] or 0.0) * n))
        correct, total = correct + hits, total + n
        rgb = None
        if backend.cfg.rgb_fallback or not backend.cfg.use_depth:
            rgb = evaluate(WithoutDepth(dataset.subset(test_ids)), backend)["rectangle_accuracy"]
            rgb_correct += int(round((rgb or 0.0) * n))
        per_fold.append({"fold": f, "test_ids": test_ids, "n": n,
                         "rectangle_accuracy": result["rectangle_accuracy"],
                         "rgb_only_accuracy": rgb, "on_object": result.get("on_object")})
    rgb_scored = all(f["rgb_only_accuracy"] is not None for f in per_fold)
    return {"folds": k, "object_wise": groups is not None, "n": total,
            "rectangle_accuracy": correct / total if total else None,
            "rgb_only_accuracy": rgb_correct / total if total and rgb_scored else None,
            "per_fold": per_fold}
