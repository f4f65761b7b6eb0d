"""BiomedCLIP wrapper on a tiny open_clip model: ΔT, image embeddings, directions table."""
from __future__ import annotations

import pytest
import torch
from editing_helpers import loaded

from embodied_transfer.editing.clip import directional_loss, load_clip
from embodied_transfer.editing.directions import direction_table, format_report
from embodied_transfer.editing.errors import EditError


def test_text_direction_unit_norm_and_flips():
    clip, _ = loaded()
    d = clip.text_direction("tumor breast", "healthy breast")
    flipped = clip.text_direction("healthy breast", "tumor breast")
    assert d.shape == (clip.model.text_projection.shape[1],)
    assert abs(float(d.norm()) - 1.0) < 1e-5
    assert torch.allclose(d, -flipped, atol=1e-6)


def test_same_prompts_give_clear_error():
    clip, _ = loaded()
    with pytest.raises(EditError, match="same text embedding"):
        clip.text_direction("healthy brain", "healthy brain")


def test_image_embedding_differentiable_and_loss_range():
    clip, _ = loaded()
    x = torch.rand(2, 3, 40, 56, requires_grad=True)
    emb = clip.image_embedding(x)
    assert torch.allclose(emb.norm(dim=-1), torch.ones(2), atol=1e-5)
    loss = directional_loss(emb, clip.image_embedding(torch.rand(2, 3, 40, 56)),
                            clip.text_direction("tumor brain", "healthy brain"))
    assert loss.shape == (2,) and bool(((loss >= 0) & (loss <= 2)).all())
    loss.sum().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0


def test_preprocess_uses_224_and_mean_std():
    clip, _ = loaded()
    assert clip.image_size == 224
    out = clip.preprocess(torch.ones(1, 3, 30, 30))
    assert out.shape == (1, 3, 224, 224)
    expected = (1 - torch.tensor(clip.mean)) / torch.tensor(clip.std)
    assert torch.allclose(out[0, :, 100, 100], expected, atol=1e-4)


def test_missing_clip_model_says_what_to_fetch(tmp_path):
    with pytest.raises(EditError, match="hf download microsoft/BiomedCLIP"):
        load_clip("hf-hub:microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224",
                  cache_dir=str(tmp_path))
    with pytest.raises(EditError, match="open_clip_config.json"):
        load_clip(str(tmp_path))


def test_direction_table():
    clip, _ = loaded()
    table = direction_table(clip, ["brain", "breast", "lung"], ["healthy", "tumor"])
    m = table["state"]["healthy - tumor"]
    assert len(m) == 3 and abs(m[0][0] - 1) < 1e-5 and abs(m[0][1] - m[1][0]) < 1e-6
    assert set(table["organ"]) == {"brain - breast", "brain - lung", "breast - lung"}
    assert "state direction healthy - tumor" in format_report(table)
    with pytest.raises(EditError):
        direction_table(clip, ["brain"], ["healthy", "tumor"])
