"""Training the Real2Sim models: classifier, plain VAE, multi-encoder VAE (three stages).

``embodied-transfer squat train`` runs everything from one seed: simulate (or load) the
sim dataset, then

1. phase classifier (Bi-GRU) on simulated windows only;
2. plain VAE on simulated windows only (the baseline converter), denoising: a random
   per-channel gain and noise on its input, the clean window as its target;
3. multi-encoder VAE: (a) content encoder supervised on simulated phase labels;
   (b) style encoder + decoder on simulated data only with the content encoder frozen:
   reconstruction + KLD + λ·MI, MI estimated by MINE whose statistics network is trained
   alongside to tighten the bound; then the fixed style z_s = μ + ε·σ (mean simulated
   posterior, one seeded ε); (c) the content encoder fine-tuned on the real training
   recordings, with simulated batches mixed in so its codes keep their meaning, and a
   consistency term: real windows converted through the frozen decoder (fixed z_s) must be
   labelled correctly by the frozen sim-trained classifier; the same holds for simulated
   windows normalised as the converter's input is (the live ``sim`` graph feeds the bridge's
   signals through the converter). Real windows get a random gain per channel (sensor and
   person differences) on top of the noise.

Both converters carry a per-stream input adaptation (:class:`~.signals.InputAdaptation`,
running per-channel statistics of each stream, 1.25 s prior, 20 s time constant): every
real recording and simulated episode in stage (c) is adapted as the converter will adapt
a live stream. The classifier's output goes through a causal HMM filter
(:class:`~.phases.PhaseFilter`) whose transitions are counted on the simulated labels; its
sharpness was chosen by leave-one-out between the development recordings
(:mod:`~.selection`).

The published recipe fine-tunes the content encoder before the style stage; here it is
fine-tuned last so that the consistency term can see the decoder. Decoder, style encoder
and classifier still see simulated data only.

Curves go to ``<out>/training_curves.png`` and each checkpoint's config.json.
"""
from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm import tqdm

from embodied_transfer.core.plotting import Curves, plot_curves
from embodied_transfer.squat.models import (Checkpoint, ModelConfig, MultiEncoderVAE,
                                            PhaseClassifier, PlainVAE, mine_lower_bound)
from embodied_transfer.squat.phases import PhaseFilter, write_phase_filters
from embodied_transfer.squat.signals import (CHANNELS, InputAdaptation, Normalizer, time_warp,
                                             twist, windows)

_UWB = CHANNELS.index("uwb_range")


@dataclass
class TrainConfig:
    """Steps, batch sizes and loss weights (defaults: the shipped models)."""

    seed: int = 0
    batch: int = 256
    classifier_steps: int = 3000
    vae_steps: int = 2500
    content_steps: int = 2500
    finetune_steps: int = 800
    finetune_soup: int = 1        # fine-tune this many members (own batches), average weights
    style_steps: int = 2500
    lr: float = 2e-3
    finetune_lr: float = 5e-4
    beta_kld: float = 0.01
    lambda_mine: float = 0.1
    align_weight: float = 1.0     # fine-tuning: real/sim content codes matched per phase
    consistency_weight: float = 3.0  # fine-tuning: sim classifier on converted real windows
    sim_consistency_weight: float = 1.0  # ... and on converted sim windows (as input arrives)
    gain_aug: float = 0.5         # fine-tuning: log-std of a random per-channel gain on real
    vae_gain_aug: float = 0.5     # plain VAE: the same gain (and noise) on its simulated inputs
    speed_aug: float = 0.0        # fine-tuning: real recordings also time-warped to speed
                                  # 1 + a and 1 / (1 + a) (0: none)
    twist_aug: float = 0.0        # fine-tuning: real recordings also with the watch turned by
                                  # +a and -a rad about the forearm (0: none)
    uwb_aug: float = 0.0          # fine-tuning: share of real windows whose UWB swing about
                                  # the stream's mean is scaled by U(-1, 1) (phone placement)
    uwb_dropout: float = 0.0      # fine-tuning: share of real and simulated consistency
                                  # windows whose UWB channel is marked missing (no UWB phone)
    # converters' per-stream input adaptation (prior 0: none) and its time constant, frames
    adapt_prior_frames: int = InputAdaptation.prior_frames
    adapt_horizon_frames: int = InputAdaptation.horizon_frames
    phase_filter_sharpness: float = 0.5  # classifier output through an HMM filter (0: none)
    phase_filter_cyclic: bool = True   # ... with the bottom pause a state of its own
    # the same for the raw and plain-VAE pipelines of ``squat evaluate`` (phase_filters.json);
    # the two above are the proposed pipeline's, which the classifier checkpoint (and node)
    # carries. Each pipeline's own are chosen by the leave-one-out (selection.per_condition).
    raw_phase_filter_sharpness: float = 0.2
    raw_phase_filter_cyclic: bool = False
    vae_phase_filter_sharpness: float = 0.5
    vae_phase_filter_cyclic: bool = True
    code_noise: float = 0.1       # decoder training: noise on z_c, so nearby codes decode too
    noise: float = 0.05           # std of input noise augmentation (normalised units)
    past: int = 15                # converter window
    cls_past: int = 10            # classifier window (the authors' 10 past, 5 future)
    cls_future: int = 5
    stride: int = 2               # sim windows: every stride-th frame
    threads: int = 0              # torch threads (0: torch's default)


def input_adaptation(cfg: TrainConfig) -> InputAdaptation | None:
    """The converters' per-stream input adaptation (None when ``adapt_prior_frames`` is 0)."""
    if not cfg.adapt_prior_frames:
        return None
    return InputAdaptation(cfg.adapt_prior_frames, cfg.adapt_horizon_frames)


def phase_filter(sim, cfg: TrainConfig, condition: str = "proposed") -> PhaseFilter | None:
    """The phase filter of ``condition``'s pipeline (raw / vae / proposed, the classifier's
    own): transitions counted on the simulated labels."""
    prefix = "" if condition == "proposed" else f"{condition}_"
    sharpness = getattr(cfg, f"{prefix}phase_filter_sharpness")
    if not sharpness:
        return None
    return PhaseFilter.fit([y for _, y in sim], sharpness,
                           cyclic=getattr(cfg, f"{prefix}phase_filter_cyclic"))


def _window_set(episodes, norm: Normalizer, past: int, future: int, stride: int):
    """Stacked windows (M, T, 7) and per-frame labels (M, T) of every episode."""
    xs, ys = [], []
    for x, y in episodes:
        w = windows(norm(x), past, future)[::stride]
        lab = windows(y[:, None].astype(np.float32), past, future)[::stride, :, 0]
        xs.append(w)
        ys.append(lab.astype(np.int64))
    return torch.from_numpy(np.concatenate(xs)), torch.from_numpy(np.concatenate(ys))


def _batches(n: int, batch: int, steps: int, gen: torch.Generator):
    for _ in range(steps):
        yield torch.randint(0, n, (batch,), generator=gen)


def _progress(steps: int, desc: str, show: bool):
    return tqdm(total=steps, desc=desc, unit="step", disable=not show, leave=False)


@contextlib.contextmanager
def _frozen(*modules: nn.Module):
    """No gradients for ``modules`` inside the block (they train again after it)."""
    for m in modules:
        m.requires_grad_(False)
    try:
        yield
    finally:
        for m in modules:
            m.requires_grad_(True)


def train_classifier(sim, norm: Normalizer, cfg: TrainConfig, curves: Curves, gen, show=True):
    x, y = _window_set(sim, norm, cfg.cls_past, cfg.cls_future, cfg.stride)
    model = PhaseClassifier(ModelConfig("phase_classifier", past=cfg.cls_past,
                                        future=cfg.cls_future))
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.classifier_steps)
    bar = _progress(cfg.classifier_steps, "classifier (sim)", show)
    for idx in _batches(len(x), cfg.batch, cfg.classifier_steps, gen):
        xb = x[idx] + cfg.noise * torch.randn(x[idx].shape, generator=gen)
        loss = F.cross_entropy(model(xb), y[idx, cfg.cls_past])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        curves.add("classifier", loss=loss.item())
        bar.update()
        bar.set_postfix(loss=f"{loss.item():.3f}")
    bar.close()
    return model.eval()


def _kld(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    return -0.5 * torch.mean(torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=-1))


def _gain_and_noise(x: torch.Tensor, log_std: float, noise: float,
                    gen: torch.Generator) -> torch.Tensor:
    """Windows (B, T, C) times a random per-window, per-channel gain (log-normal, log-std
    ``log_std``) plus Gaussian noise of std ``noise``."""
    gain = torch.exp(log_std * torch.randn(len(x), 1, x.shape[-1], generator=gen))
    return x * gain + noise * torch.randn(x.shape, generator=gen)


def _uwb_swing(x: torch.Tensor, share: float, gen: torch.Generator) -> torch.Tensor:
    """Normalised windows (B, T, C) whose UWB channel, in a random ``share`` of
    them, is scaled about the stream's mean by a factor drawn from U(-1, 1): a phone placed
    elsewhere sees the wrist's descent as a smaller swing, none, or a rise."""
    factor = torch.rand(len(x), generator=gen) * 2.0 - 1.0
    scaled = torch.rand(len(x), generator=gen) < share
    out = x.clone()
    out[scaled, :, _UWB] *= factor[scaled, None]
    return out


def _uwb_missing(x: torch.Tensor, share: float, gen: torch.Generator) -> torch.Tensor:
    """Normalised windows (B, T, C) whose UWB channel, in a random ``share`` of them, is
    marked missing: 0, the value a missing range (NaN) standardises to in the converter."""
    dropped = torch.rand(len(x), generator=gen) < share
    out = x.clone()
    out[dropped, :, _UWB] = 0.0
    return out


def train_plain_vae(sim, norm: Normalizer, cfg: TrainConfig, curves: Curves, gen, show=True):
    """The baseline converter on simulated windows only, as a denoising VAE: its input gets
    a random per-channel gain (log-std ``vae_gain_aug``, as stage (c) gives real windows)
    and noise, the target is the clean window. The augmentation draws from its own
    generator, so ``gen`` advances exactly as without it and later stages are unchanged."""
    x, _ = _window_set(sim, norm, cfg.past, 0, cfg.stride)
    model = PlainVAE(ModelConfig("plain_vae", past=cfg.past))
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    aug = torch.Generator().manual_seed(cfg.seed + 1)
    bar = _progress(cfg.vae_steps, "plain VAE (sim)", show)
    for idx in _batches(len(x), cfg.batch, cfg.vae_steps, gen):
        xb = x[idx]
        x_in = _gain_and_noise(xb, cfg.vae_gain_aug, cfg.noise, aug) if cfg.vae_gain_aug else xb
        x_hat, mu, logvar = model.reconstruct(x_in)
        recon = F.mse_loss(x_hat, xb)
        kld = _kld(mu, logvar)
        loss = recon + cfg.beta_kld * kld
        opt.zero_grad()
        loss.backward()
        opt.step()
        curves.add("plain_vae", recon=recon.item(), kld=kld.item())
        bar.update()
        bar.set_postfix(recon=f"{recon.item():.3f}")
    bar.close()
    return model.eval()


def train_multi_encoder_vae(sim, real, sim_norm: Normalizer, real_norm: Normalizer,
                            classifier: PhaseClassifier, cfg: TrainConfig, curves: Curves, gen,
                            show=True):
    """The three stages; ``real`` holds the fine-tuning recordings (signals, labels) and
    ``classifier`` is the frozen sim-trained classifier of the consistency term."""
    model, xs, ys = train_sim_stages(sim, sim_norm, cfg, curves, gen, show)
    # (c) content encoder fine-tuned on the real recordings
    finetune_content(model, classifier, sim, xs, ys, real, real_norm, cfg, curves, gen, show)
    return model.eval()


def train_sim_stages(sim, sim_norm: Normalizer, cfg: TrainConfig, curves: Curves, gen,
                     show=True) -> tuple[MultiEncoderVAE, torch.Tensor, torch.Tensor]:
    """Stages (a) and (b) of the multi-encoder VAE, on simulated data only; returns the
    model and the simulated window set (windows, labels) that fine-tuning mixes in."""
    xs, ys = _window_set(sim, sim_norm, cfg.past, 0, cfg.stride)
    model = MultiEncoderVAE(ModelConfig("multi_encoder_vae", past=cfg.past))
    content = model.content
    # (a) content encoder on simulated labels
    opt = torch.optim.Adam(content.parameters(), lr=cfg.lr)
    bar = _progress(cfg.content_steps, "content encoder (sim)", show)
    for idx in _batches(len(xs), cfg.batch, cfg.content_steps, gen):
        xb = xs[idx] + cfg.noise * torch.randn(xs[idx].shape, generator=gen)
        loss = F.cross_entropy(content.head(content(xb)).reshape(-1, 3), ys[idx].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        curves.add("content_sim", loss=loss.item())
        bar.update()
    bar.close()
    # (b) style encoder + decoder with MINE, content frozen, simulated data only
    with _frozen(content):
        _train_style(model, xs, cfg, curves, gen, show)
    return model, xs, ys


def _train_style(model: MultiEncoderVAE, xs: torch.Tensor, cfg: TrainConfig, curves: Curves,
                 gen, show: bool) -> None:
    """Style encoder + decoder (reconstruction + KLD + λ·MI) and MINE's statistics network,
    then the fixed simulator style z_s = μ + ε·σ."""
    opt = torch.optim.Adam([*model.style.parameters(), *model.decoder.parameters()], lr=cfg.lr)
    opt_t = torch.optim.Adam(model.stats.parameters(), lr=cfg.lr)
    bar = _progress(cfg.style_steps, "style encoder + decoder + MINE (sim)", show)
    for idx in _batches(len(xs), cfg.batch, cfg.style_steps, gen):
        xb = xs[idx]
        x_hat, mu, logvar, z_c, z_s = model.reconstruct(xb, code_noise=cfg.code_noise)
        z_c_pooled = z_c.mean(dim=1)
        recon = F.mse_loss(x_hat, xb)
        kld = _kld(mu, logvar)
        mi = mine_lower_bound(model.stats, z_c_pooled.detach(), z_s)
        loss = recon + cfg.beta_kld * kld + cfg.lambda_mine * mi
        opt.zero_grad()
        loss.backward()
        opt.step()
        # statistics network: maximise the bound (minimise L_MINE) on detached latents
        l_mine = -mine_lower_bound(model.stats, z_c_pooled.detach(), z_s.detach())
        opt_t.zero_grad()
        l_mine.backward()
        opt_t.step()
        curves.add("style_mine", recon=recon.item(), kld=kld.item(), mi=mi.item(),
                   w_content=model.decoder.log_w_content.exp().item(),
                   w_style=model.decoder.log_w_style.exp().item())
        bar.update()
        bar.set_postfix(recon=f"{recon.item():.3f}", mi=f"{mi.item():.3f}")
    bar.close()
    with torch.no_grad():
        mus, logvars = zip(*(model.style(xs[i:i + 4096]) for i in range(0, len(xs), 4096)))
        mu, sigma = torch.cat(mus).mean(0), (0.5 * torch.cat(logvars)).exp().mean(0)
        eps = torch.randn(mu.shape, generator=gen)
        model.z_style.copy_(mu + eps * sigma)


def finetune_content(model: MultiEncoderVAE, classifier: PhaseClassifier, sim, xs, ys, real,
                     real_norm: Normalizer, cfg: TrainConfig, curves: Curves, gen,
                     show: bool) -> None:
    """Real phase labels + simulated ones + per-phase code alignment + consistency.

    Consistency windows are long enough that every converted frame the classifier reads has
    a full converter window behind it: ``past`` + the classifier's past + 1 + future frames.
    Its simulated windows (every 4th episode, every 8th frame) are normalised with the real
    normaliser, as the converter normalises whatever arrives. With an input adaptation,
    each real recording and each of those episodes is first adapted as a stream (with
    ``speed_aug``, time-warped copies of the recordings join them first, and with
    ``twist_aug`` copies with the watch turned about the forearm; ``uwb_aug`` rescales the
    UWB swing of a share of the real windows, and ``uwb_dropout`` marks the UWB channel
    missing in a share of the real and simulated consistency windows, so that the watch alone
    gives the codes when there is no range). With
    ``finetune_soup`` > 1, that many members are fine-tuned from the same starting weights,
    each on its own batches, and the content encoder keeps their mean weights.
    """
    content, past = model.content, cfg.past
    cls_window = classifier.cfg.past + 1 + classifier.cfg.future
    if cfg.speed_aug:   # the same squats, quicker and slower (deterministic copies)
        speeds = (1.0 + cfg.speed_aug, 1.0 / (1.0 + cfg.speed_aug))
        real = list(real) + [time_warp(x, y, k) for k in speeds for x, y in real]
    if cfg.twist_aug:   # the same squats with the watch turned about the forearm
        real = list(real) + [(twist(x, a), y) for a in (cfg.twist_aug, -cfg.twist_aug)
                             for x, y in real]
    adaptation, sim = input_adaptation(cfg), sim[::4]
    if adaptation:      # each recording / episode adapted as the converter adapts a stream
        real = [(adaptation.apply(x, real_norm), y) for x, y in real]
        sim = [(adaptation.apply(x, real_norm), y) for x, y in sim]
    xr, yr = _window_set(real, real_norm, past + cls_window - 1, 0, 1)
    xl, yl = _window_set(sim, real_norm, past + cls_window - 1, 0, 8)
    centre = -1 - classifier.cfg.future

    def consistency(x: torch.Tensor, y: torch.Tensor, z: torch.Tensor | None = None):
        converted = model.decoder(content(x) if z is None else z,
                                  model.z_style.expand(len(x), -1))[:, -cls_window:]
        return F.cross_entropy(classifier(converted), y[:, centre])

    def fine_tune_member() -> dict:
        opt = torch.optim.Adam(content.parameters(), lr=cfg.finetune_lr)
        bar = _progress(cfg.finetune_steps, "content encoder (real fine-tune)", show)
        half = cfg.batch // 2
        for _ in range(cfg.finetune_steps):
            ir = torch.randint(0, len(xr), (half,), generator=gen)
            isim = torch.randint(0, len(xs), (half,), generator=gen)
            xb_r = _gain_and_noise(xr[ir], cfg.gain_aug, cfg.noise, gen)
            if cfg.uwb_aug:
                xb_r = _uwb_swing(xb_r, cfg.uwb_aug, gen)
            if cfg.uwb_dropout:
                xb_r = _uwb_missing(xb_r, cfg.uwb_dropout, gen)
            z_r, z_s = content(xb_r), content(xs[isim])
            zr, yb = z_r[:, past:], yr[ir, past:]          # frames with a full window behind them
            real_loss = F.cross_entropy(content.head(zr).reshape(-1, 3), yb.reshape(-1))
            sim_loss = F.cross_entropy(content.head(z_s).reshape(-1, 3), ys[isim].reshape(-1))
            # class-conditional alignment: real codes of a phase sit where simulated codes of
            # that phase do, which is where the decoder (trained on simulated codes) can read them
            zr_all, zs_all = zr.reshape(-1, zr.shape[-1]), z_s.reshape(-1, z_s.shape[-1])
            yr_all, ys_all = yb.reshape(-1), ys[isim].reshape(-1)
            align = sum(F.mse_loss(zr_all[yr_all == k].mean(0),
                                   zs_all[ys_all == k].mean(0).detach())
                        for k in range(3) if (yr_all == k).any() and (ys_all == k).any())
            # consistency: the sim classifier labels the converted window's centre frame
            cons = consistency(xb_r, yr[ir], z_r)
            il = torch.randint(0, len(xl), (half,), generator=gen)
            xb_l = _uwb_missing(xl[il], cfg.uwb_dropout, gen) if cfg.uwb_dropout else xl[il]
            cons_sim = consistency(xb_l, yl[il])
            loss = (real_loss + sim_loss + cfg.align_weight * align + cfg.consistency_weight * cons
                    + cfg.sim_consistency_weight * cons_sim)
            opt.zero_grad()
            loss.backward()
            opt.step()
            curves.add("content_finetune", real=real_loss.item(), sim=sim_loss.item(),
                       align=float(torch.as_tensor(align).detach()), consistency=cons.item(),
                       consistency_sim=cons_sim.item())
            bar.update()
        bar.close()
        return {k: v.detach().clone() for k, v in content.state_dict().items()}

    start = {k: v.clone() for k, v in content.state_dict().items()}
    soup = []
    with _frozen(model.style, model.decoder, classifier):
        for member in range(cfg.finetune_soup):
            if member:
                content.load_state_dict(start)
            soup.append(fine_tune_member())
    if len(soup) > 1:       # the members' mean weights (they share the starting point)
        content.load_state_dict({k: torch.stack([m[k] for m in soup]).mean(0) for k in start})


def train_all(sim, real, out: str | Path, cfg: TrainConfig = TrainConfig(),
              provenance: dict | None = None, show: bool = True) -> dict[str, Path]:
    """Train the three checkpoints into ``out/{classifier,plain_vae,multi_encoder_vae}``.

    Each domain is standardised with its own statistics: simulated windows with the sim
    normaliser in training, real frames with the real one (fitted on the fine-tuning
    recordings) at conversion time; both converters store the real one as their input
    normaliser (and the prior of their input adaptation) and the sim one for their output.
    """
    torch.manual_seed(cfg.seed)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    gen = torch.Generator().manual_seed(cfg.seed)
    out = Path(out)
    sim_norm = Normalizer.fit(np.concatenate([x for x, _ in sim]))
    real_norm = Normalizer.fit(np.concatenate([x for x, _ in real]))
    curves = Curves()
    info = {"train_config": cfg.__dict__, **(provenance or {})}
    adaptation = input_adaptation(cfg)
    classifier = train_classifier(sim, sim_norm, cfg, curves, gen, show)
    plain = train_plain_vae(sim, sim_norm, cfg, curves, gen, show)
    multi = train_multi_encoder_vae(sim, real, sim_norm, real_norm, classifier, cfg, curves,
                                    gen, show)
    paths = {
        "classifier": Checkpoint(classifier, sim_norm, None, info,
                                 phase_filter=phase_filter(sim, cfg)).save(out / "classifier"),
        "plain_vae": Checkpoint(plain, real_norm, sim_norm, info, adaptation).save(
            out / "plain_vae"),
        "multi_encoder_vae": Checkpoint(multi, real_norm, sim_norm, info, adaptation).save(
            out / "multi_encoder_vae"),
    }
    filters = {c: phase_filter(sim, cfg, c) for c in ("raw", "vae", "proposed")}
    paths["phase_filters"] = write_phase_filters(filters, out)
    (out / "training_curves.json").write_text(json.dumps(curves.data) + "\n")
    paths["curves"] = plot_curves(curves, out / "training_curves.png")
    return paths
