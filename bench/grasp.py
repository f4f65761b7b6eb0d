"""Grasp reasoning on held-out synthetic tabletop scenes: accuracy, speed, executed grasps.

The held-out scenes are rendered here (seed 1; the shipped models were trained on seeds 0
and 3, the CNN validated on seed 2), so the numbers are on scenes no model saw:

* ``cnn``: the tabletop cnn (``cnn_tabletop``, the tiny VLM's refiner): rectangle accuracy
  on ``plain`` samples (every object's grasps) and ms per image (one torch thread); targets
  >= 90 % at <= 30 ms. The shipped real-image cnn is scored on the same scenes.
* ``tiny-vlm`` with reasoning vs numbers-only (the RT-Grasp ablation): rectangle accuracy
  against the named target's grasps and target accuracy on ``instructed`` samples, the
  models' own grasps (refinement off); target: reasoning beats numbers-only. Both are
  scored with consistent decoding and four mirrored views voting, and on one view; the
  reasoning model also as it writes its answers (one view, free decoding).
* ``tiny-vlm reasoning + cnn refinement`` (the ``tiny-vlm`` backend as shipped): the
  reasoning model's answers with each view's grasp replaced by the cnn's best one within
  10 px and the views voting again weighted by the cnn's quality
  (:mod:`embodied_transfer.grasp.backends.refined`). Target accuracy >= 95 % is checked on
  it (``target_accuracy_ge_95``) and on the reasoning model alone
  (``target_accuracy_ge_95_refine_none``).
* ``trials``: grasps of each backend executed with the parallel-jaw gripper on fresh scenes
  (seed 10000); target >= 80 % success (``executed_target_success_ge_80``: the instructed
  object lifted).
* ``real``: the real Cornell development images (``../shared/data/cornell_dev``, 57
  images of 14 objects, ``bench/cornell_dev_objects.txt``): object-wise 5-fold
  cross-validation of the shipped recipe (the tabletop cnn fine-tuned on the other folds'
  images, batches half real, half randomised renders of seed 20, the fixed workspace
  ``REAL_WORKSPACE``; accuracy with and without depth), and the shipped
  cnn's time per 640×480 image; targets >= 90 % and <= 30 ms. The published figures
  (:data:`PUBLISHED`) stand beside it; they use the label-centred crop a robot never has.
* ``randomised``: held-out scenes under random looks (seed 22, ``grasp export --randomise``:
  lights, table colour and texture, camera height and field of view, image size, object
  shades, flat distractors), a stand-in here for images of another renderer: both cnns'
  rectangle accuracy and the shipped ``tiny-vlm``'s target accuracy and unparseable answers;
  targets >= 90 % (cnn), >= 90 % with <= 5 % unparseable (tiny-vlm).
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from embodied_transfer.grasp.backends import DEFAULT_MODELS
from embodied_transfer.grasp.training import (REAL_BATCH, REAL_EPOCHS, REAL_LR,
                                              REAL_SIM_SCENES, REAL_SIM_SEED, REAL_WORKSPACE)

REPO = Path(__file__).resolve().parents[1]
REAL_DATA = Path(os.environ.get("ET_CORNELL_DEV", REPO.parent / "shared/data/cornell_dev"))
REAL_GROUPS = REPO / "bench" / "cornell_dev_objects.txt"
REAL_FOLDS = 5
#: Published Cornell rectangle accuracies (and one measured outside the repository).
PUBLISHED = {
    "GR-ConvNet RGB-D, image-wise (Kumra et al. 2020; label-centred crop)": 0.977,
    "GR-ConvNet RGB-D, object-wise (Kumra et al. 2020; label-centred crop)": 0.966,
    "GG-CNN (Morrison et al. 2018)": 0.73,
    "public GR-ConvNet checkpoint, held-out images, label-centred crop (issue 33)": 0.767,
    "public GR-ConvNet checkpoint, held-out images, fixed centre crop (issue 33)": 0.744,
}

SCENES = 100            # held-out scenes (about 300 instructed samples)
VLM_SAMPLES = 150       # instructed samples the VLMs answer (each answer is generated text)
TRIALS = 40
TABLE_COLUMNS = (("rect acc", "rectangle_accuracy"), ("target acc", "target_accuracy"),
                 ("ms/image", "ms_per_image"), ("no grasp", "parse_failures"), ("n", "n"),
                 ("success", "success_rate"), ("trials", "trials"))


def _evaluate(dataset, backend, limit=None) -> dict:
    from embodied_transfer.grasp.evaluate import evaluate, summary

    r = summary(evaluate(dataset, backend, limit=limit))
    return {k: r.get(k) for k in ("rectangle_accuracy", "target_accuracy", "ms_per_image",
                                  "parse_failures", "n", "decoding", "views",
                                  "restatements_held")}


RANDOM_SEED = 22          # held-out randomised looks (training renders: seed 20)
RANDOM_CNN = "randomised looks: shipped cnn (every object's grasps)"
RANDOM_VLM = "randomised looks: tiny-vlm as shipped (instructed)"


def _randomised_looks() -> dict:
    """Held-out scenes under random looks (module docstring)."""
    from embodied_transfer.grasp.backends import TABLETOP_CNN, load_backend
    from embodied_transfer.grasp.cornell import read_dataset
    from embodied_transfer.grasp.synthetic import export_dataset

    with tempfile.TemporaryDirectory() as tmp:
        export_dataset(tmp, SCENES, seed=RANDOM_SEED, progress=False, randomise=True)
        plain = read_dataset(Path(tmp) / "plain")
        instructed = read_dataset(Path(tmp) / "instructed")
        return {RANDOM_CNN: _evaluate(plain, load_backend("cnn")),
                "randomised looks: cnn_tabletop (every object's grasps)":
                    _evaluate(plain, load_backend("cnn", TABLETOP_CNN)),
                RANDOM_VLM: _evaluate(instructed, load_backend("tiny-vlm"), VLM_SAMPLES)}


REAL_CV = "real: cnn, object-wise 5-fold CV on cornell_dev"
REAL_TIME = "real: shipped cnn, 640x480 images"


def _real_images() -> dict:
    """Object-wise cross-validation on the real development images (module docstring)."""
    from embodied_transfer.grasp.backends import TABLETOP_CNN, load_backend
    from embodied_transfer.grasp.backends.cnn import CnnBackend, CnnConfig
    from embodied_transfer.grasp.cornell import read_dataset
    from embodied_transfer.grasp.folds import cross_validate_cnn, read_groups
    from embodied_transfer.grasp.synthetic import export_dataset

    data = read_dataset(REAL_DATA)
    config = CnnConfig(**{**vars(CnnBackend.load(TABLETOP_CNN).cfg), "depth_centre": "median"})
    with tempfile.TemporaryDirectory() as tmp:          # randomised renders, training seed
        export_dataset(tmp, REAL_SIM_SCENES, seed=REAL_SIM_SEED, progress=False,
                       randomise=True)
        cv = cross_validate_cnn(data, REAL_FOLDS, groups=read_groups(REAL_GROUPS),
                                sim_data=read_dataset(Path(tmp) / "plain"), init=TABLETOP_CNN,
                                config=config, workspace=REAL_WORKSPACE, epochs=REAL_EPOCHS,
                                batch_size=REAL_BATCH, lr=REAL_LR)
    shipped = load_backend("cnn", workspace=REAL_WORKSPACE)
    timing = _evaluate(data, shipped)       # trained on these images: time only
    return {REAL_CV: {k: cv[k] for k in ("rectangle_accuracy", "rgb_only_accuracy", "n",
                                         "folds")}
            | {"per_fold": [f["rectangle_accuracy"] for f in cv["per_fold"]],
               "on_object": [f["on_object"] for f in cv["per_fold"]]},
            REAL_TIME: {"ms_per_image": timing["ms_per_image"], "n": timing["n"]},
            "real: published (not this package)": PUBLISHED}


def run() -> dict:
    import torch

    from embodied_transfer.grasp.backends import TABLETOP_CNN, load_backend
    from embodied_transfer.grasp.backends.refined import RefinedBackend
    from embodied_transfer.grasp.cornell import read_dataset
    from embodied_transfer.grasp.synthetic import export_dataset, simulate_trials

    torch.set_num_threads(1)
    cases: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        export_dataset(tmp, SCENES, seed=1, progress=False)
        plain = read_dataset(Path(tmp) / "plain")
        instructed = read_dataset(Path(tmp) / "instructed")
        cnn = load_backend("cnn", TABLETOP_CNN)
        cases["cnn (held-out scenes, every object's grasps)"] = _evaluate(plain, cnn)
        cases["cnn (instructed samples, target's grasps)"] = _evaluate(instructed, cnn)
        cases["shipped real-image cnn (held-out scenes, every object's grasps)"] = \
            _evaluate(plain, load_backend("cnn"))
        numbers_only = DEFAULT_MODELS / "tiny_vlm_numbers_only"
        # the tiny VLM's own grasps (the RT-Grasp ablation): refinement off
        vlms = {"tiny-vlm reasoning": load_backend("tiny-vlm", refine="none"),
                "tiny-vlm reasoning, 1 view": load_backend("tiny-vlm", views=1, refine="none"),
                "tiny-vlm reasoning, 1 view, free decoding": load_backend(
                    "tiny-vlm", views=1, decoding="free", refine="none"),
                "tiny-vlm numbers-only": load_backend("tiny-vlm", numbers_only, refine="none"),
                "tiny-vlm numbers-only, 1 view": load_backend("tiny-vlm", numbers_only, views=1,
                                                              refine="none")}
        refined = RefinedBackend(vlms["tiny-vlm reasoning"], cnn)
        vlms["tiny-vlm reasoning + cnn refinement"] = refined
        for name, backend in vlms.items():
            cases[f"{name} (instructed)"] = _evaluate(instructed, backend, VLM_SAMPLES)
        for name, backend in (("cnn", cnn), ("tiny-vlm reasoning", vlms["tiny-vlm reasoning"]),
                              ("tiny-vlm reasoning + cnn refinement", refined)):
            t = simulate_trials(backend, TRIALS, seed=10_000, progress=False)
            cases[f"trials {name}"] = {k: t[k] for k in ("success_rate", "target_success_rate",
                                                         "no_grasp", "trials",
                                                         "ms_per_prediction")}
    cases.update(_real_images())
    cases.update(_randomised_looks())
    cnn_acc = cases["cnn (held-out scenes, every object's grasps)"]
    reasoning = cases["tiny-vlm reasoning (instructed)"]
    numbers = cases["tiny-vlm numbers-only (instructed)"]
    targets = {
        "cnn_ge_90": cnn_acc["rectangle_accuracy"] >= 0.90,
        "cnn_le_30ms": cnn_acc["ms_per_image"] <= 30.0,
        "reasoning_beats_numbers_only":
            reasoning["rectangle_accuracy"] > numbers["rectangle_accuracy"],
        # the tiny-vlm backend as shipped (its grasps refined by the cnn, which also weights
        # the views), and the tiny VLM alone
        "target_accuracy_ge_95":
            (cases["tiny-vlm reasoning + cnn refinement (instructed)"]["target_accuracy"]
             or 0.0) >= 0.95,
        "target_accuracy_ge_95_refine_none": (reasoning["target_accuracy"] or 0.0) >= 0.95,
        "executed_success_ge_80": max(t["success_rate"] for k, t in cases.items()
                                      if k.startswith("trials ")) >= 0.80,
        # the instructed object lifted (the cnn ignores the instruction: any object counts
        # as its success above)
        "executed_target_success_ge_80": max(t["target_success_rate"] for k, t in cases.items()
                                             if k.startswith("trials ")) >= 0.80,
        "real_cnn_ge_90": (cases[REAL_CV]["rectangle_accuracy"] or 0.0) >= 0.90,
        "real_cnn_le_30ms": cases[REAL_TIME]["ms_per_image"] <= 30.0,
        "randomised_cnn_ge_90": (cases[RANDOM_CNN]["rectangle_accuracy"] or 0.0) >= 0.90,
        "randomised_tiny_vlm_ge_90": (cases[RANDOM_VLM]["target_accuracy"] or 0.0) >= 0.90,
        "randomised_tiny_vlm_unparseable_le_5pct":
            cases[RANDOM_VLM]["parse_failures"] <= 0.05 * cases[RANDOM_VLM]["n"],
    }
    return {"cases": cases, "targets": targets,
            "notes": "held-out scenes seed 1, trials seed 10000; one torch thread"}
