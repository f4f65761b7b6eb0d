"""The ``cnn`` backend: a GR-ConvNet-style generative grasp network (no language).

Kumra et al. (2020), "Antipodal Robotic Grasping using Generative Residual Convolutional
Neural Network": a conv encoder (9×9 then two stride-2 4×4 convs), residual blocks at 1/4
resolution, a transposed-conv decoder back to full resolution and per-pixel output maps —
grasp quality, cos 2θ, sin 2θ and opening width. This version is narrower (``channels``,
``res_blocks``) and ends in a 3×3 conv instead of a 9×9 transposed conv, so that one image
runs in a few tens of milliseconds on a small CPU.

Pipeline (all in :class:`CnnBackend`):

* input: the RGB image (+ depth) is normalised (RGB/255 minus the image's mean; depth minus
  its mean in decimetres, clipped to ±2, NaN → the mean), placed on a square
  (``fit="pad"``: the longer side, padded with the mean, the whole image stays visible;
  ``fit="crop"``: the centred square of the shorter side, as GR-ConvNet crops Cornell) and
  resized to ``input_size``;
* output (:func:`decode_maps`): the Gaussian-filtered quality map's argmax (refined to
  sub-pixel by a parabola through its neighbours), the angle ½·atan2(sin, cos) and width
  there, mapped back to original image pixels; score = filtered quality clipped to [0, 1].

Pixel coordinates follow :mod:`embodied_transfer.grasp.rectangles` with pixel ``i``'s centre
at coordinate ``i`` (the OpenCV convention).

Training (the target maps, augmentation, the loss and the training loop) lives in
:mod:`embodied_transfer.grasp.cnn_train`; this module, all the node needs, does not import it.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from embodied_transfer.core import checkpoint
from embodied_transfer.grasp.backends.base import GraspBackend, Prediction
from embodied_transfer.grasp.errors import GraspError
from embodied_transfer.grasp.rectangles import Grasp

KIND = "grconvnet"


@dataclass
class CnnConfig:
    """Network and pre/post-processing sizes; stored in config.json beside the weights."""

    input_size: int = 128           # side of the square network input, px (multiple of 4)
    use_depth: bool = True          # RGB-D (4 input channels) or RGB (3)
    channels: int = 16              # encoder widths: channels, 2×, 4× (GR-ConvNet: 32)
    res_blocks: int = 3             # residual blocks at 1/4 resolution (GR-ConvNet: 5)
    first_kernel: int = 9           # first conv's kernel (GR-ConvNet: 9)
    fit: str = "pad"                # "pad" (whole image) or "crop" (centred square)
    width_scale: float = 0.25       # width map = opening / (width_scale · input_size)
    quality_sigma: float = 1.5      # Gaussian filter of the quality map, input px
    depth_scale: float = 10.0       # normalised depth = (depth − centre) · depth_scale (1/m)
    depth_clip: float = 2.0         # … clipped to ± this (2.0 at scale 10: ± 20 cm)
    depth_centre: str = "mean"      # "mean" or "median" of the valid depth (robust to walls)
    #: The part of the image the network sees, as fractions (x0, y0, x1, y1) of its width
    #: and height: a fixed workspace, the same for every image of a camera (never the
    #: labels); the whole image by default.
    workspace: tuple = (0.0, 0.0, 1.0, 1.0)
    #: RGB-D models trained with depth dropout also answer without depth (a flat depth
    #: channel); the others need depth.
    rgb_fallback: bool = False

    def __post_init__(self) -> None:
        if self.input_size < 16 or self.input_size % 4:
            raise GraspError(f"input_size must be a multiple of 4 and >= 16, "
                             f"got {self.input_size}")
        if self.fit not in ("pad", "crop"):
            raise GraspError(f"fit must be 'pad' or 'crop', got {self.fit!r}")
        if self.channels < 1 or self.res_blocks < 0 or self.first_kernel % 2 == 0:
            raise GraspError("channels >= 1, res_blocks >= 0 and an odd first_kernel needed")
        if self.depth_centre not in ("mean", "median"):
            raise GraspError(f"depth_centre must be 'mean' or 'median', got "
                             f"{self.depth_centre!r}")
        try:
            self.workspace = tuple(float(v) for v in self.workspace)
            x0, y0, x1, y1 = self.workspace
        except (TypeError, ValueError):
            x0 = y0 = x1 = y1 = math.nan
        if not (0.0 <= x0 < x1 <= 1.0 and 0.0 <= y0 < y1 <= 1.0):
            raise GraspError(f"workspace must be 4 fractions x0 < x1, y0 < y1 in [0, 1], "
                             f"got {self.workspace}")

    @property
    def in_channels(self) -> int:
        return 4 if self.use_depth else 3

    @property
    def width_norm(self) -> float:
        """Input pixels of opening that the width map's 1.0 stands for."""
        return self.width_scale * self.input_size


# ---------------------------------------------------------------------------- network

def _conv_bn_relu(cin: int, cout: int, k: int, stride: int, pad: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, k, stride, pad, bias=False), nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True)]


def _up_bn_relu(cin: int, cout: int) -> list[nn.Module]:
    return [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True)]


class ResidualBlock(nn.Module):
    """conv3×3-BN-ReLU-conv3×3-BN plus the input (GR-ConvNet's block)."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.body = nn.Sequential(*_conv_bn_relu(c, c, 3, 1, 1),
                                  nn.Conv2d(c, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class GraspNet(nn.Module):
    """(B, C, N, N) normalised image → (B, 4, N, N) maps: quality, cos 2θ, sin 2θ, width."""

    def __init__(self, cfg: CnnConfig) -> None:
        super().__init__()
        self.cfg = cfg
        c, k = cfg.channels, cfg.first_kernel
        self.encoder = nn.Sequential(*_conv_bn_relu(cfg.in_channels, c, k, 1, k // 2),
                                     *_conv_bn_relu(c, 2 * c, 4, 2, 1),
                                     *_conv_bn_relu(2 * c, 4 * c, 4, 2, 1))
        self.residual = nn.Sequential(*(ResidualBlock(4 * c) for _ in range(cfg.res_blocks)))
        self.decoder = nn.Sequential(*_up_bn_relu(4 * c, 2 * c), *_up_bn_relu(2 * c, c),
                                     *_conv_bn_relu(c, c, 3, 1, 1))
        self.head = nn.Conv2d(c, 4, 1)      # the four 1×1 output heads in one conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.decoder(self.residual(self.encoder(x))))


# ------------------------------------------------------------------ pre/post-processing

@dataclass(frozen=True)
class Frame:
    """Where the network's square input sits in the original image.

    The square's top-left corner is original pixel (``x0``, ``y0``) (negative: padding) and
    its side ``side`` original pixels; one input pixel spans ``scale = side / size`` of them.
    """

    x0: int
    y0: int
    side: int
    size: int

    @classmethod
    def of(cls, width: int, height: int, cfg: CnnConfig) -> "Frame":
        """The square around the configured workspace of a ``width`` × ``height`` image."""
        fx0, fy0, fx1, fy1 = cfg.workspace
        x0, y0 = int(round(fx0 * width)), int(round(fy0 * height))
        w, h = max(int(round(fx1 * width)) - x0, 1), max(int(round(fy1 * height)) - y0, 1)
        side = max(w, h) if cfg.fit == "pad" else min(w, h)
        return cls(x0 + (w - side) // 2, y0 + (h - side) // 2, side, cfg.input_size)

    @property
    def scale(self) -> float:
        return self.side / self.size

    def to_input(self, g: Grasp) -> Grasp:
        s = self.scale
        return Grasp((g.x - self.x0 + 0.5) / s - 0.5, (g.y - self.y0 + 0.5) / s - 0.5,
                     g.theta, g.width / s, None if g.height is None else g.height / s)

    def to_image(self, g: Grasp) -> Grasp:
        s = self.scale
        return Grasp((g.x + 0.5) * s - 0.5 + self.x0, (g.y + 0.5) * s - 0.5 + self.y0,
                     g.theta, g.width * s, None if g.height is None else g.height * s)


def _check_inputs(rgb: np.ndarray, depth: np.ndarray | None) -> None:
    if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.shape[2] != 3 \
            or rgb.dtype != np.uint8:
        raise GraspError(f"rgb must be an (H, W, 3) uint8 array, got "
                         f"{getattr(rgb, 'shape', type(rgb).__name__)} "
                         f"{getattr(rgb, 'dtype', '')}")
    if depth is not None and np.shape(depth) != rgb.shape[:2]:
        raise GraspError(f"depth {np.shape(depth)} does not match the image {rgb.shape[:2]}")


def _square(image: np.ndarray, frame: Frame, fill) -> np.ndarray:
    """The frame's square of ``image`` at full resolution (crop and/or pad with ``fill``)."""
    h, w = image.shape[:2]
    ix0, iy0 = max(frame.x0, 0), max(frame.y0, 0)
    ix1, iy1 = min(frame.x0 + frame.side, w), min(frame.y0 + frame.side, h)
    part = image[iy0:iy1, ix0:ix1]
    top, left = iy0 - frame.y0, ix0 - frame.x0
    bottom, right = frame.side - top - part.shape[0], frame.side - left - part.shape[1]
    if top or left or bottom or right:
        part = cv2.copyMakeBorder(part, top, bottom, left, right, cv2.BORDER_CONSTANT,
                                  value=fill)
    return part


def _resize(image: np.ndarray, n: int) -> np.ndarray:
    side = image.shape[0]
    if side == n:
        return image
    return cv2.resize(image, (n, n), interpolation=cv2.INTER_AREA if side > n
                      else cv2.INTER_LINEAR)


def preprocess(rgb: np.ndarray, depth: np.ndarray | None, cfg: CnnConfig
               ) -> tuple[np.ndarray, Frame]:
    """The network input (C, N, N) float32 of one image and its :class:`Frame`.

    RGB/255 minus the image's mean (one value over all channels), depth minus its mean
    (or median, ``depth_centre``) over valid pixels times ``depth_scale``, clipped to
    ± ``depth_clip``; holes (NaN, inf, 0 or negative: no reading) count as that centre, and
    a depth image with no valid pixel is all centre (flat). Padding is the mean, i.e. 0
    after normalisation. The workspace square is cut and resized before normalising (it is
    linear), which keeps this cheap on full-size images.
    """
    _check_inputs(rgb, depth)
    if cfg.use_depth and depth is None and not cfg.rgb_fallback:
        raise GraspError("this CNN model was trained on RGB-D and needs a depth image")
    h, w = rgb.shape[:2]
    frame = Frame.of(w, h, cfg)
    n = cfg.input_size
    mean = float(np.mean(cv2.mean(rgb)[:3]))
    small = _resize(_square(rgb, frame, (round(mean),) * 3), n)
    x = np.empty((cfg.in_channels, n, n), np.float32)
    x[:3] = (small.astype(np.float32).transpose(2, 0, 1) - mean) * (1.0 / 255.0)
    if cfg.use_depth and depth is None:
        x[3] = 0.0                          # flat: what depth dropout trained it for
    elif cfg.use_depth:
        d = np.asarray(depth, dtype=np.float32)
        valid = np.isfinite(d) & (d > 0)
        all_valid = bool(valid.all())
        centre = np.median if cfg.depth_centre == "median" else np.mean
        mean_d = float(centre(d) if all_valid else centre(d[valid]) if valid.any() else 0.0)
        if not all_valid:
            d = np.where(valid, d, np.float32(mean_d))
        small_d = _resize(_square(d, frame, mean_d), n)
        np.clip((small_d - np.float32(mean_d)) * np.float32(cfg.depth_scale),
                -cfg.depth_clip, cfg.depth_clip, out=x[3])
    return x, frame


def _parabola_offset(left: float, centre: float, right: float) -> float:
    denom = left - 2.0 * centre + right
    return 0.0 if denom >= 0 else float(np.clip(0.5 * (left - right) / denom, -0.5, 0.5))


def decode_maps(maps: np.ndarray, width_norm: float, quality_sigma: float = 1.5,
                near: tuple[float, float] | None = None, radius: float = 0.0
                ) -> tuple[Grasp, float]:
    """The best grasp in (4, N, N) maps (input pixels) and its quality.

    The quality map is Gaussian-filtered (``quality_sigma`` px; 0: not filtered), its argmax
    refined to sub-pixel; cos/sin/width are averaged around it (σ = 1 px, weighted by the
    raw quality). With ``near`` (column, row), only pixels within ``radius`` of it compete
    (the pixel nearest ``near``, clipped into the maps, always does).
    """
    q, cos2, sin2, width = (np.ascontiguousarray(m, dtype=np.float32) for m in maps)
    if quality_sigma > 0:
        q = cv2.GaussianBlur(q, (0, 0), quality_sigma, borderType=cv2.BORDER_REPLICATE)
    n_r, n_c = q.shape
    if near is None:
        r, c = np.unravel_index(int(np.argmax(q)), q.shape)
    else:
        cx = min(max(float(near[0]), 0.0), n_c - 1.0)
        cy = min(max(float(near[1]), 0.0), n_r - 1.0)
        yy, xx = np.ogrid[:n_r, :n_c]
        inside = (xx - cx) ** 2 + (yy - cy) ** 2 <= max(float(radius), 0.0) ** 2
        inside[int(round(cy)), int(round(cx))] = True
        r, c = np.unravel_index(int(np.argmax(np.where(inside, q, -np.inf))), q.shape)
    dy = _parabola_offset(q[r - 1, c], q[r, c], q[r + 1, c]) if 0 < r < n_r - 1 else 0.0
    dx = _parabola_offset(q[r, c - 1], q[r, c], q[r, c + 1]) if 0 < c < n_c - 1 else 0.0
    # angle and width: averages around the peak weighted by a σ = 1 px Gaussian times the
    # raw quality (so pixels outside the graspable region do not pull the width down)
    r0, r1, c0, c1 = max(r - 2, 0), min(r + 3, n_r), max(c - 2, 0), min(c + 3, n_c)
    yy, xx = np.mgrid[r0:r1, c0:c1]
    wgt = np.exp(-0.5 * ((yy - r) ** 2 + (xx - c) ** 2)) \
        * np.clip(maps[0][r0:r1, c0:c1], 0.0, None)
    if wgt.sum() <= 1e-6:                   # no positive quality nearby: the peak pixel
        wgt = ((yy == r) & (xx == c)).astype(np.float64)
    cs = float((cos2[r0:r1, c0:c1] * wgt).sum())
    sn = float((sin2[r0:r1, c0:c1] * wgt).sum())
    wd = float((width[r0:r1, c0:c1] * wgt).sum() / wgt.sum())
    theta = 0.5 * math.atan2(sn, cs)
    opening = max(wd * width_norm, 1.0)
    return Grasp(float(c) + dx, float(r) + dy, theta, opening), float(q[r, c])


# ------------------------------------------------------------------- nothing to grasp

#: Relief (m) that counts as an object above the table, and how many pixels must show it.
RELIEF_M = 0.01
RELIEF_PIXELS = 25
#: Colour spread (0-255) below which an image shows nothing (black, saturated, blank).
UNIFORM_STD = 3.0


def depth_relief(depth: np.ndarray) -> int | None:
    """About how many pixels stand at least :data:`RELIEF_M` nearer than the table in their
    row (the median of the row's valid depth), counted on a grid of at most 160 × 160
    points; None when the depth image has no valid pixel."""
    step = max(1, -(-max(depth.shape) // 160))
    d = np.asarray(depth[::step, ::step], dtype=np.float32)
    d = np.where(np.isfinite(d) & (d > 0), d, np.nan)
    valid_rows = ~np.isnan(d).all(axis=1)
    if not valid_rows.any():
        return None
    table = np.nanmedian(d[valid_rows], axis=1, keepdims=True)
    return int(np.count_nonzero(d[valid_rows] <= table - RELIEF_M)) * step * step


def nothing_to_grasp(rgb: np.ndarray, depth: np.ndarray | None) -> str:
    """Why the image holds nothing to grasp ("" when it may): a depth image with valid
    readings but nothing standing :data:`RELIEF_M` above the table, or, without usable
    depth, an image of one colour."""
    relief = depth_relief(depth) if depth is not None else None
    if relief is not None:
        return "" if relief >= RELIEF_PIXELS else \
            f"nothing stands above the table in the depth image (relief >= {RELIEF_M} m " \
            f"on {relief} pixels)"
    if float(np.std(rgb[::4, ::4])) < UNIFORM_STD:
        return "the image is uniform (black, saturated or blank) and has no usable depth"
    return ""


# ------------------------------------------------------------------------------ backend

class CnnBackend(GraspBackend):
    """GR-ConvNet-style backend: one grasp per image, ignoring the instruction."""

    name = "cnn"
    uses_instruction = False

    def __init__(self, model: GraspNet, info: dict | None = None) -> None:
        # NHWC runs the convolutions faster on CPU (oneDNN); weights are the same values
        self.model = model.to(memory_format=torch.channels_last).eval()
        self.cfg: CnnConfig = model.cfg
        self.info = dict(info or {})

    @classmethod
    def create(cls, cfg: CnnConfig | None = None, seed: int = 0) -> "CnnBackend":
        """An untrained backend (weights initialised from ``seed``)."""
        torch.manual_seed(seed)
        return cls(GraspNet(cfg or CnnConfig()))

    def set_workspace(self, workspace) -> None:
        """See only ``workspace`` (fractions x0, y0, x1, y1 of the image) from now on: the
        fixed region of a camera's image where objects lie (empty: the model's default)."""
        if workspace:
            self.cfg = CnnConfig(**{**asdict(self.cfg), "workspace": tuple(workspace)})

    def maps(self, rgb: np.ndarray, depth: np.ndarray | None) -> tuple[np.ndarray, Frame]:
        """The raw (4, N, N) output maps of one image and where they sit in it."""
        x, frame = preprocess(rgb, depth, self.cfg)
        with torch.inference_mode():
            inp = torch.from_numpy(x)[None].contiguous(memory_format=torch.channels_last)
            device = next(self.model.parameters()).device      # a GPU while training there
            out = self.model(inp.to(device))[0].contiguous().cpu().numpy()
        return out, frame

    def predict(self, rgb: np.ndarray, depth: np.ndarray | None, instruction: str = ""
                ) -> Prediction:
        """The best grasp of the image, or no grasp with the reason when there is nothing to
        grasp: a uniform image (black, saturated, blank) without depth relief, or a depth
        image in which nothing stands above the table (:func:`nothing_to_grasp`)."""
        _check_inputs(rgb, depth)
        why = nothing_to_grasp(rgb, depth)
        if why:
            return Prediction(None, score=0.0, error=why)
        out, frame = self.maps(rgb, depth)
        g_in, quality = decode_maps(out, self.cfg.width_norm, self.cfg.quality_sigma)
        grasp = frame.to_image(g_in)
        return Prediction(grasp, score=float(np.clip(quality, 0.0, 1.0)),
                          extra={"input_grasp": g_in, "quality": quality})

    def save(self, directory: str | Path) -> Path:
        """Write ``model.safetensors`` + ``config.json`` into ``directory``."""
        return checkpoint.save(directory, self.model, {
            "kind": KIND, "backend": self.name, "config": asdict(self.cfg), "info": self.info})

    @classmethod
    def load(cls, directory: str | Path) -> "CnnBackend":
        """Load a saved model; GraspError naming the path when something is missing or bad."""
        directory = Path(directory)
        if not directory.is_dir():
            raise GraspError(f"no CNN grasp model at '{directory}' (no such directory; "
                             "train one with train_cnn)")
        config, cfg = checkpoint.read_config(directory, _parse_config, GraspError,
                                             "CNN grasp model")
        model = checkpoint.load_weights(GraspNet(cfg), directory, GraspError)
        return cls(model, config.get("info", {}))

    def close(self) -> None:
        self.model = None  # type: ignore[assignment]


def _parse_config(config: dict) -> CnnConfig:
    if config.get("kind") != KIND:
        raise ValueError(f"it holds a {config.get('kind')!r} model, not a {KIND!r} one")
    return CnnConfig(**config["config"])
