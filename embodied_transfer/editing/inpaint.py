"""Stable Diffusion inpainting steered by the BiomedCLIP directional loss.

At each denoising step the predicted clean latent x0 is decoded, composited with the original
outside the mask, and ``L_dir = 1 − cos(V(edit) − V(orig), ΔT)`` is computed; the latents step
against its gradient (taken through x0, the noise prediction held fixed, restricted to the
mask) with ``guidance_scale``. The result is blended back so pixels outside the mask are exactly
the original's.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from embodied_transfer.editing.clip import DEFAULT_TEMPLATES, BiomedClip, directional_loss
from embodied_transfer.editing.errors import EditError

DEFAULT_INPAINT = "stable-diffusion-v1-5/stable-diffusion-inpainting"


def default_device() -> tuple[torch.device, torch.dtype]:
    """cuda + fp16 when a GPU is present, else CPU + fp32."""
    if torch.cuda.is_available():
        return torch.device("cuda"), torch.float16
    return torch.device("cpu"), torch.float32


def load_inpaint(model: str = DEFAULT_INPAINT, device: str | torch.device | None = None,
                 dtype: torch.dtype | None = None, allow_download: bool = False,
                 lora: str | None = None):
    """A diffusers ``StableDiffusionInpaintPipeline`` from a hub id or local dir (local files only
    unless allow_download), optionally with a LoRA from ``edit-train``."""
    from diffusers import StableDiffusionInpaintPipeline

    dev, dt = default_device()
    dev = torch.device(device) if device is not None else dev
    dt = dtype or (dt if dev.type == "cuda" else torch.float32)
    path = Path(model).expanduser()
    if not path.is_dir() and (model.startswith((".", "/", "~")) or model.count("/") != 1):
        raise EditError(f"inpainting model {model!r} is neither a directory nor a hub id; fetch "
                        f"one with `hf download {DEFAULT_INPAINT} --local-dir DIR` and pass "
                        f"--inpaint-model DIR")
    try:
        pipe = StableDiffusionInpaintPipeline.from_pretrained(
            str(path) if path.is_dir() else model, dtype=dt,
            local_files_only=not allow_download, safety_checker=None,
            requires_safety_checker=False)
    except Exception as exc:  # noqa: BLE001 - wrap loader errors with what to fetch
        raise EditError(
            f"could not load inpainting model {model!r} ({type(exc).__name__}: {exc}). Fetch it "
            f"with `hf download {model if not path.is_dir() else DEFAULT_INPAINT}` (HF cache, "
            f"~/.cache/huggingface/hub) or `... --local-dir DIR` and pass --inpaint-model DIR; "
            f"or pass --allow-download") from exc
    if pipe.unet.config.in_channels != 9:
        raise EditError(f"{model!r} is not an inpainting model: its U-Net takes "
                        f"{pipe.unet.config.in_channels} input channels, not 9")
    if lora:
        if not Path(lora).is_dir():
            raise EditError(f"LoRA directory {lora} not found (write one with edit-train)")
        try:
            pipe.load_lora_weights(lora)
        except Exception as exc:  # noqa: BLE001
            raise EditError(f"could not load the LoRA in {lora}: {exc}") from exc
    pipe.to(dev)
    pipe.set_progress_bar_config(disable=True)
    for part in (pipe.unet, pipe.vae, pipe.text_encoder):
        part.requires_grad_(False).eval()
    return pipe


# --------------------------------------------------------------------------- inputs

def load_image(path: str | Path) -> np.ndarray:
    """An image file as float32 RGB (H, W, 3) in [0, 1]; grayscale (8/16-bit, float) → RGB."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
                a = np.asarray(im, dtype=np.float32)
                lo, hi = float(a.min()), float(a.max())
                a = (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)
                return np.repeat(a[..., None], 3, axis=-1)
            return np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
    except FileNotFoundError as exc:
        raise EditError(f"image {path} not found") from exc
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise EditError(f"cannot read image {path}: {exc}") from exc


def load_mask(path: str | Path, size: tuple[int, int] | None = None) -> np.ndarray:
    """A binary mask file as bool (H, W) (white/non-zero = edit). Checks it is binary, non-empty
    and, if size=(W, H) is given, of that size."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            a = np.asarray(im.convert("L") if im.mode not in ("1", "L", "I", "I;16") else im)
    except FileNotFoundError as exc:
        raise EditError(f"mask {path} not found") from exc
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise EditError(f"cannot read mask {path}: {exc}") from exc
    return check_mask(a, size, str(path))


def check_mask(mask: np.ndarray, size: tuple[int, int] | None = None,
               name: str = "mask") -> np.ndarray:
    """Validate a mask array: 2-D, of size (W, H) if given, binary (two values: 0 and one other
    value), non-empty. Returns a bool array."""
    m = np.asarray(mask)
    if m.ndim == 3:
        m = m[..., 0] if m.shape[-1] in (1, 3, 4) else m
    if m.ndim != 2:
        raise EditError(f"{name}: a mask must be a 2-D image, got shape {m.shape}")
    if size is not None and (m.shape[1], m.shape[0]) != tuple(size):
        raise EditError(f"{name} is {m.shape[1]}x{m.shape[0]} but the image is "
                        f"{size[0]}x{size[1]}; they must be the same size")
    values = np.unique(m)
    if m.dtype != bool and (len(values) > 2 or (len(values) == 2 and values[0] != 0)):
        shown = ', '.join(str(v) for v in values[:6]) + ('…' if len(values) > 6 else '')
        raise EditError(f"{name} is not binary: it holds {len(values)} values ({shown});"
                        f" use 0 to keep and 255 (or 1) to edit, saved losslessly (PNG)")
    out = m.astype(bool)
    if not out.any():
        raise EditError(f"{name} is empty: no pixel is marked for editing")
    return out


# --------------------------------------------------------------------------- guided inpainting

@dataclass
class EditResult:
    """The edited image and what happened on the way."""

    image: np.ndarray                  # float32 (H, W, 3) in [0, 1], original size, blended
    raw: np.ndarray                    # the decoded result before blending, original size
    l_dir: float                       # L_dir of the final (blended) edit
    l_dir_trace: list[float] = field(default_factory=list)   # L_dir of x0 at each guided step
    seconds: float = 0.0
    steps: int = 0


def _to_tensor(img: np.ndarray, device, dtype) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].to(device, dtype)


def _work_size(h: int, w: int, multiple: int, size: int | None) -> tuple[int, int]:
    if size:
        s = size / max(h, w)
        h, w = h * s, w * s
    return max(multiple, int(round(h / multiple)) * multiple), \
        max(multiple, int(round(w / multiple)) * multiple)


def _alpha_bar(scheduler, t) -> torch.Tensor:
    return scheduler.alphas_cumprod.to("cpu")[int(t)].float()


def _pred_x0(scheduler, latents: torch.Tensor, model_out: torch.Tensor, t) -> torch.Tensor:
    a = _alpha_bar(scheduler, t).to(latents.device)
    if scheduler.config.prediction_type == "v_prediction":
        return a.sqrt() * latents - (1 - a).sqrt() * model_out
    return (latents - (1 - a).sqrt() * model_out) / a.sqrt()


def clip_l_dir(clip: BiomedClip, edited: torch.Tensor, original: torch.Tensor,
               mask: torch.Tensor, delta_t: torch.Tensor,
               original_emb: torch.Tensor | None = None) -> torch.Tensor:
    """L_dir of edited vs original (B,3,H,W in [0,1]) restricted to the mask: the edit is
    composited with the original outside the mask before embedding. (B,)"""
    comp = edited.float() * mask.float() + original.float() * (1 - mask.float())
    if original_emb is None:
        with torch.no_grad():
            original_emb = clip.image_embedding(original.float())
    return directional_loss(clip.image_embedding(comp), original_emb, delta_t)


def guided_inpaint(pipe, clip: BiomedClip, image: np.ndarray, mask: np.ndarray, *,
                   source_prompt: str, target_prompt: str, prompt: str | None = None,
                   negative_prompt: str | None = None, guidance_scale: float = 0.0,
                   cfg_scale: float = 7.5, steps: int = 25, seed: int = 0,
                   size: int | None = None,
                   templates: Sequence[str] = DEFAULT_TEMPLATES) -> EditResult:
    """Inpaint the masked region of image (float RGB (H,W,3) in [0,1]) with the pipeline,
    steering each step by −guidance_scale·∇L_dir (ΔT from source → target prompt).

    prompt (default target_prompt) conditions the U-Net; cfg_scale is classifier-free guidance.
    The gradient is normalised to unit RMS and scaled by the step's noise level, so
    guidance_scale is in latent units per step. Pixels outside the mask keep their values."""
    mask = check_mask(mask, (image.shape[1], image.shape[0]))
    if steps < 1:
        raise EditError(f"steps must be >= 1, got {steps}")
    t0 = time.perf_counter()
    device, dtype = pipe.unet.device, pipe.unet.dtype
    vae_f = pipe.vae_scale_factor
    multiple = vae_f * 2 ** (len(pipe.unet.config.block_out_channels) - 1)
    h0, w0 = image.shape[:2]
    h, w = _work_size(h0, w0, multiple, size)

    orig_full = _to_tensor(image, device, torch.float32)
    mask_full = torch.from_numpy(mask.astype(np.float32))[None, None].to(device)
    orig = F.interpolate(orig_full, size=(h, w), mode="bilinear", align_corners=False,
                         antialias=True).clamp(0, 1)
    m = (F.interpolate(mask_full, size=(h, w), mode="nearest") > 0.5).float()
    if not m.any():
        m = (F.interpolate(mask_full, size=(h, w), mode="area") > 0).float()

    delta_t = clip.text_direction(source_prompt, target_prompt, templates).to(device)
    with torch.no_grad():
        orig_emb = clip.image_embedding(orig)
        do_cfg = cfg_scale > 1.0
        cond, uncond = pipe.encode_prompt(prompt or target_prompt, device, 1, do_cfg,
                                          negative_prompt)
        embeds = torch.cat([uncond, cond]) if do_cfg else cond
        masked = (orig * 2 - 1) * (1 - m)
        sf = pipe.vae.config.scaling_factor
        masked_lat = pipe.vae.encode(masked.to(dtype)).latent_dist.mode() * sf
        m_lat = F.interpolate(m, size=masked_lat.shape[-2:], mode="nearest").to(dtype)
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    sched = pipe.scheduler
    sched.set_timesteps(steps, device=device)
    latents = torch.randn(masked_lat.shape, generator=gen, dtype=torch.float32).to(device, dtype)
    latents = latents * sched.init_noise_sigma
    extra = {"generator": gen} if "generator" in __import__("inspect").signature(
        sched.step).parameters else {}
    trace: list[float] = []

    def decode(lat: torch.Tensor) -> torch.Tensor:
        return (pipe.vae.decode(lat.to(dtype) / sf).sample.float() / 2 + 0.5).clamp(0, 1)

    for t in sched.timesteps:
        with torch.no_grad():
            lat_in = torch.cat([latents] * 2) if do_cfg else latents
            lat_in = sched.scale_model_input(lat_in, t)
            k = lat_in.shape[0]
            unet_in = torch.cat([lat_in, m_lat.expand(k, -1, -1, -1),
                                 masked_lat.expand(k, -1, -1, -1)], dim=1).to(dtype)
            out = pipe.unet(unet_in, t, encoder_hidden_states=embeds).sample
            if do_cfg:
                u, c = out.chunk(2)
                out = u + cfg_scale * (c - u)
        if guidance_scale > 0:
            with torch.enable_grad():
                lat = latents.detach().float().requires_grad_(True)
                x0 = _pred_x0(sched, lat, out.float(), t)
                loss = clip_l_dir(clip, decode(x0), orig, m, delta_t, orig_emb).sum()
                grad, = torch.autograd.grad(loss, lat)
            trace.append(float(loss.detach()))
            grad = grad * m_lat.float()
            rms = grad.pow(2).sum().div(m_lat.float().sum() * grad.shape[1]).sqrt()
            sigma = (1 - _alpha_bar(sched, t)).sqrt().to(device)
            latents = (latents.float() - guidance_scale * sigma * grad / (rms + 1e-12)).to(dtype)
        latents = sched.step(out, t, latents, **extra).prev_sample

    with torch.no_grad():
        raw = decode(latents)
        raw_full = F.interpolate(raw, size=(h0, w0), mode="bilinear", align_corners=False,
                                 antialias=True).clamp(0, 1)
        blended = raw_full * mask_full + orig_full * (1 - mask_full)
        l_dir = float(clip_l_dir(clip, blended, orig_full, mask_full, delta_t)[0])
    img = blended[0].permute(1, 2, 0).cpu().numpy().astype(np.float32)
    img[~mask] = image[~mask]           # exactly the original outside the mask
    return EditResult(image=img, raw=raw_full[0].permute(1, 2, 0).cpu().numpy(),
                      l_dir=l_dir, l_dir_trace=trace, seconds=time.perf_counter() - t0,
                      steps=steps)
