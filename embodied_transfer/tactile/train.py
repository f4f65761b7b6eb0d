"""Training the tactile alignment model in two stages (UniTacHand-style).

``embodied-transfer tactile train --out DIR --seed 0`` (:func:`train` with a
:class:`TrainConfig`) simulates the data from the seed, then

1. **per-domain reconstruction**: each domain's encoder + decoder on all its frames
   (unpaired and paired), L_REC only;
2. **alignment**: L = w_con·L_CON + w_rec·L_REC + w_adv·L_ADV on paired batches (every
   domain's reading of the same frames) and unpaired batches per domain. L_CON is the
   symmetric InfoNCE between the latents of the pairs (every pair of domains), L_REC the
   reconstruction of each domain's own input plus ``w_cross`` times the cross-domain
   reconstruction of paired frames, L_ADV the cross-entropy of the domain discriminator
   on the latents behind a gradient-reversal layer (λ ramped up as in DANN). Domains in
   ``partial_domains`` (the fingertips, which cannot see the palm) are aligned into the
   latent space that the whole-hand domains (glove, robot hand) shape, without shaping it:
   their pairs and cross-reconstructions see those domains' latents detached, they never
   reconstruct a whole hand, and they stay out of L_ADV.

With ``encoder: glove_space`` (:mod:`~embodied_transfer.tactile.models`) stage 1 is closed
form instead (:func:`fit_glove_space`): each domain's encoder is the ridge regression of the
glove's readings on its features over the paired contact frames, i.e. the minimiser of its
cross-domain reconstruction into the glove (the glove-side part of L_REC), each decoder the
ridge regression back, and the latent's whitening the shrunk inverse covariance of what the
whole-hand domains leave unexplained, so that latent distance is the Mahalanobis distance
(the Gaussian likelihood) of glove readings. Stage 2 can start from that fit (InfoNCE on
negative squared latent distances, the latents not being unit vectors), but by default it
is off for glove_space (:data:`STAGE2_STEPS`): on the validation grasps it only lowered
retrieval (the tactile model card has the screens).

Writes ``model.safetensors`` + ``config.json`` (with the training config, data sizes and
the command), ``training_curves.png`` and ``training_curves.json`` into DIR.
"""
from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F
from tqdm import tqdm

from embodied_transfer.core import plotting
from embodied_transfer.core.plotting import Curves
from embodied_transfer.tactile.data import (FRAMES, RATE_HZ, RESPONSES, TactileSet, paired_set,
                                            unpaired_set)
from embodied_transfer.tactile.errors import TactileError
from embodied_transfer.tactile.layouts import FINGERTIPS, GLOVE, SHADOW_GRID
from embodied_transfer.tactile.models import (ENCODERS, ModelConfig, TactileAlignment,
                                              grad_reverse, ridge_weights, save_model,
                                              shrunk_precision)
from embodied_transfer.tactile.surface import GROUPS

#: Stage-2 steps per encoder when ``TrainConfig.stage2_steps`` is None.
STAGE2_STEPS = {"local_uv": 4000, "per_domain": 4000, "glove_space": 0}


@dataclass
class TrainConfig:
    """Data sizes, steps, batch sizes and loss weights (defaults: the shipped model)."""

    seed: int = 0
    # where the paired frames come from: "patches" (synthetic contact patches on the UV
    # surface, glove + robot_hand_1062 + fingertips_5x40) or "mujoco" (the Shadow Hand
    # grasping objects, glove + shadow_grid_600 or shadow_palmar_62; paired frames only)
    source: str = "patches"
    paired_episodes: int = 300      # 300 × 80 frames = 24 000 paired frames = 10 min at 40 Hz
    unpaired_episodes: int = 500    # per domain (20 min each at 40 Hz, 8.3 min for 3rd)
    stage1_steps: int = 500         # not glove_space (its stage 1 is closed form)
    stage2_steps: int | None = None  # None: STAGE2_STEPS of the encoder
    batch: int = 128                # paired frames per step (stage 2)
    unpaired_batch: int = 64        # per domain per step
    lr: float = 2e-3
    w_con: float = 0.1
    w_rec: float = 10.0
    w_cross: float = 0.5            # share of L_REC given to cross-domain reconstruction
    w_adv: float = 0.1
    temperature: float = 0.05       # unit latents; glove_space: distance_temperature
    distance_temperature: float = 137.0
    ridge: float = 10.0             # glove_space closed form: ridge penalty
    shrinkage: float = 0.03         # glove_space: residual covariance shrinkage (× mean var)
    min_envelope: float = 0.05      # L_CON only on frames with contact
    noise: float = 0.01             # input noise augmentation
    threads: int = 1                # torch threads
    # domains that see only part of the hand: aligned into the latent space the whole-hand
    # domains shape, without shaping it (see train_model)
    partial_domains: tuple[str, ...] = (FINGERTIPS,)


#: Discriminator accuracy (mean over a tenth of stage 2) above which the alignment has
#: probably come apart: in the session-15 screens where it reached 1.0 in some tenth, the
#: InfoNCE loss rose again and validation retrieval ended 8-11 points below the recipe's;
#: in the runs that went well it stayed at 0.50-0.57.
COLLAPSE_DISC_ACC = 0.9


def alignment_check(curves: Curves) -> dict:
    """The domain discriminator's accuracy per tenth of stage 2, its peak and its last
    value, and ``collapsed``: the peak above :data:`COLLAPSE_DISC_ACC` (it should stay near
    chance)."""
    acc = curves.data.get("stage2_alignment", {}).get("disc_acc", [])
    if not acc:
        raise TactileError("no stage-2 discriminator accuracy in the curves")
    tenths = [round(float(np.mean(part)), 4) for part in np.array_split(np.asarray(acc), 10)
              if len(part)]
    return {"disc_acc_by_tenth": tenths, "peak_disc_acc": max(tenths),
            "final_disc_acc": tenths[-1], "collapsed": max(tenths) > COLLAPSE_DISC_ACC}


def similarity(a: torch.Tensor, b: torch.Tensor, unit: bool = True) -> torch.Tensor:
    """Row × row similarity: the dot product of unit latents, else minus the squared
    Euclidean distance."""
    return a @ b.T if unit else -torch.cdist(a, b).square()


def info_nce(a: torch.Tensor, b: torch.Tensor, temperature: float,
             unit: bool = True) -> torch.Tensor:
    """Symmetric InfoNCE of embeddings (:func:`similarity`); row i of ``a`` pairs with row
    i of ``b``."""
    logits = similarity(a, b, unit) / temperature
    target = torch.arange(len(a))
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def _progress(steps: int, desc: str, show: bool):
    return tqdm(total=steps, desc=desc, unit="step", disable=not show, leave=False)


def _noisy(x: torch.Tensor, cfg: TrainConfig, gen: torch.Generator) -> torch.Tensor:
    return (x + cfg.noise * torch.randn(x.shape, generator=gen)).clamp(0, 1) if cfg.noise else x


def _as_seen(zs: dict[str, torch.Tensor], a: str, b: str,
             partial: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """The latents of domains ``a`` and ``b`` as a loss on the pair sees them: when one of
    them is partial, the other (whole-hand) one is detached."""
    if (a in partial) == (b in partial):
        return zs[a], zs[b]
    return ((zs[a].detach() if b in partial else zs[a]),
            (zs[b].detach() if a in partial else zs[b]))


def resolved(cfg: TrainConfig, model_cfg: ModelConfig) -> TrainConfig:
    """``cfg`` with ``stage2_steps`` set (the encoder's :data:`STAGE2_STEPS` when None)."""
    if model_cfg.encoder not in ENCODERS:
        raise TactileError(f"unknown encoder {model_cfg.encoder!r} (known: "
                           f"{', '.join(ENCODERS)})")
    if cfg.stage2_steps is not None:
        return cfg
    return replace(cfg, stage2_steps=STAGE2_STEPS[model_cfg.encoder])


def fit_glove_space(model: TactileAlignment, paired: TactileSet, cfg: TrainConfig) -> dict:
    """Stage 1 of a glove_space model, in closed form on the paired contact frames (see the
    module docstring); returns the RMS of the glove readings each domain leaves unexplained,
    overall and per digit (``rms_<domain>`` and ``rms_<domain>_<digit>``)."""
    rows = paired.envelope >= cfg.min_envelope
    if not rows.any():
        raise TactileError("no paired frame with contact to fit the glove_space model on")
    glove = paired.readings[GLOVE][rows].astype(np.float64)
    g_mean = glove.mean(0)
    residuals, stats = [], {}
    for d in model.cfg.domains:
        if d == GLOVE:
            continue
        enc, dec = model.encoders[d].map, model.decoders[d].map
        with torch.no_grad():
            x = model.encoders[d].features(torch.from_numpy(paired.readings[d][rows]))
        x = x.double().numpy()
        x_mean = x.mean(0)
        w = ridge_weights(x - x_mean, glove - g_mean, cfg.ridge,
                          (enc.input_groups, enc.output_groups))
        enc.set(w, g_mean - x_mean @ w)
        residual = glove - g_mean - (x - x_mean) @ w
        stats[f"rms_{d}"] = float(np.sqrt((residual ** 2).mean()))
        for k, name in enumerate(GROUPS):
            stats[f"rms_{d}_{name}"] = float(np.sqrt((residual[:, enc.output_groups == k] ** 2)
                                                    .mean()))
        if d not in cfg.partial_domains:
            residuals.append(residual)
        y = paired.readings[d][rows].astype(np.float64)
        y_mean = y.mean(0)
        wd = ridge_weights(glove - g_mean, y - y_mean, cfg.ridge,
                           (dec.input_groups, dec.output_groups))
        dec.set(wd, y_mean - g_mean @ wd)
    if not residuals:
        raise TactileError("glove_space needs a whole-hand domain besides the glove")
    precision = shrunk_precision(np.cov(np.concatenate(residuals).T), cfg.shrinkage)
    whiten = np.linalg.cholesky(precision)          # precision = whiten @ whiten.T
    with torch.no_grad():
        model.latent_mean.copy_(torch.from_numpy(g_mean))
        model.whiten.copy_(torch.from_numpy(whiten))
        model.unwhiten.copy_(torch.from_numpy(np.linalg.inv(whiten)))
    return stats


def train_model(paired: TactileSet, unpaired: dict[str, TactileSet], cfg: TrainConfig,
                model_cfg: ModelConfig | None = None, curves: Curves | None = None,
                show: bool = True) -> TactileAlignment:
    """The two training stages on ready data; returns the model in eval mode."""
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    model_cfg = model_cfg or ModelConfig(domains=list(paired.readings))
    cfg = resolved(cfg, model_cfg)
    model = TactileAlignment(model_cfg)
    domains = model_cfg.domains
    curves = curves if curves is not None else Curves()
    pair = {d: torch.from_numpy(paired.readings[d]) for d in domains}
    alone = {d: torch.from_numpy(unpaired[d].readings[d]) if d in unpaired
             else torch.zeros(0, pair[d].shape[1]) for d in domains}
    contact = torch.from_numpy(np.flatnonzero(paired.envelope >= cfg.min_envelope))
    unit = model.unit_latent
    if model.glove_space:
        curves.add("stage1_closed_form", **fit_glove_space(model, paired, cfg))
    else:
        _reconstruction_stage(model, pair, alone, cfg, gen, curves, show)
    _alignment_stage(model, pair, alone, contact, cfg, gen, curves, show, unit)
    return model.eval()


def _reconstruction_stage(model: TactileAlignment, pair: dict, alone: dict, cfg: TrainConfig,
                          gen: torch.Generator, curves: Curves, show: bool) -> None:
    """Stage 1: each domain's encoder + decoder on all its frames (paired and unpaired),
    L_REC only."""
    domains = model.cfg.domains
    everything = {d: torch.cat([pair[d], alone[d]]) for d in domains}
    ae_params = [p for d in domains for p in (*model.encoders[d].parameters(),
                                              *model.decoders[d].parameters())]
    opt = torch.optim.Adam(ae_params, lr=cfg.lr)
    bar = _progress(cfg.stage1_steps, "stage 1: reconstruction", show)
    for _ in range(cfg.stage1_steps):
        losses = {}
        for d in domains:
            idx = torch.randint(0, len(everything[d]), (cfg.batch,), generator=gen)
            x = everything[d][idx]
            losses[d] = F.mse_loss(model.decode(d, model.encode(d, _noisy(x, cfg, gen))), x)
        loss = sum(losses.values())
        opt.zero_grad()
        loss.backward()
        opt.step()
        curves.add("stage1_reconstruction", **{f"rec_{d}": v.item() for d, v in losses.items()})
        bar.update()
        bar.set_postfix(rec=f"{loss.item():.4f}")
    bar.close()


def _alignment_stage(model: TactileAlignment, pair: dict, alone: dict, contact: torch.Tensor,
                     cfg: TrainConfig, gen: torch.Generator, curves: Curves, show: bool,
                     unit: bool) -> None:
    """Stage 2: L_CON + L_REC + L_ADV (see the module docstring)."""
    domains = model.cfg.domains
    temperature = cfg.temperature if unit else cfg.distance_temperature
    # A partial domain (fingertips) cannot see what the others see on the palm: if its
    # pairs, its cross-reconstructions or the discriminator could move the whole-hand
    # encoders, the shared latent would be pulled towards what the fingertips alone can see.
    # So the whole-hand latents it is compared with and decoded from are detached, it is
    # never asked to reconstruct a whole hand, and it stays out of L_ADV.
    partial = [d for d in domains if d in cfg.partial_domains]
    shaping = [d for d in domains if d not in partial]
    if not shaping:
        raise TactileError(f"every domain is partial ({', '.join(domains)}): nothing shapes "
                           f"the latent space")
    if cfg.stage2_steps == 0:
        return
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.stage2_steps, eta_min=cfg.lr / 20)
    bar = _progress(cfg.stage2_steps, "stage 2: L_CON + L_REC + L_ADV", show)
    pairs = [(a, b) for i, a in enumerate(domains) for b in domains[i + 1:]]
    for step in range(cfg.stage2_steps):
        idx = contact[torch.randint(0, len(contact), (cfg.batch,), generator=gen)]
        xs = {d: pair[d][idx] for d in domains}
        zs = {d: model.encode(d, _noisy(xs[d], cfg, gen)) for d in domains}
        l_con = sum(info_nce(*_as_seen(zs, a, b, partial), temperature, unit)
                    for a, b in pairs) / len(pairs)
        lam = 2.0 / (1.0 + math.exp(-10.0 * step / cfg.stage2_steps)) - 1.0
        rec_own, rec_cross, adv_z, adv_y = [], [], [], []
        for k, d in enumerate(domains):
            z_all, x_all = zs[d], xs[d]
            if len(alone[d]):
                j = torch.randint(0, len(alone[d]), (cfg.unpaired_batch,), generator=gen)
                z_all = torch.cat([z_all, model.encode(d, _noisy(alone[d][j], cfg, gen))])
                x_all = torch.cat([x_all, alone[d][j]])
            rec_own.append(F.mse_loss(model.decode(d, z_all), x_all))
            rec_cross += [F.mse_loss(model.decode(d, _as_seen(zs, d, s, partial)[1]), xs[d])
                          for s in domains if s != d and not (s in partial and d in shaping)]
            if d in shaping:
                adv_z.append(z_all)
                adv_y.append(torch.full((len(z_all),), k))
        l_rec = ((1 - cfg.w_cross) * torch.stack(rec_own).mean()
                 + cfg.w_cross * torch.stack(rec_cross).mean())
        logits = model.discriminator(grad_reverse(torch.cat(adv_z), lam))
        y = torch.cat(adv_y)
        l_adv = F.cross_entropy(logits, y)
        loss = cfg.w_con * l_con + cfg.w_rec * l_rec + cfg.w_adv * l_adv
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        with torch.no_grad():
            top1 = similarity(zs[domains[0]], zs[domains[1]], unit).argmax(1).eq(
                torch.arange(len(idx)))
        curves.add("stage2_alignment", l_con=l_con.item(), l_rec=l_rec.item(),
                   l_adv=l_adv.item(), disc_acc=(logits.argmax(1) == y).float().mean().item(),
                   batch_top1=top1.float().mean().item())
        bar.update()
        bar.set_postfix(con=f"{l_con.item():.3f}", rec=f"{l_rec.item():.4f}",
                        adv=f"{l_adv.item():.3f}")
    bar.close()


def plot_closed_form(curves: Curves, out: Path) -> Path:
    """A glove_space fit without stage 2: the RMS of the glove readings each domain leaves
    unexplained, per digit (bars), against the glove's own reading noise."""
    fit = curves.data["stage1_closed_form"]
    domains = [k[len("rms_"):] for k in fit if k.startswith("rms_")
               and not any(k.endswith(f"_{g}") for g in GROUPS)]
    plt = plotting.pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    width = 0.8 / max(len(domains), 1)
    for i, d in enumerate(domains):
        ax.bar(np.arange(len(GROUPS)) + (i - (len(domains) - 1) / 2) * width,
               [fit[f"rms_{d}_{g}"][-1] for g in GROUPS], width,
               label=f"{d} (all {fit[f'rms_{d}'][-1]:.3f})")
    ax.axhline(RESPONSES[GLOVE].noise, color="k", ls="--", lw=1, label="glove reading noise")
    ax.set_xticks(np.arange(len(GROUPS)), GROUPS)
    ax.set_ylabel("RMS of unexplained glove readings")
    ax.set_title("glove_space closed-form fit on the paired contact frames", fontsize=9)
    ax.legend(fontsize=7)
    return plotting.save_figure(fig, out, dpi=90)


def plot_curves(curves: Curves, out: Path) -> Path:
    """Stage 1 reconstruction; stage 2 losses (log), discriminator and batch accuracy (a
    glove_space fit without stage 2: :func:`plot_closed_form`)."""
    if "stage1_closed_form" in curves.data and len(curves.data) == 1:
        return plot_closed_form(curves, out)
    panels = []
    for stage, v in curves.data.items():
        if stage.startswith("stage1"):
            panels.append((stage, list(v), True))
            continue
        for prefix, log in (("l_", True), ("disc", False), ("batch", False)):
            panels.append((stage, [k for k in v if k.startswith(prefix)], log))
    return plotting.plot_curves(curves, out, panels, dpi=90)


SOURCES = ("patches", "mujoco")


#: The Shadow Hand layout a ``mujoco`` model learns unless told otherwise.
PHYSICAL_ROBOT = SHADOW_GRID


def model_config_for(source: str, encoder: str | None = None,
                     robot: str | None = None) -> ModelConfig:
    """The default ModelConfig of a data source (its domains; source ``mujoco``: the glove
    and ``robot``, default :data:`PHYSICAL_ROBOT`), with ``encoder`` if given."""
    if source not in SOURCES:
        raise TactileError(f"unknown data source {source!r} (known: {', '.join(SOURCES)})")
    if robot and source != "mujoco":
        raise TactileError("a robot layout is chosen for source mujoco only")
    cfg = (ModelConfig(domains=[GLOVE, robot or PHYSICAL_ROBOT]) if source == "mujoco"
           else ModelConfig())
    return replace(cfg, encoder=encoder) if encoder else cfg


def make_data(cfg: TrainConfig, domains: list[str], show: bool = True):
    """The training data of ``cfg.seed``: one paired set and one unpaired set per domain
    (source ``mujoco``: the paired set alone)."""
    base = 1000 * cfg.seed
    if cfg.source == "mujoco":
        from embodied_transfer.tactile.physical import physical_paired_set, shadow_layout

        robot = shadow_layout(domains, "source mujoco")
        return physical_paired_set(cfg.paired_episodes, seed=base, robot=robot).frames, {}
    paired = paired_set(cfg.paired_episodes, seed=base, domains=domains, progress=show)
    unpaired = {d: unpaired_set(d, cfg.unpaired_episodes, seed=base + 1 + i, progress=show)
                for i, d in enumerate(domains)}
    return paired, unpaired


def train(out: str | Path, cfg: TrainConfig = TrainConfig(), model_cfg: ModelConfig | None = None,
          show: bool = True, command: str = "") -> dict:
    """Simulate the data, train, and write the checkpoint and curves into ``out``."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    model_cfg = model_cfg or model_config_for(cfg.source)
    cfg = resolved(cfg, model_cfg)
    start, cpu_start = time.perf_counter(), time.process_time()
    paired, unpaired = make_data(cfg, model_cfg.domains, show)
    data_s = time.perf_counter() - start
    curves = Curves()
    model = train_model(paired, unpaired, cfg, model_cfg, curves, show)
    check = alignment_check(curves) if cfg.stage2_steps else {
        "collapsed": False, "note": "no stage-2 steps: the discriminator was not trained"}
    if check["collapsed"]:
        print(f"warning: the domain discriminator reached {check['peak_disc_acc']:.0%} "
              f"accuracy in stage 2 (near chance when aligned): the alignment has probably "
              f"come apart; try a lower lr or w_adv, and check the curves", file=sys.stderr)
    out = Path(out)
    info = {"train_config": asdict(cfg), "command": command, "alignment_check": check,
            "data": {"paired_frames": len(paired),
                     "paired_minutes_at_40hz": round(len(paired) / RATE_HZ / 60, 2),
                     "unpaired_frames": {d: len(s) for d, s in unpaired.items()},
                     "frames_per_episode": FRAMES, "data_seconds": round(data_s, 1)},
            "train_seconds": round(time.perf_counter() - start, 1),
            "train_cpu_seconds": round(time.process_time() - cpu_start, 1)}
    save_model(model, out, info)
    (out / "training_curves.json").write_text(json.dumps(curves.data) + "\n")
    plot_curves(curves, out / "training_curves.png")
    return {"out": str(out), "seconds": info["train_seconds"], "data_seconds": data_s,
            "cpu_seconds": info["train_cpu_seconds"], "alignment_check": check}
