"""``grasp train``: Cornell-layout datasets → a trained backend (cnn, tiny-vlm, or a vlm LoRA).

Reasoning-tuning examples come from instructed samples (instruction + target metadata): the
answer is the template reasoning about the target followed by one of its ground-truth
grasps, always the same one for a sample (:func:`answer_grasp`), so the numeric target is
not ambiguous; ``--numbers-only`` drops the reasoning (the RT-Grasp ablation).
"""
from __future__ import annotations

import math
from pathlib import Path

from embodied_transfer.grasp.errors import GraspError
from embodied_transfer.grasp.rectangles import Grasp

#: Defaults per backend: epochs, batch size, learning rate.
DEFAULTS = {"cnn": (20, 16, 2e-3), "tiny-vlm": (20, 8, 2e-3), "vlm": (2, 4, 2e-4)}


def answer_grasp(grasps: list[Grasp], u: float, v: float) -> Grasp:
    """The grasp an answer names: nearest the object's centre, then the narrowest, then the
    smallest angle (a deterministic choice among equivalent ground truths)."""
    if not grasps:
        raise GraspError("a training sample has no grasp for its target")
    return min(grasps, key=lambda g: (round(math.hypot(g.x - u, g.y - v)), round(g.width),
                                      abs(g.theta)))


def reasoning_examples(datasets, reasoning: bool = True) -> list[tuple]:
    """(rgb, instruction, answer) for every instructed sample with target metadata."""
    from embodied_transfer.grasp.reasoning import answer

    examples = []
    for dataset in datasets:
        for sample in dataset:
            target = sample.target_object
            if sample.instruction is None or target is None:
                continue
            h, w = sample.rgb.shape[:2]
            grasp = answer_grasp(sample.grasps, target.u, target.v)
            examples.append((sample.rgb, sample.instruction,
                             answer(target, grasp, w, h, reasoning=reasoning,
                                    others=len(sample.objects) - 1)))
    if not examples:
        raise GraspError("no instructed sample with target metadata (pcdNNNNinstruction.txt "
                         "and pcdNNNNmeta.json) in the dataset(s)")
    return examples


def train(args) -> Path:
    """Run the training the parsed ``grasp train`` arguments ask for; returns the output dir."""
    from embodied_transfer.grasp.cornell import read_dataset

    datasets = [read_dataset(d) for d in args.dataset]
    epochs, batch, lr = DEFAULTS[args.backend]
    epochs = args.epochs or epochs
    batch = args.batch_size or batch
    lr = args.lr or lr
    out = Path(args.out)
    if args.backend == "cnn":
        from embodied_transfer.grasp.backends.cnn import train_cnn

        train_cnn(datasets, out, epochs=epochs, batch_size=batch, seed=args.seed, lr=lr,
                  val_data=read_dataset(args.val) if args.val else None)
        return out
    from embodied_transfer.grasp.vlm_train import build_tiny_vlm, train_vlm

    examples = reasoning_examples(datasets, reasoning=not args.numbers_only)
    if args.backend == "tiny-vlm":
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            base = build_tiny_vlm(Path(tmp) / "init", seed=args.seed)
            train_vlm(base, examples, out, lora=False, epochs=epochs, batch_size=batch, lr=lr,
                      seed=args.seed)
        return out
    if not args.model:
        raise GraspError("grasp train --backend vlm needs --model (a LLaVA directory or hub id)")
    train_vlm(args.model, examples, out, lora=True, epochs=epochs, batch_size=batch, lr=lr,
              seed=args.seed, allow_download=args.allow_download)
    return out
