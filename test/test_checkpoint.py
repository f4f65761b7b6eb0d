"""The shared checkpoint layout (model.safetensors + config.json) and its errors."""
from __future__ import annotations

import json

import pytest
import torch

from embodied_transfer.core import checkpoint


class Bad(Exception):
    pass


def _parse(config: dict) -> int:
    if config.get("kind") != "linear":
        raise ValueError(f"it holds a {config.get('kind')!r} model")
    return int(config["size"])


def test_round_trip(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    checkpoint.save(tmp_path / "m", model, {"kind": "linear", "size": 3, "info": {"a": 1}})
    config, size = checkpoint.read_config(tmp_path / "m", _parse, Bad, "linear model")
    assert size == 3 and config["info"] == {"a": 1}
    again = checkpoint.load_weights(torch.nn.Linear(size, 2), tmp_path / "m", Bad)
    assert torch.equal(again.weight, model.weight) and torch.equal(again.bias, model.bias)


@pytest.mark.parametrize("content,match", [
    (None, r"no linear model at .* \(config.json missing\)"),
    ("{not json", "is not a linear model config"),
    (json.dumps({"kind": "conv", "size": 3}), "is not a linear model config: it holds a 'conv'"),
    (json.dumps({"kind": "linear"}), "is not a linear model config: 'size'"),
])
def test_config_errors_name_the_path(tmp_path, content, match):
    if content is not None:
        (tmp_path / checkpoint.CONFIG).write_text(content)
    with pytest.raises(Bad, match=match):
        checkpoint.read_config(tmp_path, _parse, Bad, "linear model")


def test_weight_errors_name_the_path(tmp_path):
    with pytest.raises(Bad, match="no weights at"):
        checkpoint.load_weights(torch.nn.Linear(3, 2), tmp_path, Bad)
    checkpoint.save(tmp_path, torch.nn.Linear(4, 2), {})
    with pytest.raises(Bad, match="cannot load .*model.safetensors"):     # other sizes
        checkpoint.load_weights(torch.nn.Linear(3, 2), tmp_path, Bad)
    (tmp_path / checkpoint.WEIGHTS).write_bytes(b"garbage")
    with pytest.raises(Bad, match="cannot load"):
        checkpoint.load_weights(torch.nn.Linear(4, 2), tmp_path, Bad)
