"""``grasp train``: Cornell-layout datasets → a trained backend (cnn, tiny-vlm, or a vlm LoRA).

Reasoning-tuning examples come from instructed samples (instruction + target metadata): the
answer is the template reasoning (every object of the scene and where, then the target, its
shape and how it is grasped) followed by one of the target's ground-truth grasps, always the
same one for a sample (:func:`answer_grasp`), so the numeric target is not ambiguous;
``--numbers-only`` drops the reasoning (the RT-Grasp ablation). ``tiny-vlm`` trains on
every sample mirrored four ways (:func:`flip_scene`), both with and without reasoning.
"""
from __future__ import annotations

import json
import math
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from embodied_transfer.grasp.errors import GraspError
from embodied_transfer.grasp.mirroring import FLIPS, flip_scene
from embodied_transfer.grasp.rectangles import Grasp

#: Defaults per backend: epochs, batch size, learning rate.
DEFAULTS = {"cnn": (20, 16, 2e-3), "tiny-vlm": (5, 8, 2e-3), "vlm": (2, 4, 2e-4)}
#: tiny-vlm: train on every instructed sample mirrored four ways (:func:`flip_scene`).
TINY_VLM_FLIPS = True
#: tiny-vlm image normalisation: the training images' mean colour (the table's, so the
#: padding and the table are near zero) and this spread for every channel.
TINY_VLM_IMAGE_STD = 0.25
#: tiny-vlm: epochs of vision-tower pre-training (:mod:`~embodied_transfer.grasp.vision_pretrain`)
#: before reasoning tuning with the tower frozen (0 trains the tower end to end instead), the
#: random shift of its images (processed pixels), the tower's depth, and the epochs with every
#: weight trained after the frozen ones (at half the rate). The shipped recipe (grasp
#: MODEL_CARD, session 9): stage 0, 5 frozen epochs, 2 unfrozen.
TINY_VLM_VISION_EPOCHS = 20
TINY_VLM_VISION_SHIFT = 8
TINY_VLM_VISION_LAYERS = 4
TINY_VLM_UNFREEZE_EPOCHS = 2
#: tiny-vlm tokenizer: every whole number 0-999 one token (False: single digits).
TINY_VLM_NUMBER_TOKENS = False
#: cnn on real camera images (``--real``): the recipe chosen by object-wise 5-fold
#: cross-validation on the real development images (grasp MODEL_CARD): the workspace the
#: network sees (fractions of the image; for the Cornell camera, the table's centre), the
#: epochs over the real images plus :data:`REAL_SIM_SCENES` domain-randomised tabletop
#: renders of seed :data:`REAL_SIM_SEED` (every batch half real, half rendered, so the
#: renders are not forgotten), the learning rate and the batch size.
REAL_WORKSPACE = (0.2, 0.2, 0.8, 0.8)
REAL_SIM_SCENES = 300
REAL_SIM_SEED = 20          # `grasp export --randomise`: the randomised training seed
REAL_EPOCHS = 21
REAL_LR = 5e-4
REAL_BATCH = 8
#: The reasoning's answer format (:data:`~embodied_transfer.grasp.reasoning.ANSWER_FORMATS`).
ANSWER_FORMAT = "restate"


def answer_grasp(grasps: list[Grasp], u: float, v: float) -> Grasp:
    """The grasp an answer names: nearest the object's centre, then the narrowest, then the
    smallest angle (a deterministic choice among equivalent ground truths)."""
    if not grasps:
        raise GraspError("a training sample has no grasp for its target")
    return min(grasps, key=lambda g: (round(math.hypot(g.x - u, g.y - v)), round(g.width),
                                      abs(g.theta)))


def reasoning_examples(datasets, reasoning: bool = True, flips: bool = False,
                       answer_format: str = "restate") -> list[tuple]:
    """(rgb, instruction, answer) for every instructed sample with target metadata.

    The reasoning lists every object of the sample's metadata (:func:`answer`); ``flips``
    adds the sample mirrored left-right, top-bottom and both (:func:`flip_scene`), four
    examples per sample.
    """
    from embodied_transfer.grasp.reasoning import answer

    examples = []
    for dataset in datasets:
        for sample in dataset:
            target = sample.target_object
            if sample.instruction is None or target is None:
                continue
            h, w = sample.rgb.shape[:2]
            grasp = answer_grasp(sample.grasps, target.u, target.v)
            index = [o.name for o in sample.objects].index(target.name)
            for horizontal, vertical in (FLIPS if flips else FLIPS[:1]):
                rgb, objects, g = flip_scene(sample.rgb, list(sample.objects), grasp,
                                             horizontal, vertical)
                examples.append((rgb, sample.instruction,
                                 answer(objects[index], g, w, h, reasoning=reasoning,
                                        objects=objects, answer_format=answer_format)))
    if not examples:
        raise GraspError("no instructed sample with target metadata (pcdNNNNinstruction.txt "
                         "and pcdNNNNmeta.json) in the dataset(s)")
    return examples


def mean_colour(examples, limit: int = 200) -> list[float]:
    """The mean RGB (0..1) of the first ``limit`` distinct training images."""
    seen, total, n = set(), np.zeros(3), 0
    for rgb, _, _ in examples:
        if id(rgb) in seen or len(seen) >= limit:
            continue
        seen.add(id(rgb))
        total += np.asarray(rgb, np.float64).reshape(-1, 3).mean(axis=0)
        n += 1
    return [round(float(c), 3) for c in total / max(n, 1) / 255.0]


@dataclass(kw_only=True)
class GraspTrainConfig:
    """What ``grasp train`` trains (its options; ``embodied-transfer grasp train --help``).

    None (and "" for ``model`` and ``init``) means "not given": the backend's
    :data:`DEFAULTS` for ``epochs``, ``batch_size`` and ``lr``, the ``TINY_VLM_*`` constants
    for the tiny-vlm options and :data:`ANSWER_FORMAT` (or, with ``init``, the model's own)
    for ``answer_format``.
    """

    backend: str                            # "cnn", "tiny-vlm" or "vlm"
    dataset: list[str | Path] = field(default_factory=list)   # training dataset dir(s)
    val: str | Path | None = None           # cnn: picks the best epoch; tiny-vlm: stage 0 score
    out: str | Path                         # output model (or adapter) directory
    model: str = ""                         # vlm: base model dir or hub id to LoRA-tune
    allow_download: bool = False
    numbers_only: bool = False              # tiny-vlm/vlm: answers without reasoning
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    seed: int = 0
    vision_epochs: int | None = None        # tiny-vlm: vision-tower pre-training epochs
    vision_layers: int | None = None        # tiny-vlm: layers of the vision tower
    vision_dataset: list[str | Path] | None = None  # tiny-vlm: more scenes for stage 0
    unfreeze_epochs: int | None = None      # tiny-vlm: epochs with every weight trained after
    init: str | Path = ""                   # tiny-vlm: continue it; cnn: start from it
    number_tokens: bool | None = None       # tiny-vlm: whole numbers 0-999 one token each
    answer_format: str | None = None        # "restate" or "scan"
    real: list[str | Path] = field(default_factory=list)  # cnn: real camera dataset dir(s)
    workspace: tuple | None = None          # cnn: the real images' workspace (fractions)
    depth_centre: str | None = None         # cnn: "mean" or "median" depth normalisation


def _or(value, default):
    """``value`` unless it was not given (None)."""
    return default if value is None else value


def train(config: GraspTrainConfig) -> Path:
    """Run the training ``config`` asks for; returns the output directory."""
    from embodied_transfer.grasp.cornell import read_dataset

    answer_format, init_meta = _or(config.answer_format, ANSWER_FORMAT), {}
    if config.init and config.backend != "cnn":
        answer_format, init_meta = _check_init_args(config)
    if config.backend != "cnn" and (config.real or config.workspace or config.depth_centre):
        raise GraspError("--real, --workspace and --depth-centre apply to --backend cnn only")
    if not config.dataset and not (config.backend == "cnn" and config.real):
        raise GraspError("grasp train needs --dataset (or, for cnn, --real)")
    datasets = [read_dataset(d) for d in config.dataset]
    epochs, batch, lr = DEFAULTS[config.backend]
    epochs = config.epochs or epochs
    batch = config.batch_size or batch
    lr = config.lr or lr
    out = Path(config.out)
    if config.backend == "cnn":
        from embodied_transfer.grasp.backends.cnn import CnnBackend, CnnConfig
        from embodied_transfer.grasp.cnn_train import train_cnn

        start = CnnBackend.load(config.init) if config.init else None
        cnn_config = None
        if config.depth_centre:
            base = asdict(start.cfg) if start is not None else {}
            cnn_config = CnnConfig(**{**base, "depth_centre": config.depth_centre})
        train_cnn(datasets, out, epochs=epochs, batch_size=batch, seed=config.seed, lr=lr,
                  val_data=read_dataset(config.val) if config.val else None,
                  real_data=[read_dataset(d) for d in config.real],
                  real_workspace=config.workspace, init=config.init or None,
                  config=cnn_config)
        return out
    from embodied_transfer.grasp.vlm_train import build_tiny_vlm, train_vlm

    if config.backend == "tiny-vlm":
        from embodied_transfer.grasp.parallel import processes
        from embodied_transfer.grasp.vision_pretrain import (CURVES_FILE, RESULT_FILE,
                                                             pretrain_vision, scenes_of)

        if processes() > 1:
            raise GraspError("the tiny VLM's staged recipe trains in one process (about "
                             "95 min on one core); launch data-parallel training for "
                             "--backend cnn or vlm (LoRA)")

        examples = reasoning_examples(datasets, reasoning=not config.numbers_only,
                                      flips=TINY_VLM_FLIPS, answer_format=answer_format)
        if config.init:
            return _continue(Path(config.init), init_meta, examples, out, epochs, batch, lr,
                             config.seed, answer_format, config.numbers_only)
        vision_epochs = _or(config.vision_epochs, TINY_VLM_VISION_EPOCHS)
        unfreeze = _or(config.unfreeze_epochs, TINY_VLM_UNFREEZE_EPOCHS) if vision_epochs else 0
        with tempfile.TemporaryDirectory() as tmp:
            base = build_tiny_vlm(Path(tmp) / "init", seed=config.seed,
                                  image_mean=mean_colour(examples),
                                  image_std=(TINY_VLM_IMAGE_STD,) * 3,
                                  vision_layers=config.vision_layers or TINY_VLM_VISION_LAYERS,
                                  number_tokens=_or(config.number_tokens, TINY_VLM_NUMBER_TOKENS))
            if vision_epochs:
                val = scenes_of([read_dataset(config.val)], flips=False) if config.val else None
                extra = [read_dataset(d) for d in config.vision_dataset or ()]
                pretrain_vision(base, scenes_of(datasets + extra, flips=TINY_VLM_FLIPS),
                                val_scenes=val, epochs=vision_epochs,
                                shift=TINY_VLM_VISION_SHIFT, seed=config.seed)
            frozen = Path(tmp) / "frozen" if unfreeze else out
            train_vlm(base, examples, frozen, lora=False, epochs=epochs, batch_size=batch,
                      lr=lr, seed=config.seed, freeze_vision=bool(vision_epochs))
            if unfreeze:
                train_vlm(frozen, examples, out, lora=False, epochs=unfreeze,
                          batch_size=batch, lr=lr / 2, seed=config.seed)
                for suffix in (".json", ".png"):
                    shutil.copy(frozen / f"training_curves{suffix}",
                                out / f"training_curves_frozen{suffix}")
            for name in (RESULT_FILE, CURVES_FILE) if vision_epochs else ():
                shutil.copy(base / name, out / name)
        _record(out, {"answer_format": answer_format, "numbers_only": config.numbers_only,
                      "vision_epochs": vision_epochs, "frozen_epochs": epochs if vision_epochs
                      else 0, "unfreeze_epochs": unfreeze})
        return out
    examples = reasoning_examples(datasets, reasoning=not config.numbers_only,
                                  answer_format=answer_format)
    if not config.model:
        raise GraspError("grasp train --backend vlm needs --model (a LLaVA directory or hub id)")
    train_vlm(config.model, examples, out, lora=True, epochs=epochs, batch_size=batch, lr=lr,
              seed=config.seed, allow_download=config.allow_download)
    _record(out, {"answer_format": answer_format, "numbers_only": config.numbers_only})
    return out


#: Curve files of the earlier steps that a continued tiny VLM keeps as they are.
CARRIED_CURVES = ("vision_pretraining.*", "training_curves_*.*")


def _carry_curves(init: Path, out: Path, step: int) -> None:
    """Copy ``init``'s earlier curves into ``out``; its own last curves become
    ``training_curves_step{step}.*`` (``recipe_steps[step - 1]`` describes that step)."""
    for pattern in CARRIED_CURVES:
        for src in init.glob(pattern):
            shutil.copy(src, out / src.name)
    for suffix in (".json", ".png"):
        if (init / f"training_curves{suffix}").is_file():
            shutil.copy(init / f"training_curves{suffix}",
                        out / f"training_curves_step{step}{suffix}")


#: ``grasp train`` options that shape a new tiny VLM; a continued one (``--init``) keeps its own.
NEW_MODEL_OPTIONS = {"vision_epochs": "--vision-epochs", "vision_layers": "--vision-layers",
                     "vision_dataset": "--vision-dataset", "unfreeze_epochs": "--unfreeze-epochs",
                     "number_tokens": "--number-tokens", "val": "--val", "model": "--model"}


def _check_init_args(config: GraspTrainConfig) -> tuple[str, dict]:
    """``--init`` continues a tiny VLM as it is: refuse options it would silently ignore or
    answers of another kind than it was trained on; returns the answer format to use and the
    model's ``grasp_vlm.json``."""
    from embodied_transfer.grasp.backends.vlm import META_FILE, read_meta

    if config.backend != "tiny-vlm":
        raise GraspError(f"--init continues a tiny VLM; it does not apply to --backend "
                         f"{config.backend}")
    given = [flag for attr, flag in NEW_MODEL_OPTIONS.items()
             if getattr(config, attr) not in (None, "", [])]
    if given:
        raise GraspError(f"--init {config.init}: {', '.join(given)} shape a new model and cannot "
                         f"change a trained one; leave them out")
    before = read_meta(config.init)
    if not before:
        raise GraspError(f"--init {config.init}: not a tiny VLM made by grasp train "
                         f"(no {META_FILE})")
    trained = before.get("answer_format", ANSWER_FORMAT)
    if config.answer_format not in (None, trained):
        raise GraspError(f"--init {config.init} was trained on {trained!r} answers, not "
                         f"{config.answer_format!r}")
    if before.get("numbers_only", config.numbers_only) != config.numbers_only:
        kind = "numbers-only" if before["numbers_only"] else "reasoning"
        raise GraspError(f"--init {config.init} was trained on {kind} answers: "
                         f"{'add' if before['numbers_only'] else 'leave out'} --numbers-only")
    return trained, before


def _continue(init: Path, before: dict, examples, out: Path, epochs: int, batch: int,
              lr: float, seed: int, answer_format: str, numbers_only: bool) -> Path:
    """``grasp train --init``: more epochs of every weight of a trained tiny VLM (``before``:
    its ``grasp_vlm.json``)."""
    from embodied_transfer.grasp.vlm_train import train_vlm

    train_vlm(init, examples, out, lora=False, epochs=epochs, batch_size=batch, lr=lr, seed=seed)
    steps = before.get("recipe_steps", []) + [{k: before[k] for k in (
        "epochs", "lr", "vision_frozen", "final_epoch_loss") if k in before}]
    _carry_curves(init, out, len(steps))
    keep = {k: before[k] for k in ("vision_epochs", "frozen_epochs", "unfreeze_epochs")
            if k in before}
    _record(out, {**keep, "answer_format": answer_format,
                  "numbers_only": numbers_only, "recipe_steps": steps,
                  "continued_epochs": epochs})
    return out


def _record(out: Path, recipe: dict) -> None:
    """Add the training recipe's choices to the model's ``grasp_vlm.json`` (main process)."""
    from embodied_transfer.grasp.parallel import main_process
    from embodied_transfer.grasp.vlm_train import META_FILE

    if not main_process():
        return
    meta = json.loads((out / META_FILE).read_text())
    (out / META_FILE).write_text(json.dumps({**meta, **recipe}, indent=1) + "\n")
