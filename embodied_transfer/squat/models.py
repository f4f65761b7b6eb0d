"""Real2Sim models (torch): the multi-encoder VAE with MINE, the plain-VAE baseline, and
the Bi-GRU squat-phase classifier; saved as ``model.safetensors`` + ``config.json``.

All models work on windows of normalised frames ``(batch, time, 7)``. Converters read a
causal window (the current frame and the ones before it) and produce the simulator-domain
version of its last frame; the classifier reads ``past`` frames, the frame and ``future``
frames and labels the centre frame.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from embodied_transfer.core import checkpoint
from embodied_transfer.squat.errors import SquatDataError
from embodied_transfer.squat.phases import PhaseFilter
from embodied_transfer.squat.signals import CHANNELS, InputAdaptation, Normalizer

@dataclass
class ModelConfig:
    """Sizes of a model; stored in config.json beside its weights."""

    kind: str                       # "multi_encoder_vae" | "plain_vae" | "phase_classifier"
    channels: int = len(CHANNELS)
    hidden: int = 64
    content_dim: int = 16           # z_c per frame (also the plain VAE's latent)
    style_dim: int = 8              # z_s per window
    past: int = 15                  # frames before the current one in a window
    future: int = 0                 # frames after it (classifier: 5)
    phases: int = 3

    @property
    def window(self) -> int:
        return self.past + 1 + self.future


class ContentEncoder(nn.Module):
    """GRU over the window → per-frame content latent z_c, plus a phase head on it."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.gru = nn.GRU(cfg.channels, cfg.hidden, batch_first=True)
        self.proj = nn.Linear(cfg.hidden, cfg.content_dim)
        self.head = nn.Linear(cfg.content_dim, cfg.phases)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.proj(self.gru(x)[0]))


class StyleEncoder(nn.Module):
    """GRU over the window → Gaussian posterior (mu, logvar) of one style latent z_s."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.gru = nn.GRU(cfg.channels, cfg.hidden, batch_first=True)
        self.out = nn.Linear(cfg.hidden, 2 * cfg.style_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.out(self.gru(x)[1][-1]).chunk(2, dim=-1)
        return mu, logvar.clamp(-8.0, 8.0)


class Decoder(nn.Module):
    """GRU from [w_c·z_c(t), w_s·z_s] to frames; w_c and w_s are learnt (the latent weighting)."""

    def __init__(self, cfg: ModelConfig, style_dim: int) -> None:
        super().__init__()
        self.log_w_content = nn.Parameter(torch.zeros(1))
        self.log_w_style = nn.Parameter(torch.zeros(1))
        self.gru = nn.GRU(cfg.content_dim + style_dim, cfg.hidden, batch_first=True)
        self.out = nn.Linear(cfg.hidden, cfg.channels)

    def forward(self, z_c: torch.Tensor, z_s: torch.Tensor | None = None) -> torch.Tensor:
        parts = [self.log_w_content.exp() * z_c]
        if z_s is not None:
            parts.append(self.log_w_style.exp() * z_s[:, None, :].expand(-1, z_c.shape[1], -1))
        return self.out(self.gru(torch.cat(parts, dim=-1))[0])


class StatisticsNetwork(nn.Module):
    """MINE's T(z_c, z_s): a scalar score of a (content, style) pair (Belghazi et al., 2018)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(cfg.content_dim + cfg.style_dim, 64), nn.ELU(),
                                 nn.Linear(64, 64), nn.ELU(), nn.Linear(64, 1))

    def forward(self, z_c: torch.Tensor, z_s: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([z_c, z_s], dim=-1)).squeeze(-1)


def mine_lower_bound(stats: StatisticsNetwork, z_c: torch.Tensor, z_s: torch.Tensor
                     ) -> torch.Tensor:
    """Donsker–Varadhan bound on I(z_c; z_s): E_joint[T] − log E_marginals[e^T].

    Marginal pairs come from shuffling z_s across the batch. ``L_MINE`` is its negative.
    """
    joint = stats(z_c, z_s).mean()
    shuffled = z_s[torch.randperm(len(z_s), device=z_s.device)]
    marginal = stats(z_c, shuffled)
    log_mean_exp = torch.logsumexp(marginal, dim=0) - torch.log(torch.tensor(float(len(marginal))))
    return joint - log_mean_exp


class MultiEncoderVAE(nn.Module):
    """Content encoder + style encoder + weighted decoder (+ MINE statistics network).

    ``z_style`` is the fixed simulator style used for conversion (μ + ε·σ, set after training).
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.content = ContentEncoder(cfg)
        self.style = StyleEncoder(cfg)
        self.decoder = Decoder(cfg, cfg.style_dim)
        self.stats = StatisticsNetwork(cfg)
        self.register_buffer("z_style", torch.zeros(cfg.style_dim))

    def reconstruct(self, x: torch.Tensor, code_noise: float = 0.0):
        """Training pass on simulated windows: (x_hat, mu_s, logvar_s, z_c, z_s)."""
        z_c = self.content(x)
        mu, logvar = self.style(x)
        z_s = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        noisy = z_c + code_noise * torch.randn_like(z_c) if code_noise else z_c
        return self.decoder(noisy, z_s), mu, logvar, z_c, z_s

    def convert(self, x: torch.Tensor) -> torch.Tensor:
        """Windows of any domain → simulator-domain windows, decoded with the fixed style."""
        z_c = self.content(x)
        return self.decoder(z_c, self.z_style.expand(len(x), -1))


class PlainVAE(nn.Module):
    """The baseline converter: one GRU encoder (per-frame latent), one GRU decoder."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.gru = nn.GRU(cfg.channels, cfg.hidden, batch_first=True)
        self.out = nn.Linear(cfg.hidden, 2 * cfg.content_dim)
        self.decoder = Decoder(cfg, 0)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.out(self.gru(x)[0]).chunk(2, dim=-1)
        return mu, logvar.clamp(-8.0, 8.0)

    def reconstruct(self, x: torch.Tensor):
        mu, logvar = self.encode(x)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        return self.decoder(z), mu, logvar

    def convert(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encode(x)[0])


class PhaseClassifier(nn.Module):
    """Bi-GRU over past + 1 + future frames → STOP/DOWN/UP logits of the centre frame."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.gru = nn.GRU(cfg.channels, cfg.hidden, batch_first=True, bidirectional=True)
        self.out = nn.Linear(2 * cfg.hidden, cfg.phases)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.gru(x)[0][:, self.cfg.past])


KINDS = {"multi_encoder_vae": MultiEncoderVAE, "plain_vae": PlainVAE,
         "phase_classifier": PhaseClassifier}


@dataclass
class Checkpoint:
    """A model with what it needs around it: input normalisation(s) and provenance."""

    model: nn.Module
    normalizer: Normalizer                        # of the model's input domain
    output_normalizer: Normalizer | None = None   # converters: of the sim domain they emit
    info: dict = field(default_factory=dict)      # data seen, seed, metrics, command
    adaptation: InputAdaptation | None = None     # converters: per-stream input adaptation
    phase_filter: PhaseFilter | None = None       # classifier: temporal filter of its output

    @property
    def cfg(self) -> ModelConfig:
        return self.model.cfg

    def save(self, directory: str | Path) -> Path:
        """Write ``model.safetensors`` + ``config.json`` into ``directory``."""
        return checkpoint.save(directory, self.model, {
            "config": asdict(self.cfg), "normalizer": self.normalizer.to_dict(),
            "output_normalizer": (self.output_normalizer.to_dict()
                                  if self.output_normalizer else None),
            "input_adaptation": self.adaptation.to_dict() if self.adaptation else None,
            "phase_filter": self.phase_filter.to_dict() if self.phase_filter else None,
            "channels": list(CHANNELS), "info": self.info})

    @classmethod
    def load(cls, directory: str | Path, kind: str | None = None) -> "Checkpoint":
        """Load from ``directory``; ``kind`` checks what it holds. Errors name the path."""
        config, (cfg, norm, out_norm, adaptation, phase_filter) = checkpoint.read_config(
            directory, _parse_config, SquatDataError, "model")
        if kind is not None and cfg.kind != kind:
            raise SquatDataError(f"'{directory}' holds a {cfg.kind}, expected a {kind}")
        if cfg.kind not in KINDS:
            raise SquatDataError(f"'{directory}': unknown model kind {cfg.kind!r}")
        model = checkpoint.load_weights(KINDS[cfg.kind](cfg), directory, SquatDataError).eval()
        return cls(model, norm, out_norm, config.get("info", {}), adaptation, phase_filter)


def _parse_config(config: dict):
    out, adaptation = config.get("output_normalizer"), config.get("input_adaptation")
    phase_filter = config.get("phase_filter")
    try:
        adaptation = InputAdaptation(**adaptation) if adaptation else None
        phase_filter = PhaseFilter.from_dict(phase_filter) if phase_filter else None
    except SquatDataError as exc:          # read_config names the file for a ValueError
        raise ValueError(str(exc)) from None
    return (ModelConfig(**config["config"]), Normalizer.from_dict(config["normalizer"]),
            Normalizer.from_dict(out) if out else None, adaptation, phase_filter)
