"""Evaluation of a tactile alignment checkpoint on freshly simulated held-out data.

* ``retrieval_top1`` / ``retrieval_top5``: cross-domain pair retrieval glove → robot hand on
  held-out pairs, one pair per held-out grasp (the middle frame of its hold, so every
  gallery item is a distinct contact event); cosine similarity of the latents (Euclidean
  distance for ``glove_space`` latents, which are not unit vectors).
  ``retrieval_frames_top1/top5`` is the stricter frame-level version: every 8th held frame
  (5 Hz), so frames of the same grasp that differ only by tremor and slip compete.
  ``retrieval_hold_top1/top5`` is a diagnostic, not the target: each grasp's latents
  averaged over all its held frames (a window of about 1 s instead of one frame), which
  shows how much of the single-frame miss is frame noise rather than misalignment.
* ``retrieval_repeat``: how well each device tells the same held-out grasps apart from its
  *own* second reading (fresh noise, fabric shift and retargeting; top-1 of the cosine of
  mean-centred readings). Both readings carry the device's noise, so this is a reference,
  not a bound on the cross-domain retrieval (whose robot side is nearly noise-free).
* ``reconstruction_error``: mean absolute error of each domain's own reconstruction on
  held-out contact frames, averaged over domains (per domain in ``reconstruction_by_domain``);
  ``conversion_error`` compares glove → robot conversions with the true robot frames.
* ``transfer_accuracy``: an object classifier (one small MLP recipe for every method) trained
  on labelled glove frames and tested on the robot hand's frames of held-out grasps:
  ``none`` (robot readings resampled by index onto the glove's 137 inputs, no geometry),
  ``uv_direct`` (both projected on the canonical UV surface), ``patch_match`` (robot taxels
  averaged into their nearest glove taxel) and ``aligned`` (the shared latent).
  ``glove_accuracy`` is the same classifiers on held-out glove frames (the ceiling).
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from embodied_transfer.tactile.data import (CLASSES, DEVICES, FRAMES, Device, TactileSet,
                                            paired_set, pressure_field, unpaired_set)
from embodied_transfer.tactile.layouts import GLOVE, ROBOT
from embodied_transfer.tactile.models import (Aligner, TactileAlignment, patch_match_matrix,
                                              projection_matrix, uv_direct_matrix)

EVAL_SEED = 10_000          # held-out data: never a training seed (those are 1000·seed + k)
GALLERY_STRIDE = 8


def _embed(model: TactileAlignment, domain: str, x: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return torch.cat([model.encode(domain, torch.from_numpy(x[i:i + 4096]))
                          for i in range(0, len(x), 4096)]).numpy()


def _convert(model: TactileAlignment, source: str, target: str, x: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return torch.cat([model.convert(source, target, torch.from_numpy(x[i:i + 4096]))
                          for i in range(0, len(x), 4096)]).numpy()


def _pooled(model: TactileAlignment, domain: str, x: np.ndarray,
            groups: list[np.ndarray]) -> np.ndarray:
    """One latent per group of frames: the mean of the frames' latents (renormalised when
    the model's latents are unit vectors)."""
    z = _embed(model, domain, x[np.concatenate(groups)])
    parts = np.split(z, np.cumsum([len(g) for g in groups])[:-1])
    mean = np.stack([part.mean(0) for part in parts])
    if not model.unit_latent:
        return mean
    return mean / np.maximum(np.linalg.norm(mean, axis=1, keepdims=True), 1e-9)


def _middle_hold_latents(model: TactileAlignment, held: TactileSet, domains) -> dict:
    """domain → latents of the middle frame of each held-out grasp's hold (the retrieval
    items)."""
    mid = held.middle_hold_frames()
    return {d: _embed(model, d, held.readings[d][mid]) for d in domains}


def retrieval(query: np.ndarray, gallery: np.ndarray, k: int = 5,
              unit: bool = True) -> tuple[float, float]:
    """Top-1 and top-k rate of finding row i of ``gallery`` for row i of ``query``: by dot
    product (the cosine of unit rows), or with ``unit`` False by Euclidean distance."""
    if unit:
        return score_retrieval(query @ gallery.T, k)
    scores = 2 * query @ gallery.T - (gallery ** 2).sum(1)[None]   # −‖q − g‖² + ‖q‖²
    return score_retrieval(scores, k)


def score_retrieval(scores: np.ndarray, k: int = 5) -> tuple[float, float]:
    """Top-1 and top-k rate of gallery item i ranking first / in the first k for query i,
    from ``scores[i, j]`` (higher is closer); an item only counts as ranked above another
    if it scores strictly higher."""
    rank = (scores > np.diagonal(scores)[:, None]).sum(1)
    return float((rank == 0).mean()), float((rank < k).mean())


def top_k(query: np.ndarray, gallery: np.ndarray, unit: bool = True) -> dict:
    """:func:`retrieval` as a dict: top-1 / top-5 of finding gallery row i for query row i."""
    return dict(zip(("top1", "top5"), retrieval(query, gallery, unit=unit)))


def centred_unit(x: np.ndarray) -> np.ndarray:
    """Rows minus the column mean, scaled to unit length (the readings' retrieval metric)."""
    x = x - x.mean(0)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-9)


def repeat_retrieval(held: TactileSet, frames: np.ndarray, domain: str,
                     seed: int) -> tuple[float, float]:
    """Top-1/top-5 of finding ``frames`` of ``held`` among a second reading of the same
    grasps by the same device (cosine of mean-centred readings)."""
    device, rng = Device.make(domain), np.random.default_rng(seed)
    again = np.stack([device.read(held.episodes[int(held.episode[i])], rng)[i % FRAMES]
                      for i in frames])
    return retrieval(centred_unit(held.readings[domain][frames]), centred_unit(again))


def train_classifier(x: np.ndarray, y: np.ndarray, seed: int = 0, steps: int = 600,
                     classes: int = len(CLASSES), scores: bool = False):
    """A standardised 1-hidden-layer MLP; returns predict(features) → labels (with
    ``scores``: → (M, classes) log-probabilities)."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    mean, std = x.mean(0), x.std(0) + 1e-3
    xt, yt = torch.from_numpy((x - mean) / std).float(), torch.from_numpy(y).long()
    net = nn.Sequential(nn.Linear(x.shape[1], 64), nn.GELU(), nn.Linear(64, classes))
    opt = torch.optim.Adam(net.parameters(), lr=3e-3, weight_decay=1e-4)
    for _ in range(steps):
        idx = torch.randint(0, len(xt), (256,), generator=gen)
        loss = F.cross_entropy(net(xt[idx]), yt[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()

    def predict(features: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            out = F.log_softmax(net(torch.from_numpy((features - mean) / std).float()), 1)
        return out.numpy() if scores else out.argmax(1).numpy()
    return predict


def _index_resample(x: np.ndarray, size: int) -> np.ndarray:
    src = np.linspace(0, 1, x.shape[1])
    dst = np.linspace(0, 1, size)
    return np.stack([np.interp(dst, src, row) for row in x]).astype(np.float32)


def representations(model: TactileAlignment, robot: str) -> dict:
    """Method → (glove features, robot features): the four ways a glove-trained model can
    read a robot hand's frames. ``none``: the robot's readings resampled by index onto the
    glove's inputs (no geometry); ``uv_direct``: both projected on the canonical UV
    surface; ``patch_match``: robot taxels averaged into their nearest glove taxel;
    ``aligned``: the shared latent."""
    res = model.cfg.resolution
    p_glove = projection_matrix(model.layouts[GLOVE], res).T
    p_robot = projection_matrix(model.layouts[robot], res).T
    pm = patch_match_matrix(robot, GLOVE).T
    glove_size = model.layouts[GLOVE].size
    return {
        "none": (lambda x: x, lambda x: _index_resample(x, glove_size)),
        "uv_direct": (lambda x: x @ p_glove, lambda x: x @ p_robot),
        "patch_match": (lambda x: x, lambda x: x @ pm),
        "aligned": (lambda x: _embed(model, GLOVE, x), lambda x: _embed(model, robot, x)),
    }


def transfer_accuracy(model: TactileAlignment, robot: str, xg: np.ndarray, yg: np.ndarray,
                      xr: np.ndarray, yr: np.ndarray, xg_test: np.ndarray,
                      classes: int = len(CLASSES)) -> tuple[dict, dict]:
    """Per method of :func:`representations`: the accuracy on robot frames ``xr`` (labels
    ``yr``) of a classifier trained on glove frames ``xg`` (labels ``yg``), and on the glove's
    own frames ``xg_test`` of the same grasps (the ceiling)."""
    transfer, ceiling = {}, {}
    for name, (glove, robot_features) in representations(model, robot).items():
        predict = train_classifier(glove(xg), yg, classes=classes)
        transfer[name] = float((predict(robot_features(xr)) == yr).mean())
        ceiling[name] = float((predict(glove(xg_test)) == yr).mean())
    return transfer, ceiling


def evaluate(model_dir: str | Path | None = None, episodes: int = 160,
             classifier_episodes: int = 400, png: str | Path | None = None,
             seed: int = EVAL_SEED, show: bool = False) -> dict:
    """All metrics of the checkpoint in ``model_dir`` (default: the shipped one)."""
    torch.set_num_threads(1)
    start = time.perf_counter()
    aligner = Aligner.load(model_dir)
    model = aligner.model
    res = model.cfg.resolution
    domains = [d for d in DEVICES if d in aligner.domains]
    # every device reads the held-out grasps, so they are the same whatever the model knows
    held = paired_set(episodes, seed=seed, progress=show)
    human = unpaired_set(GLOVE, classifier_episodes, seed=seed + 1, progress=show)
    g, r = held.readings[GLOVE], held.readings[ROBOT]
    hold = np.flatnonzero(held.holding)
    contact = held.envelope >= 0.05

    # retrieval on held-out pairs: one per grasp, and frame-level at 5 Hz
    holds = held.hold_frames()
    per_grasp = held.middle_hold_frames()
    z = _middle_hold_latents(model, held, domains)
    unit = model.unit_latent
    top1, top5 = retrieval(z[GLOVE], z[ROBOT], unit=unit)
    by_pair = {f"{GLOVE}->{d}": top_k(z[GLOVE], z[d], unit) for d in domains if d != GLOVE}
    repeat = {d: dict(zip(("top1", "top5"), repeat_retrieval(held, per_grasp, d, seed + 2)))
              for d in (GLOVE, ROBOT)}
    pooled = {d: _pooled(model, d, held.readings[d], holds) for d in (GLOVE, ROBOT)}
    hold_top1, hold_top5 = retrieval(pooled[GLOVE], pooled[ROBOT], unit=unit)
    frames = hold[::GALLERY_STRIDE]
    frames_top1, frames_top5 = retrieval(_embed(model, GLOVE, g[frames]),
                                         _embed(model, ROBOT, r[frames]), unit=unit)

    # reconstruction and conversion
    recon = {d: float(np.abs(_convert(model, d, d, held.readings[d][contact])
                             - held.readings[d][contact]).mean()) for d in domains}
    truth = r[contact]
    conversion = {
        "aligned": float(np.abs(_convert(model, GLOVE, ROBOT, g[contact]) - truth).mean()),
        "uv_direct": float(np.abs(g[contact] @ uv_direct_matrix(GLOVE, ROBOT, res).T
                                  - truth).mean()),
        "patch_match": float(np.abs(g[contact] @ patch_match_matrix(GLOVE, ROBOT).T
                                    - truth).mean()),
        "zeros": float(np.abs(truth).mean()),
    }

    # transfer: classifier on glove data, tested on the robot hand
    train_idx = np.flatnonzero(human.holding)[::2]
    xg, yg = human.readings[GLOVE][train_idx], human.labels[train_idx]
    transfer, ceiling = transfer_accuracy(model, ROBOT, xg, yg, r[hold], held.labels[hold],
                                          g[hold])

    result = {
        "retrieval_top1": top1, "retrieval_top5": top5, "retrieval_gallery": len(per_grasp),
        "retrieval_by_pair": by_pair, "retrieval_repeat": repeat,
        "retrieval_hold_top1": hold_top1, "retrieval_hold_top5": hold_top5,
        "retrieval_frames_top1": frames_top1,
        "retrieval_frames_top5": frames_top5, "retrieval_frames_gallery": len(frames),
        "reconstruction_error": float(np.mean(list(recon.values()))),
        "reconstruction_by_domain": recon, "conversion_error": conversion,
        "transfer_accuracy": transfer, "glove_accuracy": ceiling,
        "chance": 1.0 / len(CLASSES), "classes": list(CLASSES),
        "data": {"held_out_episodes": episodes, "held_out_frames": len(held),
                 "held_out_hold_frames": int(len(hold)), "seed": seed,
                 "classifier_train_frames": int(len(train_idx))},
        "seconds": round(time.perf_counter() - start, 1),
    }
    if png:
        result["png"] = str(draw_frames(model, held, png))
    return result


def retrieval_only(model_dir: str | Path | None = None, episodes: int = 160,
                   seed: int = EVAL_SEED, held: TactileSet | None = None) -> dict:
    """``retrieval_top1`` / ``retrieval_top5`` of :func:`evaluate` alone (glove → robot hand,
    the middle frame of each held-out grasp's hold), for sweeps over held-out sets;
    ``held``: ``paired_set(episodes, seed)`` if drawn already."""
    torch.set_num_threads(1)
    held = paired_set(episodes, seed=seed) if held is None else held
    model = Aligner.load(model_dir).model
    z = _middle_hold_latents(model, held, (GLOVE, ROBOT))
    return top_k(z[GLOVE], z[ROBOT], model.unit_latent)


def uv_image(values: np.ndarray, domain: str, resolution: int = 64) -> np.ndarray:
    """A frame of ``domain`` drawn on the canonical UV surface (NaN outside the hand)."""
    from embodied_transfer.tactile.layouts import load_layout
    from embodied_transfer.tactile.surface import uv_grid

    _, mask, _ = uv_grid(resolution)
    img = np.full(resolution * resolution, np.nan)
    img[mask.ravel()] = projection_matrix(load_layout(domain), resolution) @ values
    return img.reshape(resolution, resolution)


def draw_frames(model: TactileAlignment, held, out: str | Path, index: int | None = None) -> Path:
    """PNG: true pressure field, a glove frame, the matching robot frame, the converted frame."""
    from embodied_transfer.core.plotting import pyplot, save_figure
    from embodied_transfer.tactile.surface import uv_grid

    plt = pyplot()

    if index is None:     # the most strongly held frame of a power grasp
        cand = np.flatnonzero((held.labels == CLASSES.index("thick_cylinder")) & held.holding)
        cand = cand if len(cand) else np.flatnonzero(held.holding)
        index = int(cand[np.argmax(held.readings[GLOVE][cand].sum(1))])
    g, r = held.readings[GLOVE][index], held.readings[ROBOT][index]
    converted = _convert(model, GLOVE, ROBOT, g[None])[0]
    baseline = g @ uv_direct_matrix(GLOVE, ROBOT, model.cfg.resolution).T
    ep = held.episodes[int(held.episode[index])]
    field = pressure_field(ep)[index % FRAMES]
    _, mask, _ = uv_grid(field.shape[0])
    field = np.where(mask, field, np.nan)
    panels = [("true pressure (kPa)", field, None),
              (f"glove frame ({GLOVE})", uv_image(g, GLOVE), (0, 1)),
              (f"robot frame ({ROBOT})", uv_image(r, ROBOT), (0, 1)),
              ("glove → robot, aligned", uv_image(converted, ROBOT), (0, 1)),
              ("glove → robot, uv_direct", uv_image(baseline, ROBOT), (0, 1))]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.1 * len(panels), 3.6))
    for ax, (title, img, lim) in zip(axes, panels):
        im = ax.imshow(img, origin="lower", cmap="magma", vmin=lim and lim[0],
                       vmax=lim and lim[1])
        ax.set_title(title, fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
        fig.colorbar(im, ax=ax, fraction=0.046)
    fig.suptitle(f"held-out frame {index}: {CLASSES[int(held.labels[index])]} (UV map)",
                 fontsize=9)
    return save_figure(fig, out, dpi=90)
