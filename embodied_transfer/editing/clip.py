"""BiomedCLIP through open_clip: text direction ΔT, differentiable image embeddings, L_dir."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F

from embodied_transfer.editing.errors import EditError

BIOMEDCLIP_ID = "microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224"
DEFAULT_CLIP = f"hf-hub:{BIOMEDCLIP_ID}"
DEFAULT_TEMPLATES: tuple[str, ...] = (
    "{}",
    "a photo of {}",
    "an MRI image of {}",
    "a medical image of {}",
    "a radiology image showing {}",
    "this is an image of {}",
)


@dataclass
class BiomedClip:
    """A loaded open_clip model with its tokenizer and preprocessing constants."""

    model: torch.nn.Module
    tokenizer: object
    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    device: torch.device
    name: str = ""

    @torch.no_grad()
    def text_embedding(self, prompt: str,
                       templates: Sequence[str] = DEFAULT_TEMPLATES) -> torch.Tensor:
        """Unit text embedding of prompt: normalise per template, average, normalise (D,)."""
        texts = [t.format(prompt) for t in templates] or [prompt]
        tokens = self.tokenizer(texts).to(self.device)
        emb = F.normalize(self.model.encode_text(tokens).float(), dim=-1)
        return F.normalize(emb.mean(0), dim=-1)

    def text_direction(self, source: str, target: str,
                       templates: Sequence[str] = DEFAULT_TEMPLATES) -> torch.Tensor:
        """ΔT = normalise(V_text(target) − V_text(source)), unit norm (D,)."""
        delta = self.text_embedding(target, templates) - self.text_embedding(source, templates)
        if float(delta.norm()) < 1e-8:
            raise EditError(f"source and target prompts give the same text embedding "
                            f"({source!r} vs {target!r}); choose different prompts")
        return F.normalize(delta, dim=-1)

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """BiomedCLIP preprocessing in torch (differentiable): images (B,3,H,W) in [0,1] →
        resize shortest side to 224, centre crop, normalise with its mean/std."""
        if images.dim() != 4 or images.shape[1] != 3:
            raise EditError(f"expected images of shape (B, 3, H, W), got {tuple(images.shape)}")
        x = images.float()
        h, w = x.shape[-2:]
        s = self.image_size / min(h, w)
        nh, nw = max(self.image_size, round(h * s)), max(self.image_size, round(w * s))
        x = F.interpolate(x, size=(nh, nw), mode="bicubic", align_corners=False,
                          antialias=True).clamp(0, 1)
        top, left = (nh - self.image_size) // 2, (nw - self.image_size) // 2
        x = x[..., top:top + self.image_size, left:left + self.image_size]
        mean = torch.tensor(self.mean, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=x.device).view(1, 3, 1, 1)
        return (x - mean) / std

    def image_embedding(self, images: torch.Tensor) -> torch.Tensor:
        """Unit image embeddings (B, D) of images (B,3,H,W) in [0,1]; gradients flow."""
        x = self.preprocess(images.to(self.device))
        dtype = next(self.model.parameters()).dtype
        return F.normalize(self.model.encode_image(x.to(dtype)).float(), dim=-1)

    @torch.no_grad()
    def similarity(self, images: torch.Tensor, prompt: str,
                   templates: Sequence[str] = DEFAULT_TEMPLATES) -> list[float]:
        """Cosine similarity of each image to the (template-averaged) prompt."""
        text = self.text_embedding(prompt, templates)
        return (self.image_embedding(images) @ text).tolist()


def directional_loss(edited_emb: torch.Tensor, original_emb: torch.Tensor,
                     delta_t: torch.Tensor) -> torch.Tensor:
    """L_dir = 1 − cos(ΔI, ΔT) per sample, with ΔI = V(edited) − V(original). (B,)"""
    delta_i = edited_emb - original_emb
    return 1.0 - F.cosine_similarity(delta_i, delta_t.to(delta_i).expand_as(delta_i), dim=-1,
                                     eps=1e-8)


def _resolve(model: str, allow_download: bool, cache_dir: str | None) -> str:
    """An open_clip model name ('local-dir:…' or 'hf-hub:…'), or an EditError saying what to
    fetch."""
    raw = model[len("local-dir:"):] if model.startswith("local-dir:") else model
    if Path(raw).expanduser().is_dir():
        path = Path(raw).expanduser()
        if not (path / "open_clip_config.json").is_file():
            raise EditError(f"{path} holds no open_clip_config.json; it is not an open_clip model "
                            f"directory (fetch one with `hf download {BIOMEDCLIP_ID} "
                            f"--local-dir {path}`)")
        return f"local-dir:{path}"
    repo = model[len("hf-hub:"):] if model.startswith("hf-hub:") else model
    if "/" not in repo or repo.startswith((".", "/", "~")):
        raise EditError(f"CLIP model {model!r} is neither a directory nor a hub id "
                        f"(e.g. hf-hub:{BIOMEDCLIP_ID}); fetch it with "
                        f"`hf download {BIOMEDCLIP_ID} --local-dir DIR` and pass --clip-model DIR")
    if allow_download:
        return f"hf-hub:{repo}"
    try:
        from huggingface_hub import snapshot_download

        snap = snapshot_download(repo, local_files_only=True, cache_dir=cache_dir)
    except Exception as exc:  # noqa: BLE001 - any failure means "not cached"
        raise EditError(
            f"CLIP model {repo} is not in the local Hugging Face cache and downloads are off. "
            f"Fetch it with `hf download {repo}` (goes to the HF cache, ~/.cache/huggingface/hub) "
            f"or `hf download {repo} --local-dir DIR` and pass --clip-model DIR; "
            f"or pass --allow-download ({type(exc).__name__})") from exc
    return f"local-dir:{snap}"


#: The hub tokenizer BiomedCLIP's open_clip config names for its text tower.
BIOMEDCLIP_TOKENIZER = "microsoft/BiomedNLP-BiomedBERT-base-uncased-abstract"


def load_clip(model: str = DEFAULT_CLIP, device: str | torch.device | None = None,
              allow_download: bool = False, cache_dir: str | None = None) -> BiomedClip:
    """Load BiomedCLIP (hub id or local dir) with open_clip, frozen, in eval mode, fp32."""
    import open_clip

    name = _resolve(model, allow_download, cache_dir)
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    from embodied_transfer.core.hub import hub_offline

    try:
        # BiomedCLIP's text tower names a hub tokenizer; it too must come from the cache
        with hub_offline(not allow_download):
            clip_model, _, preprocess = open_clip.create_model_and_transforms(name, device=dev)
            tokenizer = open_clip.get_tokenizer(name)
    except EditError:
        raise
    except Exception as exc:  # noqa: BLE001 - wrap loader errors with what to do
        raise EditError(f"could not load CLIP model {model!r} ({name}): {exc}. Fetch it with "
                        f"`hf download {BIOMEDCLIP_ID} --local-dir DIR` and pass "
                        f"--clip-model DIR; its tokenizer too: `hf download {BIOMEDCLIP_TOKENIZER}`"
                        ) from exc
    clip_model.eval().requires_grad_(False)
    from open_clip.model import get_model_preprocess_cfg

    cfg = get_model_preprocess_cfg(clip_model)
    size = cfg.get("size", 224)
    size = size[0] if isinstance(size, (tuple, list)) else size
    mean = tuple(cfg.get("mean", (0.48145466, 0.4578275, 0.40821073)))
    std = tuple(cfg.get("std", (0.26862954, 0.26130258, 0.27577711)))
    return BiomedClip(clip_model, tokenizer, int(size), mean, std, dev, model)
