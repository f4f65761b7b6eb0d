"""Vision-tower pre-training of the tiny VLM (stage 0) and reasoning tuning with it frozen."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from embodied_transfer.grasp.errors import GraspError
from embodied_transfer.grasp.reasoning import ObjectInfo
from embodied_transfer.grasp.mirroring import flip_objects
from embodied_transfer.grasp.vision_pretrain import (CURVES_FILE, RESULT_FILE, patch_targets,
                                                     pretrain_vision, scenes_of,
                                                     shift_image)
from embodied_transfer.grasp.vlm_train import build_tiny_vlm, train_vlm
from test_grasp_vlm import PATCH, SIZE, TINY, make_example

CATS, COLS = ["box", "can"], ["blue", "green", "red"]


def _obj(u: float, v: float, category: str = "box", colour: str = "red") -> ObjectInfo:
    return ObjectInfo(f"{colour}_{category}", category, colour, u, v)


def test_targets_follow_the_padding_and_resize_of_the_processor():
    # 320×240 → centred square 320×320 (40 rows of padding on top) → 128 px, 16 px patches
    t = patch_targets([_obj(100, 100, "can", "green")], 320, 240, 128, 16, CATS, COLS)
    k = 3 * 8 + 2                     # column (100.5 · 0.4) / 16 = 2.5, row (140.5 · 0.4) / 16
    assert t["has"].sum() == 1 and t["has"][k]
    assert (t["category"][k], t["colour"][k]) == (1, 1)
    np.testing.assert_allclose(t["offset"][k], [0.0125, 0.0125], atol=1e-6)
    assert (t["category"][~t["has"]] == -1).all() and (t["colour"][~t["has"]] == -1).all()
    # the padding rows never hold a centre; the bottom-right pixel is in the last image row
    t = patch_targets([_obj(319, 239)], 320, 240, 128, 16, CATS, COLS)
    assert np.flatnonzero(t["has"]).tolist() == [6 * 8 + 7]


def test_mirrored_objects_give_mirrored_targets():
    objs = [_obj(3.2, 20.7, "can", "blue"), _obj(27.0, 9.4)]
    t = patch_targets(objs, SIZE, SIZE, SIZE, PATCH, CATS, COLS)
    m = patch_targets(flip_objects(objs, SIZE, SIZE, True, False), SIZE, SIZE, SIZE, PATCH,
                      CATS, COLS)
    grid = SIZE // PATCH
    for key in ("has", "category", "colour"):
        np.testing.assert_array_equal(m[key].reshape(grid, grid),
                                      t[key].reshape(grid, grid)[:, ::-1])
    off_t = t["offset"].reshape(grid, grid, 2)[:, ::-1]
    off_m = m["offset"].reshape(grid, grid, 2)
    np.testing.assert_allclose(off_m[..., 0], -off_t[..., 0], atol=1e-6)
    np.testing.assert_allclose(off_m[..., 1], off_t[..., 1], atol=1e-6)


def test_two_centres_in_one_patch_keep_the_nearer_one_and_vocab_is_checked():
    t = patch_targets([_obj(1.0, 1.0, "box"), _obj(4.0, 4.0, "can")], SIZE, SIZE, SIZE, PATCH,
                      CATS, COLS)
    assert t["has"].sum() == 1 and t["category"][0] == CATS.index("can")
    with pytest.raises(GraspError, match="vocabulary"):
        patch_targets([_obj(4, 4, "mug")], SIZE, SIZE, SIZE, PATCH, CATS, COLS)


def _scenes(n: int, seed: int):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        (rgb, _, _), objects, _ = make_example(rng)
        out.append((rgb, objects))
    return out


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    torch.set_num_threads(1)
    return build_tiny_vlm(tmp_path_factory.mktemp("vision") / "model", **TINY)


def test_pretraining_teaches_the_tower_to_find_and_name_objects(tiny, tmp_path):
    import shutil

    first, again = tmp_path / "a", tmp_path / "b"
    for d in (first, again):
        shutil.copytree(tiny, d)
    before = load_file(tiny / "model.safetensors")
    kwargs = dict(val_scenes=_scenes(16, 9), epochs=40, batch_size=16, lr=1e-2, progress=False)
    result = pretrain_vision(first, _scenes(64, 1), **kwargs)
    assert result["epoch_loss"][-1] < 0.5 * result["epoch_loss"][0]
    # after 40 epochs the tower finds and names the objects it was trained on
    assert result["train"]["found"] > 0.75 and result["train"]["colour"] > 0.9
    assert result["val"]["objects"] > 0 and result["val"]["colour"] > 0.7
    assert json.loads((first / RESULT_FILE).read_text())["categories"] == CATS
    assert len(result["val_epochs"]) == 40 and (first / CURVES_FILE).is_file()
    after = load_file(first / "model.safetensors")
    tower = [k for k in after if "vision_tower" in k]
    assert tower and any(not torch.equal(before[k], after[k]) for k in tower)
    assert all(torch.equal(before[k], after[k]) for k in after if "vision_tower" not in k)
    assert pretrain_vision(again, _scenes(64, 1), **kwargs)["epoch_loss"] == result["epoch_loss"]


def test_scenes_of_needs_object_metadata():
    with pytest.raises(GraspError, match="metadata"):
        scenes_of([[]])


def test_reasoning_tuning_can_keep_the_tower_frozen(tiny, tmp_path):
    rng = np.random.default_rng(4)
    data = [make_example(rng)[0] for _ in range(4)]
    paths = train_vlm(tiny, data, tmp_path / "frozen", lora=False, epochs=3, batch_size=4,
                      lr=1e-2, seed=0, progress=False, freeze_vision=True)
    before, after = load_file(tiny / "model.safetensors"), load_file(paths["model"]
                                                                     / "model.safetensors")
    changed = {k for k in after if not torch.equal(before[k], after[k])}
    assert changed and not any("vision_tower" in k for k in changed)
    assert any("multi_modal_projector" in k for k in changed)
    assert json.loads(paths["meta"].read_text())["vision_frozen"] is True


def test_shift_image_moves_the_content_and_fills_with_the_mean_colour():
    x = torch.arange(2 * 4 * 4, dtype=torch.float32).reshape(2, 4, 4) + 1
    y = shift_image(x, 1, -2)
    torch.testing.assert_close(y[:, :2, 1:], x[:, 2:, :3])
    assert (y[:, 2:] == 0).all() and (y[:, :, 0] == 0).all()
    torch.testing.assert_close(shift_image(x, 0, 0), x)
    assert (shift_image(x, 4, 0) == 0).all()


def test_shifted_batches_move_the_targets_with_the_image(tiny):
    from embodied_transfer.grasp.backends.vlm import load_processor
    from embodied_transfer.grasp.vision_pretrain import _shifted_batch, _tensors

    processor = load_processor(str(tiny))
    scenes = _scenes(3, 2)
    data = _tensors(processor, scenes, (CATS, COLS))
    grid = SIZE // PATCH
    shifts = [(PATCH, 0), (0, -PATCH), (2, 3)]
    batch = _shifted_batch(data, scenes, torch.arange(3), shifts, processor, (CATS, COLS))
    for i, (dx, dy) in enumerate(shifts):
        torch.testing.assert_close(batch["pixel_values"][i],
                                   shift_image(data["pixel_values"][i], dx, dy))
    # whole patches: the target grid moves by one patch, what leaves the image is dropped
    for i, (r, c) in ((0, (0, 1)), (1, (-1, 0))):
        src = data["category"][i].reshape(grid, grid)
        ref = torch.full((grid, grid), -1)
        ref[max(r, 0):grid + min(r, 0), max(c, 0):grid + min(c, 0)] = \
            src[max(-r, 0):grid - max(r, 0), max(-c, 0):grid - max(c, 0)]
        assert torch.equal(batch["category"][i].reshape(grid, grid), ref)
    # a fraction of a patch: the same objects, their centres moved by (2, 3) / PATCH
    moved = patch_targets([ObjectInfo(o.name, o.category, o.colour, o.u + 2, o.v + 3)
                           for o in scenes[2][1]], SIZE, SIZE, SIZE, PATCH, CATS, COLS)
    np.testing.assert_allclose(batch["offset"][2].numpy(), moved["offset"], atol=1e-6)
