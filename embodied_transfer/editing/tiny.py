"""Tiny random BiomedCLIP-like and SD-inpainting-like models, built from config (no download).

Used by the tests, ``bench/editing.py`` and the demo::

    python -m embodied_transfer.editing.tiny OUT_DIR
    embodied-transfer edit --image IMG --mask MASK --out OUT \\
        --clip-model OUT_DIR/clip --inpaint-model OUT_DIR/inpaint
"""
from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

# BiomedCLIP's preprocessing (the OpenAI CLIP mean/std, 224 px)
BIOMEDCLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
BIOMEDCLIP_STD = (0.26862954, 0.26130258, 0.27577711)

TINY_CLIP_CONFIG = {
    "model_cfg": {
        "embed_dim": 32,
        "vision_cfg": {"image_size": 224, "layers": 1, "width": 32, "head_width": 16,
                       "patch_size": 32},
        "text_cfg": {"context_length": 32, "vocab_size": 49408, "width": 32, "heads": 2,
                     "layers": 1},
    },
    "preprocess_cfg": {"mean": list(BIOMEDCLIP_MEAN), "std": list(BIOMEDCLIP_STD),
                       "interpolation": "bicubic", "resize_mode": "shortest"},
}


def build_tiny_clip(out_dir: str | Path, seed: int = 0) -> Path:
    """Write a tiny random open_clip model (``open_clip_config.json`` + weights) to out_dir."""
    import open_clip
    import torch
    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "open_clip_config.json").write_text(json.dumps(TINY_CLIP_CONFIG, indent=2))
    torch.manual_seed(seed)
    model = open_clip.CLIP(**TINY_CLIP_CONFIG["model_cfg"])
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(out / "open_clip_model.safetensors"))
    return out


def _write_tiny_tokenizer(out: Path) -> None:
    """A byte-level CLIP BPE vocabulary (every byte, with and without ``</w>``) and no merges."""
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    chars = list(bytes_to_unicode().values())
    vocab: dict[str, int] = {}
    for token in chars + [c + "</w>" for c in chars] + ["<|startoftext|>", "<|endoftext|>"]:
        vocab[token] = len(vocab)
    out.mkdir(parents=True, exist_ok=True)
    (out / "vocab.json").write_text(json.dumps(vocab))
    (out / "merges.txt").write_text("#version: 0.2\n")


def build_tiny_inpaint(out_dir: str | Path, seed: int = 0) -> Path:
    """Assemble a tiny random ``StableDiffusionInpaintPipeline`` (9-channel U-Net) in out_dir."""
    import torch
    from diffusers import (AutoencoderKL, DDIMScheduler, StableDiffusionInpaintPipeline,
                           UNet2DConditionModel)
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    out = Path(out_dir)
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=16, in_channels=9, out_channels=4, layers_per_block=1,
        block_out_channels=(16, 32), norm_num_groups=8,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32, attention_head_dim=4)
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(16, 32),
        layers_per_block=1, norm_num_groups=8, sample_size=32,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"))
    text_encoder = CLIPTextModel(CLIPTextConfig(
        bos_token_id=512, eos_token_id=513, pad_token_id=513, hidden_size=32,
        intermediate_size=37, num_attention_heads=4, num_hidden_layers=2, vocab_size=600,
        max_position_embeddings=77, projection_dim=32))
    with tempfile.TemporaryDirectory() as tmp:
        _write_tiny_tokenizer(Path(tmp))
        tokenizer = CLIPTokenizer(vocab=str(Path(tmp) / "vocab.json"),
                                  merges=str(Path(tmp) / "merges.txt"), model_max_length=77)
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              clip_sample=False, set_alpha_to_one=False, steps_offset=1)
    pipe = StableDiffusionInpaintPipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=scheduler,
        safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(str(out))
    return out


def build_tiny_models(out_dir: str | Path, seed: int = 0) -> tuple[Path, Path]:
    """Build both tiny models under out_dir; returns ``(clip_dir, inpaint_dir)``."""
    out = Path(out_dir)
    return build_tiny_clip(out / "clip", seed), build_tiny_inpaint(out / "inpaint", seed)


def write_demo_inputs(out_dir: str | Path, size: int = 64) -> tuple[Path, Path]:
    """A synthetic grayscale 'MRI' slice with a bright blob and a binary mask over the blob."""
    import numpy as np
    from PIL import Image

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:size, 0:size] / size
    head = ((xx - 0.5) ** 2 + (yy - 0.5) ** 2 < 0.16).astype(np.float32) * 0.45
    blob = ((xx - 0.6) ** 2 + (yy - 0.45) ** 2 < 0.012).astype(np.float32) * 0.5
    img = Image.fromarray((np.clip(head + blob, 0, 1) * 255).astype(np.uint8), mode="L")
    mask = (((xx - 0.6) ** 2 + (yy - 0.45) ** 2) < 0.025).astype(np.uint8) * 255
    img.save(out / "image.png")
    Image.fromarray(mask, mode="L").save(out / "mask.png")
    return out / "image.png", out / "mask.png"


def main(argv: list[str] | None = None) -> int:
    """``python -m embodied_transfer.editing.tiny OUT``: tiny models plus a demo image and mask."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m embodied_transfer.editing.tiny OUT_DIR", file=sys.stderr)
        return 2
    clip_dir, inpaint_dir = build_tiny_models(argv[0])
    image, mask = write_demo_inputs(Path(argv[0]) / "inputs")
    print(f"wrote {clip_dir}, {inpaint_dir}, {image}, {mask}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
