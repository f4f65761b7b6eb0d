"""Training of the ``cnn`` grasp backend (:mod:`embodied_transfer.grasp.backends.cnn`).

* targets (GG-CNN style, :func:`grasp_maps`): quality 1 inside the centre third of each
  rectangle along its closing axis (full jaw size across), cos 2θ and sin 2θ there, and the
  opening divided by ``width_scale`` × ``input_size``, in the network's input pixels (the
  rectangles are moved there by the same :func:`~embodied_transfer.grasp.backends.cnn.preprocess`
  the backend runs);
* augmentation (:func:`augment`): a random rotation, mirror and zoom of input and rectangles;
* loss: smooth-L1 on the four maps (angle and width only where graspable, see
  :func:`map_loss`);
* :func:`train_cnn`: Adam with a cosine learning rate, the best epoch on validation data
  kept, curves written beside the model (:func:`plot_history`).

The backend does not import this module; ``grasp train --backend cnn``
(:func:`embodied_transfer.grasp.training.train`) does.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Sequence

import cv2
import numpy as np
import torch
from torch.nn import functional as F
from tqdm import tqdm

from embodied_transfer.grasp.backends.cnn import CnnBackend, CnnConfig, GraspNet, preprocess
from embodied_transfer.grasp.errors import GraspError
from embodied_transfer.grasp.parallel import DataParallel
from embodied_transfer.grasp.rectangles import Grasp


def grasp_maps(grasps: Iterable[Grasp], size: int, width_norm: float) -> np.ndarray:
    """GG-CNN training targets (4, size, size): quality, cos 2θ, sin 2θ, width/width_norm.

    A rectangle marks the pixels whose centres lie within the middle third of its opening
    along the closing axis and within its jaw across it (at least the centre pixel); later
    rectangles overwrite earlier ones where they overlap.
    """
    maps = np.zeros((4, size, size), np.float32)
    for g in grasps:
        half_along = max(g.width / 6.0, 0.5)
        half_across = max(g.jaw / 2.0, 0.5)
        reach = math.hypot(half_along, half_across) + 1.0
        c0, c1 = max(int(math.floor(g.x - reach)), 0), min(int(math.ceil(g.x + reach)) + 1, size)
        r0, r1 = max(int(math.floor(g.y - reach)), 0), min(int(math.ceil(g.y + reach)) + 1, size)
        if c0 >= c1 or r0 >= r1:
            continue
        vv, uu = np.mgrid[r0:r1, c0:c1].astype(np.float64)
        du, dv = uu - g.x, vv - g.y
        ca, sa = math.cos(g.theta), math.sin(g.theta)
        mask = (np.abs(du * ca + dv * sa) <= half_along) & (np.abs(-du * sa + dv * ca)
                                                            <= half_across)
        if not mask.any():
            continue
        for k, value in enumerate((1.0, math.cos(2 * g.theta), math.sin(2 * g.theta),
                                   min(g.width / width_norm, 1.0))):
            maps[k, r0:r1, c0:c1][mask] = value
    return maps


@dataclass
class _Item:
    x: np.ndarray                   # (C, N, N) network input
    grasps: list[Grasp]             # rectangles in input pixels
    augment: dict                   # augment()'s options for this source

def _as_datasets(data) -> list:
    from embodied_transfer.grasp.cornell import CornellDataset, read_dataset

    if isinstance(data, (str, Path, CornellDataset)):
        data = [data]
    out = [read_dataset(d) if isinstance(d, (str, Path)) else d for d in data]
    if not out:
        raise GraspError("no training data given")
    return out


def _items(datasets: Sequence, cfg: CnnConfig, augment_options: dict) -> list[_Item]:
    items = []
    for ds in datasets:
        for sample in ds:
            if cfg.use_depth and sample.depth is None:
                raise GraspError(f"sample {sample.id} of {ds} has no depth but the model "
                                 "uses depth (train with use_depth=False)")
            x, frame = preprocess(sample.rgb, sample.depth, cfg)
            items.append(_Item(x, [frame.to_input(g) for g in sample.grasps],
                               augment_options))
    return items


def augment(x: np.ndarray, grasps: list[Grasp], rng: np.random.Generator, *,
            rotate_deg: float = 180.0, flip: bool = True, zoom: float = 0.1,
            translate: float = 0.0, colour: float = 0.0, depth_dropout: float = 0.0
            ) -> tuple[np.ndarray, list[Grasp]]:
    """A random rotation about the centre (±``rotate_deg``), mirror, zoom (log-uniform in
    [1 − ``zoom``, 1 + ``zoom``]) and shift (up to ``translate`` of the side) of a (C, N, N)
    input with its rectangles moved the same way (uncovered pixels are 0, the image mean);
    then, on the colour channels, a random contrast, brightness and per-channel tint of
    strength ``colour``, and with probability ``depth_dropout`` a flat depth channel (so the
    model also works without depth). The last three draw nothing when 0 (the tabletop
    recipe's random stream is unchanged by them)."""
    n = x.shape[-1]
    phi = math.radians(rng.uniform(-rotate_deg, rotate_deg)) if rotate_deg else 0.0
    mirror = bool(flip and rng.random() < 0.5)
    z = float(np.exp(rng.uniform(math.log(1 - zoom), math.log(1 + zoom)))) if zoom else 1.0
    a = z * np.array([[math.cos(phi), -math.sin(phi)], [math.sin(phi), math.cos(phi)]])
    if mirror:
        a = a @ np.diag([-1.0, 1.0])
    c = np.full(2, (n - 1) / 2.0)
    shift = rng.uniform(-translate, translate, 2) * n if translate else np.zeros(2)
    m = np.hstack([a, (c - a @ c + shift)[:, None]])
    img = cv2.warpAffine(np.ascontiguousarray(x.transpose(1, 2, 0)), m, (n, n),
                         flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    moved = []
    for g in grasps:
        p = a @ np.array([g.x, g.y]) + m[:, 2]
        d = a @ np.array([math.cos(g.theta), math.sin(g.theta)])
        moved.append(Grasp(float(p[0]), float(p[1]), math.atan2(d[1], d[0]), g.width * z,
                           None if g.height is None else g.height * z))
    out = np.ascontiguousarray(img.reshape(n, n, -1).transpose(2, 0, 1))
    if colour:
        gain = rng.uniform(1.0 - colour, 1.0 + colour)
        tint = rng.uniform(-colour, colour, (3, 1, 1)) * 0.2
        out[:3] = out[:3] * np.float32(gain) + tint.astype(np.float32)
    if depth_dropout and out.shape[0] > 3 and rng.random() < depth_dropout:
        out[3] = 0.0
    return out, moved


#: Augmentation of the tabletop renders (the recipe of the shipped tabletop training).
SIM_AUGMENT: dict = {}
#: Augmentation of real camera images: larger zoom, shifts, colour and depth dropout
#: (chosen by object-wise cross-validation on the real development images; model card).
REAL_AUGMENT: dict = {"zoom": 0.25, "translate": 0.1, "colour": 0.3, "depth_dropout": 0.2}


def _batch(items: list[_Item], idx: np.ndarray, cfg: CnnConfig, rng, augmenting: bool):
    xs, ys = [], []
    for i in idx:
        x, gs = items[i].x, items[i].grasps
        if augmenting:
            x, gs = augment(x, gs, rng, **items[i].augment)
        xs.append(x)
        ys.append(grasp_maps(gs, cfg.input_size, cfg.width_norm))
    return (torch.from_numpy(np.stack(xs)).contiguous(memory_format=torch.channels_last),
            torch.from_numpy(np.stack(ys)))


def _epoch_order(n_sim: int, n_real: int, batch_size: int, steps: int,
                 rng: np.random.Generator) -> np.ndarray:
    """Indices into ``sim + real`` items for one epoch of ``steps`` batches: a permutation
    of the simulated items alone, or of the real ones alone, or, with both, batches of half
    real (drawn without replacement, cycling) and half simulated items."""
    if not n_real:
        return rng.permutation(n_sim)
    if not n_sim:
        return n_sim + np.concatenate([rng.permutation(n_real)
                                       for _ in range(math.ceil(steps * batch_size / n_real))])
    half = batch_size // 2
    sim = rng.permutation(n_sim)
    real = np.concatenate([rng.permutation(n_real)
                           for _ in range(math.ceil(steps * half / n_real) + 1)])
    out = []
    for b in range(steps):
        out += list(sim[b * (batch_size - half):(b + 1) * (batch_size - half)])
        out += list(n_sim + real[b * half:(b + 1) * half])
    return np.asarray(out)


def map_loss(pred: torch.Tensor, target: torch.Tensor, masked: bool = True) -> torch.Tensor:
    """Smooth-L1 on the four maps, summed.

    ``masked=False``: each map averaged over all pixels (GR-ConvNet). ``masked=True`` (the
    default): the quality map averaged over all pixels plus over the graspable pixels
    (target quality > 0, about 1 % of them, so they are not drowned), and the angle and
    width maps averaged over the graspable pixels only — elsewhere they are never read, and
    the zeros there would pull the predicted widths towards 0 (tiny rectangles that fail
    the IoU test). On the toy scenes this took held-out rectangle accuracy from 35 % to
    about 70 % for the same short training.
    """
    if not masked:
        return sum(F.smooth_l1_loss(pred[:, k], target[:, k]) for k in range(4))
    loss = F.smooth_l1_loss(pred[:, 0], target[:, 0])
    mask = target[:, 0] > 0
    if mask.any():
        loss = loss + sum(F.smooth_l1_loss(pred[:, k][mask], target[:, k][mask])
                          for k in range(4))
    return loss


def plot_history(history: dict, out: Path) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("loss per step", history["step_loss"]), ("loss per epoch", history["epoch_loss"])]
    if history.get("val_accuracy"):
        panels.append(("validation rectangle accuracy", history["val_accuracy"]))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4))
    for ax, (title, values) in zip(np.atleast_1d(axes), panels):
        v = np.asarray(values, dtype=float)
        if title == "loss per step" and len(v) > 20:
            k = max(1, len(v) // 50)
            ax.plot(np.arange(len(v)), v, alpha=0.3)
            ax.plot(np.arange(k - 1, len(v)), np.convolve(v, np.ones(k) / k, mode="valid"))
            ax.set_xlabel("step")
        else:
            ax.plot(np.arange(1, len(v) + 1), v, marker="o")
            ax.set_xlabel("epoch")
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def train_cnn(data, out_dir: str | Path, *, epochs: int = 30, batch_size: int = 16,
              seed: int = 0, lr: float = 1e-3, config: CnnConfig | None = None,
              use_depth: bool | None = None, val_data=None, augment_data: bool = True,
              masked_loss: bool = True, real_data=None, real_workspace=None, init=None,
              max_steps: int | None = None, threads: int | None = None,
              progress: bool = True) -> dict:
    """Train a GR-ConvNet-style model on Cornell-layout data and save it to ``out_dir``.

    ``data`` / ``val_data``: a dataset directory, a :class:`CornellDataset`, or a list of
    them. ``use_depth`` overrides ``config.use_depth``; with neither given the model is RGB-D
    when every training sample has depth, else RGB. With ``val_data`` the rectangle accuracy
    is measured after each epoch and the best epoch's weights are kept (ties: the earlier).
    ``threads`` sets torch's (process-wide) thread count. Adam with a
    cosine learning rate, random rotation/mirror/zoom augmentation, deterministic for a seed
    (and a thread count). ``masked_loss``: see :func:`map_loss`. ``max_steps`` stops early
    (tests). ``real_data``: real camera datasets, seen through ``real_workspace`` (fractions
    of the image; default: the config's) with :data:`REAL_AUGMENT`; every batch is then half
    real, half ``data`` (or all real when ``data`` is empty). ``init``: a trained model
    directory (or :class:`CnnBackend`) to start from, e.g. the tabletop model; its config
    is kept unless ``config`` is given (same architecture). Writes ``model.safetensors``,
    ``config.json``, ``training_curves.png`` and ``training_curves.json``; returns the
    history (``step_loss``, ``epoch_loss``, ``val_accuracy``, ``best_epoch``, ``seconds``).
    """
    from embodied_transfer.grasp.evaluate import evaluate

    if threads:
        torch.set_num_threads(threads)
    datasets = _as_datasets(data) if data else []
    real_sets = _as_datasets(real_data) if real_data else []
    if not datasets and not real_sets:
        raise GraspError("no training data given")
    val_sets = _as_datasets(val_data) if val_data is not None else []
    start_from = CnnBackend.load(init) if isinstance(init, (str, Path)) else init
    base = config or (start_from.cfg if start_from is not None else None)
    cfg = CnnConfig(**asdict(base)) if base else CnnConfig()
    if use_depth is None and base is None:
        use_depth = all(ds.has_depth(i) for ds in datasets + real_sets for i in range(len(ds)))
    if use_depth is not None:
        cfg.use_depth = bool(use_depth)
    items = _items(datasets, cfg, SIM_AUGMENT)
    if real_sets and REAL_AUGMENT.get("depth_dropout") and cfg.use_depth:
        cfg.rgb_fallback = True             # trained to answer without depth too
    real_cfg = CnnConfig(**{**asdict(cfg), "workspace": real_workspace or cfg.workspace})
    real_items = _items(real_sets, real_cfg, REAL_AUGMENT)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = GraspNet(cfg)
    if start_from is not None:
        try:
            model.load_state_dict(start_from.model.state_dict())
        except RuntimeError as exc:
            raise GraspError(f"cannot start from {init}: another architecture ({exc})") \
                from None
    backend = CnnBackend(model)
    parallel = DataParallel()
    parallel.check_batch(batch_size)
    net = parallel.prepare(model)          # `model` itself stays the module that is saved
    pool = items + real_items
    steps_per_epoch = math.ceil(len(pool) / batch_size)
    total = epochs * steps_per_epoch if max_steps is None else min(max_steps,
                                                                   epochs * steps_per_epoch)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(total, 1))
    history: dict = {"step_loss": [], "epoch_loss": [], "val_accuracy": [], "best_epoch": None,
                     "processes": parallel.world}
    best_acc, best_state = -1.0, None
    bar = tqdm(total=total, desc="cnn grasp training", unit="step",
               disable=not progress or not parallel.main)
    start, step = time.perf_counter(), 0
    for epoch in range(epochs):
        if step >= total:
            break
        net.train()
        order = _epoch_order(len(items), len(real_items), batch_size, steps_per_epoch, rng)
        losses = []
        for b in range(steps_per_epoch):
            if step >= total:
                break
            # the global batch, augmented alike on every process; this process's share
            xb, yb = _batch(pool, order[b * batch_size:(b + 1) * batch_size], cfg, rng,
                            augment_data)
            mine = parallel.share(np.arange(len(xb)))
            loss = map_loss(net(xb[mine].to(parallel.device)), yb[mine].to(parallel.device),
                            masked_loss)
            opt.zero_grad()
            parallel.backward(loss)
            opt.step()
            sched.step()
            step += 1
            value = parallel.mean(loss)
            losses.append(value)
            history["step_loss"].append(value)
            bar.update()
            bar.set_postfix(epoch=epoch + 1, loss=f"{value:.4f}")
        history["epoch_loss"].append(float(np.mean(losses)))
        model.eval()
        if val_sets:
            acc = float(np.mean([evaluate(ds, backend)["rectangle_accuracy"] or 0.0
                                 for ds in val_sets]))
            history["val_accuracy"].append(acc)
            if acc > best_acc:
                best_acc, history["best_epoch"] = acc, epoch + 1
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            bar.set_postfix(epoch=epoch + 1, loss=f"{history['epoch_loss'][-1]:.4f}",
                            val=f"{acc:.3f}")
    bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    history["seconds"] = time.perf_counter() - start
    history["steps"] = step
    out_dir = Path(out_dir)
    backend.info = {"seed": seed, "epochs": epochs, "batch_size": batch_size, "lr": lr,
                    "augment": augment_data, "masked_loss": masked_loss, "steps": step,
                    "train_samples": len(items), "real_samples": len(real_items),
                    "train_data": [str(getattr(ds, "directory", ds)) for ds in datasets],
                    "real_data": [str(getattr(ds, "directory", ds)) for ds in real_sets],
                    "real_workspace": list(real_cfg.workspace) if real_sets else None,
                    "real_augment": REAL_AUGMENT if real_sets else None,
                    "initialised_from": str(init) if init is not None else None,
                    "val_data": [str(getattr(ds, "directory", ds)) for ds in val_sets],
                    "best_epoch": history["best_epoch"],
                    "val_accuracy": history["val_accuracy"],
                    "final_epoch_loss": history["epoch_loss"][-1] if history["epoch_loss"]
                    else None}
    if parallel.main:
        model.cpu()
        backend.save(out_dir)
        (out_dir / "training_curves.json").write_text(json.dumps(history) + "\n")
        plot_history(history, out_dir / "training_curves.png")
    parallel.end()                   # the others go on once the model is written
    return history
