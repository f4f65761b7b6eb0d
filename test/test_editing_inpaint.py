"""Guided inpainting on tiny random models: guidance lowers L_dir, outside pixels unchanged,
bad inputs give clear EditErrors."""
from __future__ import annotations

import numpy as np
import pytest
from editing_helpers import loaded, tiny_models
from PIL import Image

from embodied_transfer.editing.errors import EditError
from embodied_transfer.editing.inpaint import (check_mask, guided_inpaint, load_image,
                                               load_inpaint, load_mask)
from embodied_transfer.editing.tiny import write_demo_inputs

PROMPTS = dict(source_prompt="tumor breast", target_prompt="healthy breast")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    image_path, mask_path = write_demo_inputs(tmp_path_factory.mktemp("inputs"), size=48)
    image = load_image(image_path)
    return image, load_mask(mask_path, (image.shape[1], image.shape[0]))


def test_grayscale_loads_as_rgb(inputs):
    image, mask = inputs
    assert image.shape == (48, 48, 3) and image.dtype == np.float32
    assert np.array_equal(image[..., 0], image[..., 2])
    assert mask.dtype == bool and mask.any() and not mask.all()


def test_sixteen_bit_grayscale(tmp_path):
    a = (np.arange(16 * 16).reshape(16, 16) * 200).astype(np.uint16)
    Image.fromarray(a).save(tmp_path / "mri16.png")
    img = load_image(tmp_path / "mri16.png")
    assert img.shape == (16, 16, 3) and img.min() == 0.0 and abs(img.max() - 1.0) < 1e-6


def test_guidance_lowers_l_dir_and_keeps_outside(inputs):
    clip, pipe = loaded()
    image, mask = inputs
    plain = guided_inpaint(pipe, clip, image, mask, guidance_scale=0.0, steps=6, seed=3,
                           **PROMPTS)
    guided = guided_inpaint(pipe, clip, image, mask, guidance_scale=1.0, steps=6, seed=3,
                            **PROMPTS)
    assert guided.l_dir < plain.l_dir
    assert len(guided.l_dir_trace) == 6 and not plain.l_dir_trace
    for r in (plain, guided):
        assert r.image.shape == image.shape
        assert np.array_equal(r.image[~mask], image[~mask])
        assert np.abs(r.image[mask] - image[mask]).mean() > 0


def test_same_seed_is_deterministic(inputs):
    clip, pipe = loaded()
    image, mask = inputs
    a = guided_inpaint(pipe, clip, image, mask, guidance_scale=0.5, steps=3, seed=1, **PROMPTS)
    b = guided_inpaint(pipe, clip, image, mask, guidance_scale=0.5, steps=3, seed=1, **PROMPTS)
    assert np.allclose(a.image, b.image, atol=1e-6)


def test_mask_of_another_size(tmp_path, inputs):
    Image.fromarray(np.full((20, 30), 255, np.uint8)).save(tmp_path / "m.png")
    with pytest.raises(EditError, match="same size"):
        load_mask(tmp_path / "m.png", (48, 48))
    clip, pipe = loaded()
    with pytest.raises(EditError, match="same size"):
        guided_inpaint(pipe, clip, inputs[0], np.ones((10, 10), bool), **PROMPTS)


def test_non_binary_mask(tmp_path):
    a = np.zeros((8, 8), np.uint8)
    a[2:4, 2:4], a[5, 5] = 255, 128
    Image.fromarray(a).save(tmp_path / "m.png")
    with pytest.raises(EditError, match="not binary"):
        load_mask(tmp_path / "m.png", (8, 8))


def test_empty_mask(tmp_path):
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "m.png")
    with pytest.raises(EditError, match="empty"):
        load_mask(tmp_path / "m.png", (8, 8))
    assert check_mask(np.array([[0, 1], [1, 0]])).sum() == 2


def test_unreadable_image(tmp_path):
    (tmp_path / "bad.png").write_bytes(b"not an image at all")
    with pytest.raises(EditError, match="cannot read image"):
        load_image(tmp_path / "bad.png")
    with pytest.raises(EditError, match="not found"):
        load_image(tmp_path / "missing.png")


def test_missing_inpaint_model(tmp_path):
    with pytest.raises(EditError, match="hf download"):
        load_inpaint("someone/not-a-cached-inpainting-model", "cpu")
    with pytest.raises(EditError, match="could not load inpainting model"):
        load_inpaint(str(tmp_path), "cpu")


def test_non_inpainting_unet_rejected(tmp_path):
    import json
    import shutil

    _, inpaint_dir = tiny_models()
    bad = tmp_path / "bad"
    shutil.copytree(inpaint_dir, bad)
    cfg = json.loads((bad / "unet" / "config.json").read_text())
    cfg["in_channels"] = 4
    (bad / "unet" / "config.json").write_text(json.dumps(cfg))
    (bad / "unet" / "diffusion_pytorch_model.safetensors").unlink()
    with pytest.raises(EditError):
        load_inpaint(str(bad), "cpu")
