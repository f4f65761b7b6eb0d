"""LoRA training step lowers the loss; saved LoRA loads into diffusers; CLI commands run."""
from __future__ import annotations

import argparse
import json
import shutil

import torch
from editing_helpers import loaded, tiny_models

from embodied_transfer.app import editing_commands as commands
from embodied_transfer.editing.inpaint import load_inpaint
from embodied_transfer.editing.lora import (add_lora, load_batch, read_pairs, save_lora,
                                            training_loss)
from embodied_transfer.editing.tiny import write_demo_inputs


def _parser():
    parser = argparse.ArgumentParser()
    commands.add_parsers(parser.add_subparsers(dest="command", required=True))
    return parser


def test_lora_step_lowers_loss_and_saves(tmp_path):
    clip, _ = loaded()
    _, inpaint_dir = tiny_models()
    pipe = load_inpaint(str(inpaint_dir), "cpu")
    image, mask = write_demo_inputs(tmp_path / "data", size=32)
    batch = load_batch(image, mask, None, 4, "cpu")
    params = add_lora(pipe.unet, rank=4)
    assert params and all(p.requires_grad for p in params)
    assert not any(p.requires_grad for n, p in pipe.unet.named_parameters() if "lora" not in n)
    delta_t = clip.text_direction("tumor breast", "healthy breast")
    embeds, _ = pipe.encode_prompt("healthy breast", "cpu", 1, False)
    gen = torch.Generator().manual_seed(0)
    noise = torch.randn(1, 4, 16, 16, generator=gen)
    t = torch.tensor([500])
    opt = torch.optim.SGD(params, lr=0.05)
    before, parts = training_loss(pipe, clip, batch, embeds, delta_t, noise, t, lambda_dir=0.5)
    assert parts["l_dir"] > 0 and parts["mse"] > 0
    opt.zero_grad()
    before.backward()
    opt.step()
    after, _ = training_loss(pipe, clip, batch, embeds, delta_t, noise, t, lambda_dir=0.5)
    assert float(after.detach()) < float(before.detach())
    out = save_lora(pipe, tmp_path / "lora")
    assert (out / "pytorch_lora_weights.safetensors").is_file()
    reloaded = load_inpaint(str(inpaint_dir), "cpu", lora=str(out))
    assert any("lora" in n for n, _ in reloaded.unet.named_parameters())


def test_cli_train_edit_directions(tmp_path, capsys):
    clip_dir, inpaint_dir = tiny_models()
    image, mask = write_demo_inputs(tmp_path / "in", size=32)
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(image, data / "a.png")
    shutil.copy(mask, data / "a_mask.png")
    assert len(read_pairs(data)) == 1
    models = ["--clip-model", str(clip_dir), "--inpaint-model", str(inpaint_dir),
              "--device", "cpu"]
    parser = _parser()
    args = parser.parse_args(["editing", "train", "--data", str(data), "--out",
                              str(tmp_path / "lora"),
                              "--train-steps", "2", *models])
    assert commands.run(args) == 0
    assert (tmp_path / "lora" / "pytorch_lora_weights.safetensors").is_file()
    out = tmp_path / "edit"
    args = parser.parse_args(["editing", "edit", "--image", str(image), "--mask", str(mask),
                              "--out", str(out), "--steps", "3", "--lora", str(tmp_path / "lora"),
                              *models])
    assert commands.run(args) == 0
    report = json.loads((out / "report.json").read_text())
    for name in ("edited.png", "side_by_side.png"):
        assert (out / name).stat().st_size > 0
    assert report["outside_mask"]["max_abs_change"] == 0.0
    assert report["l_dir_after"] < report["l_dir_before"]
    assert set(report["clip_similarity"]) >= {"edited_to_target", "edited_to_source"}
    args = parser.parse_args(["edit-directions", "--clip-model", str(clip_dir), "--organs",
                              "brain", "breast", "--json", str(tmp_path / "d.json")])
    assert commands.run(args) == 0      # the deprecated alias of 'editing directions'
    captured = capsys.readouterr()
    assert "state direction healthy - tumor" in captured.out
    assert "'edit-directions' is deprecated, use 'editing directions'" in captured.err


def test_deprecated_aliases_parse_like_the_group():
    parser = _parser()
    for alias, command in commands.ALIASES.items():
        old = parser.parse_args(_minimal(alias))
        new = parser.parse_args(["editing", *_minimal(command)])
        assert old.editing_command == new.editing_command == command
        assert old.deprecated_alias and not new.deprecated_alias
        assert {k: v for k, v in vars(old).items() if k not in ("command", "deprecated_alias")} \
            == {k: v for k, v in vars(new).items() if k not in ("command", "deprecated_alias")}


def _minimal(name: str) -> list[str]:
    """The shortest valid argument list of an editing command or alias ``name``."""
    required = {"edit": ["--image", "i.png", "--mask", "m.png", "--out", "o"],
                "train": ["--data", "d", "--out", "o"], "directions": []}
    return [name, *required[commands.ALIASES.get(name, name)]]


def test_cli_bad_mask_is_edit_error(tmp_path):
    import numpy as np
    import pytest
    from PIL import Image

    from embodied_transfer.editing.errors import EditError

    image, _ = write_demo_inputs(tmp_path, size=32)
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(tmp_path / "empty.png")
    args = _parser().parse_args(["edit", "--image", str(image), "--mask",
                                 str(tmp_path / "empty.png"), "--out", str(tmp_path / "o")])
    with pytest.raises(EditError, match="empty"):
        commands.run(args)
