"""LoRA fine-tune of the inpainting U-Net: noise-prediction MSE + λ·L_dir (peft, diffusers)."""
from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from embodied_transfer.editing.clip import DEFAULT_TEMPLATES, BiomedClip
from embodied_transfer.editing.errors import EditError
from embodied_transfer.editing.inpaint import (_work_size, clip_l_dir, load_image,
                                               load_mask)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
LORA_TARGETS = ("to_q", "to_k", "to_v", "to_out.0")


def read_pairs(folder: str | Path) -> list[tuple[Path, Path]]:
    """(image, mask) pairs in folder: ``NAME.png`` with ``NAME_mask.png`` (or ``masks/NAME.png``
    next to ``images/NAME.png``)."""
    root = Path(folder)
    if not root.is_dir():
        raise EditError(f"training folder {root} not found")
    pairs: list[tuple[Path, Path]] = []
    if (root / "images").is_dir() and (root / "masks").is_dir():
        for img in sorted((root / "images").iterdir()):
            cands = [root / "masks" / img.name] + [root / "masks" / (img.stem + s)
                                                   for s in IMAGE_SUFFIXES]
            mask = next((c for c in cands if c.is_file()), None)
            if img.suffix.lower() in IMAGE_SUFFIXES and mask:
                pairs.append((img, mask))
    else:
        for img in sorted(root.iterdir()):
            if img.suffix.lower() not in IMAGE_SUFFIXES or img.stem.endswith("_mask"):
                continue
            mask = next((root / (img.stem + "_mask" + s) for s in IMAGE_SUFFIXES
                         if (root / (img.stem + "_mask" + s)).is_file()), None)
            if mask:
                pairs.append((img, mask))
    if not pairs:
        raise EditError(f"no (image, mask) pairs in {root}: expected NAME.png + NAME_mask.png, "
                        f"or images/NAME.png + masks/NAME.png")
    return pairs


@dataclass
class Batch:
    """One preprocessed training sample at working resolution."""

    image: torch.Tensor   # (1,3,h,w) in [0,1]
    mask: torch.Tensor    # (1,1,h,w) in {0,1}


def load_batch(image_path: Path, mask_path: Path, size: int | None, multiple: int,
               device) -> Batch:
    """Read, check and resize one (image, mask) pair."""
    img = load_image(image_path)
    mask = load_mask(mask_path, (img.shape[1], img.shape[0]))
    h, w = _work_size(img.shape[0], img.shape[1], multiple, size)
    x = torch.from_numpy(img).permute(2, 0, 1)[None].to(device)
    x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False,
                      antialias=True).clamp(0, 1)
    m = torch.from_numpy(mask.astype(np.float32))[None, None].to(device)
    m = (F.interpolate(m, size=(h, w), mode="nearest") > 0.5).float()
    if not m.any():
        raise EditError(f"mask {mask_path} vanishes at the working size {w}x{h}")
    return Batch(x, m)


def add_lora(unet, rank: int = 4, alpha: float | None = None) -> list[torch.nn.Parameter]:
    """Attach a peft LoRA adapter to the U-Net's attention projections; returns its parameters
    (the only trainable ones)."""
    from peft import LoraConfig

    unet.requires_grad_(False)
    unet.add_adapter(LoraConfig(r=rank, lora_alpha=alpha or rank, init_lora_weights="gaussian",
                                target_modules=list(LORA_TARGETS)))
    params = [p for n, p in unet.named_parameters() if "lora" in n]
    for p in params:
        p.requires_grad_(True)
        p.data = p.data.float()
    if not params:
        raise EditError("the U-Net has no attention projections to put LoRA on")
    return params


def training_loss(pipe, clip: BiomedClip, batch: Batch, embeds: torch.Tensor,
                  delta_t: torch.Tensor, noise: torch.Tensor, t: torch.Tensor,
                  lambda_dir: float) -> tuple[torch.Tensor, dict[str, float]]:
    """Noise-prediction MSE + λ·L_dir for one sample with given noise and timestep."""
    dtype, sf = pipe.unet.dtype, pipe.vae.config.scaling_factor
    sched = pipe.scheduler
    with torch.no_grad():
        lat = pipe.vae.encode((batch.image * 2 - 1).to(dtype)).latent_dist.mode() * sf
        masked = pipe.vae.encode(((batch.image * 2 - 1) * (1 - batch.mask)).to(dtype)
                                 ).latent_dist.mode() * sf
        m_lat = F.interpolate(batch.mask, size=lat.shape[-2:], mode="nearest").to(dtype)
    noisy = sched.add_noise(lat, noise.to(dtype), t)
    pred = pipe.unet(torch.cat([noisy, m_lat, masked], 1), t,
                     encoder_hidden_states=embeds).sample.float()
    if sched.config.prediction_type == "v_prediction":
        target = sched.get_velocity(lat.float(), noise.float(), t)
    else:
        target = noise.float()
    mse = F.mse_loss(pred, target)
    a = sched.alphas_cumprod.to(pred.device)[t].float().view(-1, 1, 1, 1)
    if sched.config.prediction_type == "v_prediction":
        x0 = a.sqrt() * noisy.float() - (1 - a).sqrt() * pred
    else:
        x0 = (noisy.float() - (1 - a).sqrt() * pred) / a.sqrt()
    loss = mse
    l_dir = torch.zeros((), device=pred.device)
    if lambda_dir > 0:
        edited = (pipe.vae.decode((x0 / sf).to(dtype)).sample.float() / 2 + 0.5).clamp(0, 1)
        l_dir = clip_l_dir(clip, edited, batch.image, batch.mask, delta_t).mean()
        loss = mse + lambda_dir * l_dir
    return loss, {"loss": float(loss.detach()), "mse": float(mse.detach()),
                  "l_dir": float(l_dir.detach())}


def save_lora(pipe, out_dir: str | Path) -> Path:
    """Write the U-Net LoRA as ``pytorch_lora_weights.safetensors`` (``load_lora_weights``)."""
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft.utils import get_peft_model_state_dict

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state = convert_state_dict_to_diffusers(get_peft_model_state_dict(pipe.unet))
    type(pipe).save_lora_weights(str(out), unet_lora_layers=state, safe_serialization=True)
    return out


def train_lora(pipe, clip: BiomedClip, pairs: Sequence[tuple[Path, Path]], out_dir: str | Path,
               *, source_prompt: str, target_prompt: str, prompt: str | None = None,
               steps: int = 100, lr: float = 1e-4, rank: int = 4, lambda_dir: float = 0.1,
               size: int | None = None, seed: int = 0,
               templates: Sequence[str] = DEFAULT_TEMPLATES, log_every: int = 10,
               progress: bool = True) -> dict:
    """Fine-tune a LoRA on the pipeline's U-Net over (image, mask) pairs and save it to out_dir.
    Returns {"out", "history": [per-step loss parts]}."""
    if steps < 1:
        raise EditError(f"steps must be >= 1, got {steps}")
    torch.manual_seed(seed)
    rng = random.Random(seed)
    device = pipe.unet.device
    multiple = pipe.vae_scale_factor * 2 ** (len(pipe.unet.config.block_out_channels) - 1)
    batches = [load_batch(i, m, size, multiple, device) for i, m in pairs]
    params = add_lora(pipe.unet, rank)
    pipe.unet.train()
    opt = torch.optim.AdamW(params, lr=lr)
    delta_t = clip.text_direction(source_prompt, target_prompt, templates).to(device)
    with torch.no_grad():
        embeds, _ = pipe.encode_prompt(prompt or target_prompt, device, 1, False)
    n_train = pipe.scheduler.config.num_train_timesteps
    history: list[dict] = []
    for step in range(steps):
        batch = batches[rng.randrange(len(batches))]
        lat_shape = (1, pipe.unet.config.out_channels,
                     batch.image.shape[-2] // pipe.vae_scale_factor,
                     batch.image.shape[-1] // pipe.vae_scale_factor)
        noise = torch.randn(lat_shape, device=device)
        t = torch.randint(0, n_train, (1,), device=device)
        loss, parts = training_loss(pipe, clip, batch, embeds, delta_t, noise, t, lambda_dir)
        opt.zero_grad()
        loss.backward()
        opt.step()
        history.append(parts)
        if progress and (step % log_every == 0 or step == steps - 1):
            print(f"step {step + 1}/{steps}: loss {parts['loss']:.4f} (mse {parts['mse']:.4f}, "
                  f"L_dir {parts['l_dir']:.4f})")
    pipe.unet.eval()
    out = save_lora(pipe, out_dir)
    return {"out": str(out), "history": history}


__all__ = ["read_pairs", "load_batch", "add_lora", "training_loss", "save_lora", "train_lora"]
