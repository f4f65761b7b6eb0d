"""Tactile alignment model: per-domain UV-projected encoders into one shared latent,
per-domain decoders, a domain discriminator behind gradient reversal; the two baselines
(UV projection only, nearest-patch matching); :class:`Aligner` for inference. The latent
of ``local_uv`` is itself a pressure image on the canonical UV surface; that of
``glove_space`` is the glove's reading space, whitened by how well the other domains predict
it.

Saved as ``model.safetensors`` + ``config.json`` (sizes, the layouts' ids and digests,
provenance). Layout-derived matrices (UV projection) are rebuilt from the layout files on
load, and a changed layout file is refused.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from embodied_transfer.core import checkpoint
from embodied_transfer.tactile.errors import TactileError
from embodied_transfer.tactile.layouts import FINGERTIPS, GLOVE, ROBOT, Layout, load_layout
from embodied_transfer.tactile.surface import CANVAS_MM, uv_grid

ENCODERS = ("glove_space", "local_uv", "per_domain")
NEAR_ZERO = 0.1          # regulariser of the UV splat: pixels far from every taxel read ≈ 0


@dataclass
class ModelConfig:
    """Sizes of a model; stored in config.json beside its weights."""

    domains: list[str] = field(default_factory=lambda: [GLOVE, ROBOT, FINGERTIPS])
    resolution: int = 32        # UV image is resolution × resolution (valid pixels only used)
    hidden: int = 128           # per_domain only
    latent: int = 32            # per_domain only; local_uv's latent is the UV image itself
    # "local_uv": the latent is a pressure image on the canonical UV surface; each domain's
    # encoder is a locally connected linear map of its UV projection (each latent pixel sees
    # the pixels within ``local_radius`` of it, starts as the identity) and its decoder a
    # linear map starting as UV sampling. "per_domain": an MLP encoder and decoder per domain
    # into a ``latent``-dimensional space (the sessions 5-13 model). "glove_space": the
    # latent is the glove's reading space, whitened by the precision of what the whole-hand
    # domains leave unexplained; each other domain's encoder maps its UV image (and, with
    # ``sqrt_features``, the image's square root) into the glove's readings, each glove taxel
    # from the pixels of its own digit or the palm only; decoders map glove readings to a
    # domain's the same way (fitted in closed form by tactile.train, see there)
    encoder: str = "glove_space"
    local_radius: int = 2       # pixels (Chebyshev distance) a latent pixel sees
    sqrt_features: bool = True  # glove_space only


# --- UV projection and baselines -------------------------------------------------------

def projection_matrix(layout: Layout, resolution: int) -> np.ndarray:
    """(G, N): taxel readings → values at the G valid UV pixels (Gaussian splat per taxel,
    σ ≈ half its pitch, within its digit only; normalised, far pixels ≈ 0)."""
    centres, mask, group = uv_grid(resolution)
    valid = mask.ravel()
    pix = centres[valid] * CANVAS_MM
    sigma = np.maximum(np.sqrt(layout.area) / 2, CANVAS_MM / resolution / 2)
    d2 = ((pix[:, None, :] - layout.mm[None, :, :]) ** 2).sum(-1)
    w = np.exp(-0.5 * d2 / sigma[None, :] ** 2) * (group[valid][:, None] == layout.group[None, :])
    return (w / (w.sum(1, keepdims=True) + NEAR_ZERO)).astype(np.float32)


def sampling_matrix(layout: Layout, resolution: int) -> np.ndarray:
    """(N, G): a UV image → readings of ``layout``'s taxels (bilinear-like Gaussian
    sampling of the valid pixels of the taxel's digit)."""
    centres, mask, group = uv_grid(resolution)
    valid = mask.ravel()
    pix = centres[valid] * CANVAS_MM
    sigma = CANVAS_MM / resolution / 2
    d2 = ((layout.mm[:, None, :] - pix[None, :, :]) ** 2).sum(-1)
    w = np.exp(-0.5 * d2 / sigma ** 2) * (layout.group[:, None] == group[valid][None, :])
    return (w / np.maximum(w.sum(1, keepdims=True), 1e-8)).astype(np.float32)


def uv_direct_matrix(source: str, target: str, resolution: int = 32) -> np.ndarray:
    """Baseline *UV projection only*: (N_target, N_source), project then resample."""
    return sampling_matrix(load_layout(target), resolution) @ projection_matrix(
        load_layout(source), resolution)


def patch_match_matrix(source: str, target: str, radius_mm: float = 10.0) -> np.ndarray:
    """Baseline *nearest-patch matching*: (N_target, N_source). Each target taxel takes the
    mean of the source taxels nearest to it (its Voronoi cell on the same digit); with none,
    the nearest source taxel within ``radius_mm``; else 0."""
    src, tgt = load_layout(source), load_layout(target)
    d = np.sqrt(((tgt.mm[:, None] - src.mm[None]) ** 2).sum(-1))
    d = np.where(tgt.group[:, None] == src.group[None, :], d, np.inf)
    m = np.zeros((tgt.size, src.size), np.float32)
    nearest_tgt = d.argmin(0)
    ok = np.isfinite(d.min(0))
    m[nearest_tgt[ok], np.flatnonzero(ok)] = 1.0
    empty = m.sum(1) == 0
    near_src = d.argmin(1)
    close = empty & (d[np.arange(tgt.size), near_src] <= radius_mm)
    m[np.flatnonzero(close), near_src[close]] = 1.0
    return m / np.maximum(m.sum(1, keepdims=True), 1.0)


# --- networks --------------------------------------------------------------------------

class GradientReversal(torch.autograd.Function):
    """Identity forward; gradient × (−λ) backward (Ganin & Lempitsky, 2015)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, lam: float) -> torch.Tensor:
        ctx.lam = lam
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return -ctx.lam * grad, None


def grad_reverse(x: torch.Tensor, lam: float) -> torch.Tensor:
    return GradientReversal.apply(x, lam)


class Encoder(nn.Module):
    """Readings of one layout → UV image (fixed projection) → MLP → unit-norm latent."""

    def __init__(self, projection: np.ndarray, cfg: ModelConfig) -> None:
        super().__init__()
        self.register_buffer("projection", torch.from_numpy(projection), persistent=False)
        g = projection.shape[0]
        self.net = nn.Sequential(nn.Linear(g, cfg.hidden), nn.GELU(),
                                 nn.Linear(cfg.hidden, cfg.hidden // 2), nn.GELU(),
                                 nn.Linear(cfg.hidden // 2, cfg.latent))

    def uv(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.projection.T

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.net(self.uv(x)), dim=-1)


def ridge_weights(xc: np.ndarray, yc: np.ndarray, ridge: float,
                  groups: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Ridge solution (inputs × outputs) of centred ``yc`` on centred ``xc``; with
    ``groups`` (group of each input, group of each output), each output from the inputs of
    its own group only (the others' weights are zero)."""
    gram, cross = xc.T @ xc, xc.T @ yc
    if groups is None:
        return np.linalg.solve(gram + ridge * np.eye(len(gram)), cross)
    x_group, y_group = groups
    w = np.zeros(cross.shape)
    for g in np.unique(y_group):
        sel, out = np.flatnonzero(x_group == g), np.flatnonzero(y_group == g)
        if len(sel) == 0:
            raise TactileError(f"no input lies on digit group {g}, which outputs need")
        w[np.ix_(sel, out)] = np.linalg.solve(gram[np.ix_(sel, sel)] + ridge * np.eye(len(sel)),
                                              cross[np.ix_(sel, out)])
    return w


def shrunk_precision(cov: np.ndarray, shrinkage: float) -> np.ndarray:
    """Inverse of ``cov`` shrunk towards the identity by ``shrinkage`` × its mean variance."""
    return np.linalg.inv(cov + shrinkage * np.trace(cov) / len(cov) * np.eye(len(cov)))


class DigitMap(nn.Module):
    """A linear map whose output j sees input i only if both lie on the same digit (or the
    palm): ``x @ (weight * mask) + bias``."""

    def __init__(self, input_groups: np.ndarray, output_groups: np.ndarray) -> None:
        super().__init__()
        self.input_groups, self.output_groups = input_groups, output_groups
        mask = (input_groups[:, None] == output_groups[None, :]).astype(np.float32)
        self.register_buffer("mask", torch.from_numpy(mask), persistent=False)
        self.weight = nn.Parameter(torch.zeros(mask.shape))
        self.bias = nn.Parameter(torch.zeros(mask.shape[1]))

    def set(self, weight: np.ndarray, bias: np.ndarray) -> None:
        """Take fitted values (weights outside the mask are ignored)."""
        with torch.no_grad():
            self.weight.copy_(torch.from_numpy(np.asarray(weight, np.float32)) * self.mask)
            self.bias.copy_(torch.from_numpy(np.asarray(bias, np.float32)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ (self.weight * self.mask) + self.bias


class GloveSpaceEncoder(nn.Module):
    """Readings of one layout → the glove's readings as this layout predicts them: UV image
    (fixed projection), with ``sqrt_features`` also its square root (a response curve a
    linear map cannot make), then a :class:`DigitMap`. The glove's own encoder is the
    identity (``identity``)."""

    def __init__(self, projection: np.ndarray, pixel_groups: np.ndarray,
                 glove_groups: np.ndarray, sqrt_features: bool, identity: bool) -> None:
        super().__init__()
        self.identity, self.sqrt_features = identity, sqrt_features
        if not identity:
            self.register_buffer("projection", torch.from_numpy(projection), persistent=False)
            self.map = DigitMap(np.tile(pixel_groups, 2 if sqrt_features else 1), glove_groups)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        u = x @ self.projection.T
        return torch.cat([u, u.clamp_min(0.0).sqrt()], -1) if self.sqrt_features else u

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.identity else self.map(self.features(x))


class GloveSpaceDecoder(nn.Module):
    """The glove's readings → this layout's readings: a :class:`DigitMap` (the identity for
    the glove), clipped to [0, 1] outside training."""

    def __init__(self, glove_groups: np.ndarray, groups: np.ndarray, identity: bool) -> None:
        super().__init__()
        self.identity = identity
        if not identity:
            self.map = DigitMap(glove_groups, groups)

    def forward(self, g: torch.Tensor) -> torch.Tensor:
        y = g if self.identity else self.map(g)
        return y if self.training else y.clamp(0.0, 1.0)


def neighbourhood(resolution: int, radius: int) -> np.ndarray:
    """(G, G) 0/1: valid UV pixels within ``radius`` pixels (Chebyshev) of each other."""
    pix = np.argwhere(uv_grid(resolution)[1])
    return (np.abs(pix[:, None] - pix[None]).max(-1) <= radius).astype(np.float32)


class LocalEncoder(nn.Module):
    """Readings of one layout → UV image (fixed projection) → locally connected linear map
    (starts as the identity) → unit-norm latent UV image. Each latent pixel is a weighted sum
    of the input pixels near it: enough to undo a device's blur, misregistration, gains and
    dead taxels, too few weights to memorise grasps. Only the neighbourhood's weights are
    parameters (``local_weight``, in the row-major order of :func:`neighbourhood`'s ones)."""

    def __init__(self, projection: np.ndarray, cfg: ModelConfig) -> None:
        super().__init__()
        self.register_buffer("projection", torch.from_numpy(projection), persistent=False)
        rows, cols = np.nonzero(neighbourhood(cfg.resolution, cfg.local_radius))
        self.register_buffer("rows", torch.from_numpy(rows), persistent=False)
        self.register_buffer("cols", torch.from_numpy(cols), persistent=False)
        self.pixels = projection.shape[0]
        self.local_weight = nn.Parameter(torch.from_numpy((rows == cols).astype(np.float32)))
        self.bias = nn.Parameter(torch.zeros(self.pixels))
        self._dense_cache: tuple[tuple[int, int], torch.Tensor] | None = None

    def dense_weight(self) -> torch.Tensor:
        """The (G, G) weight matrix, zero outside the neighbourhood."""
        zeros = self.local_weight.new_zeros(self.pixels, self.pixels)
        return zeros.index_put((self.rows, self.cols), self.local_weight)

    def _inference_weight(self) -> torch.Tensor:
        """:meth:`dense_weight`, rebuilt only when ``local_weight`` changed (inference: the
        service encodes one frame at a time, and the rebuild cost more than the product)."""
        if self.training or torch.is_grad_enabled():
            return self.dense_weight()
        key = (self.local_weight.data_ptr(), self.local_weight._version)
        if self._dense_cache is None or self._dense_cache[0] != key:
            self._dense_cache = (key, self.dense_weight())
        return self._dense_cache[1]

    def uv(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.projection.T

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(F.linear(self.uv(x), self._inference_weight(), self.bias), dim=-1)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        # sessions 14-16 stored the whole (G, G) matrix as ``weight``, of which the forward
        # pass used the neighbourhood only: take those entries
        dense = state_dict.pop(prefix + "weight", None)
        if dense is not None and prefix + "local_weight" not in state_dict:
            if tuple(dense.shape) != (self.pixels, self.pixels):
                raise TactileError(f"{prefix}weight has shape {tuple(dense.shape)}, expected "
                                   f"{(self.pixels, self.pixels)}")
            state_dict[prefix + "local_weight"] = dense[self.rows, self.cols]
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


class LinearDecoder(nn.Module):
    """Latent UV image → readings of one layout: a linear map that starts as UV sampling
    (clipped to [0, 1] outside training)."""

    def __init__(self, sampling: np.ndarray) -> None:
        super().__init__()
        self.net = nn.Linear(sampling.shape[1], sampling.shape[0])
        with torch.no_grad():
            self.net.weight.copy_(torch.from_numpy(sampling))
            self.net.bias.zero_()

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        y = self.net(z)
        return y if self.training else y.clamp(0.0, 1.0)


class Decoder(nn.Module):
    """Latent → readings of one layout in [0, 1]."""

    def __init__(self, taxels: int, cfg: ModelConfig) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(cfg.latent, cfg.hidden // 2), nn.GELU(),
                                 nn.Linear(cfg.hidden // 2, cfg.hidden), nn.GELU(),
                                 nn.Linear(cfg.hidden, taxels))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(z))


class TactileAlignment(nn.Module):
    """Encoders and decoders per domain, and the domain discriminator."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.layouts = {d: load_layout(d) for d in cfg.domains}
        if cfg.encoder not in ENCODERS:
            raise TactileError(f"unknown encoder {cfg.encoder!r} (known: {', '.join(ENCODERS)})")
        if self.glove_space:
            self._glove_space(cfg)
        else:
            local, r = cfg.encoder == "local_uv", cfg.resolution
            self.encoders = nn.ModuleDict({
                d: (LocalEncoder if local else Encoder)(projection_matrix(lay, r), cfg)
                for d, lay in self.layouts.items()})
            self.decoders = nn.ModuleDict({
                d: LinearDecoder(sampling_matrix(lay, r)) if local else Decoder(lay.size, cfg)
                for d, lay in self.layouts.items()})
        self.discriminator = nn.Sequential(nn.Linear(self.latent_size, 64), nn.GELU(),
                                           nn.Linear(64, len(cfg.domains)))

    def _glove_space(self, cfg: ModelConfig) -> None:
        if GLOVE not in self.layouts:
            raise TactileError(f"encoder glove_space needs the {GLOVE} domain: its reading "
                               f"space is the latent")
        glove = self.layouts[GLOVE].group
        _, mask, pixel_group = uv_grid(cfg.resolution)
        pixel_group = pixel_group[mask.ravel()]
        self.encoders = nn.ModuleDict({d: GloveSpaceEncoder(
            projection_matrix(lay, cfg.resolution), pixel_group, glove, cfg.sqrt_features,
            identity=d == GLOVE) for d, lay in self.layouts.items()})
        self.decoders = nn.ModuleDict({d: GloveSpaceDecoder(glove, lay.group, d == GLOVE)
                                       for d, lay in self.layouts.items()})
        n = len(glove)
        # latent = (predicted glove readings − latent_mean) @ whiten; unwhiten = whiten⁻¹
        self.register_buffer("latent_mean", torch.zeros(n))
        self.register_buffer("whiten", torch.eye(n))
        self.register_buffer("unwhiten", torch.eye(n))

    @property
    def glove_space(self) -> bool:
        return self.cfg.encoder == "glove_space"

    @property
    def unit_latent(self) -> bool:
        """Latents are unit vectors (compare by cosine); glove_space's are not (compare by
        Euclidean distance, the Mahalanobis distance of the glove readings)."""
        return not self.glove_space

    @property
    def latent_size(self) -> int:
        """Length of a latent: the valid UV pixels (local_uv), the glove's taxels
        (glove_space) or ``cfg.latent``."""
        if self.cfg.encoder == "local_uv":
            return int(uv_grid(self.cfg.resolution)[1].sum())
        if self.glove_space:
            return self.layouts[GLOVE].size
        return self.cfg.latent

    def encode(self, domain: str, x: torch.Tensor) -> torch.Tensor:
        z = self.encoders[domain](x)
        return (z - self.latent_mean) @ self.whiten if self.glove_space else z

    def decode(self, domain: str, z: torch.Tensor) -> torch.Tensor:
        if self.glove_space:
            z = z @ self.unwhiten + self.latent_mean
        return self.decoders[domain](z)

    def convert(self, source: str, target: str, x: torch.Tensor) -> torch.Tensor:
        return self.decode(target, self.encode(source, x))


# --- checkpoints -----------------------------------------------------------------------

def save_model(model: TactileAlignment, directory: str | Path, info: dict | None = None) -> Path:
    """Write ``model.safetensors`` + ``config.json`` into ``directory``."""
    return checkpoint.save(directory, model, {
        "config": asdict(model.cfg),
        "layouts": {d: {"taxels": lay.size, "sha256": lay.digest}
                    for d, lay in model.layouts.items()},
        "info": info or {}})


def load_model(directory: str | Path) -> tuple[TactileAlignment, dict]:
    """Load a checkpoint (eval mode) and its config.json; errors name the path."""
    def parse(config: dict) -> ModelConfig:
        # checkpoints from before local_uv name no encoder: theirs was per_domain
        return ModelConfig(**{"encoder": "per_domain", **config["config"]})
    config, cfg = checkpoint.read_config(directory, parse, TactileError, "tactile model")
    model = TactileAlignment(cfg)
    for d, lay in model.layouts.items():
        want = config.get("layouts", {}).get(d, {}).get("sha256")
        if want and want != lay.digest:
            raise TactileError(f"'{directory}' was trained on another version of layout "
                               f"{d!r} (layout file changed since)")
    return checkpoint.load_weights(model, directory, TactileError).eval(), config


class Aligner:
    """Inference on single frames: validation, latent, conversion (one torch thread is
    enough: a glove → robot conversion is a few small matrix products)."""

    def __init__(self, model: TactileAlignment, config: dict | None = None) -> None:
        self.model = model.eval()
        self.config = config or {}
        self.sizes = {d: lay.size for d, lay in model.layouts.items()}

    @classmethod
    def load(cls, directory: str | Path | None = None) -> "Aligner":
        from embodied_transfer.tactile import DEFAULT_MODEL

        return cls(*load_model(directory or DEFAULT_MODEL))

    @property
    def domains(self) -> list[str]:
        return list(self.sizes)

    def check(self, domain: str, values) -> np.ndarray:
        """``values`` as float32 if they are a valid frame of ``domain``, else TactileError."""
        if domain not in self.sizes:
            raise TactileError(f"unknown domain {domain!r} (known: {', '.join(self.sizes)})",
                              "unknown_domain")
        x = np.asarray(values, dtype=np.float32).reshape(-1)
        if x.size != self.sizes[domain]:
            raise TactileError(f"domain {domain!r} has {self.sizes[domain]} taxels, got "
                               f"{x.size} values", "wrong_size")
        if not np.isfinite(x).all():
            raise TactileError(f"{int((~np.isfinite(x)).sum())} value(s) are NaN or infinite",
                              "not_finite")
        if x.min(initial=0.0) < 0.0 or x.max(initial=0.0) > 1.0:
            raise TactileError(f"values must lie in [0, 1] (got min {x.min():.3g}, "
                               f"max {x.max():.3g})", "out_of_range")
        return x

    def align(self, domain: str, values, target: str = "") -> tuple[np.ndarray, np.ndarray | None]:
        """(latent, frame converted to ``target`` or None when ``target`` is empty)."""
        x = self.check(domain, values)
        if target and target not in self.sizes:
            raise TactileError(f"unknown target domain {target!r} "
                               f"(known: {', '.join(self.sizes)})", "unknown_domain")
        with torch.inference_mode():
            z = self.model.encode(domain, torch.from_numpy(x)[None])
            out = self.model.decode(target, z)[0].numpy() if target else None
        return z[0].numpy(), out
