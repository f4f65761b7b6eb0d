"""NumPy inference of the Real2Sim models equals torch's forward pass (no ROS)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from embodied_transfer.squat.errors import SquatDataError
from embodied_transfer.squat.inference import ClassifierNet, ConverterNet, softmax
from embodied_transfer.squat.models import KINDS, ModelConfig, PhaseClassifier


def _model(kind: str, seed: int = 0, **sizes):
    torch.manual_seed(seed)
    model = KINDS[kind](ModelConfig(kind=kind, **sizes)).eval()
    with torch.no_grad():      # non-trivial latent weights and simulator style
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
        if hasattr(model, "z_style"):
            model.z_style.copy_(torch.randn_like(model.z_style))
    return model


def _windows(n: int, t: int, seed: int = 1) -> np.ndarray:
    return (3 * np.random.default_rng(seed).normal(size=(n, t, 7))).astype(np.float32)


@pytest.mark.parametrize("kind", ["multi_encoder_vae", "plain_vae"])
@pytest.mark.parametrize("past", [0, 5, 15])
def test_converter_matches_torch_last_frame(kind, past):
    model = _model(kind, past=past, hidden=24, content_dim=6, style_dim=3)
    x = _windows(9, past + 1)
    with torch.inference_mode():
        want = model.convert(torch.from_numpy(x))[:, -1].numpy()
    got = ConverterNet(model)(x)
    assert got.shape == (9, 7) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, atol=2e-5, rtol=1e-4)


@pytest.mark.parametrize("past,future", [(10, 5), (0, 3), (4, 0), (0, 0)])
def test_classifier_matches_torch_centre_frame(past, future):
    model = _model("phase_classifier", past=past, future=future, hidden=20)
    x = _windows(7, past + 1 + future)
    with torch.inference_mode():
        want = torch.softmax(model(torch.from_numpy(x)), -1).numpy()
    got = softmax(ClassifierNet(model)(x))
    np.testing.assert_allclose(got, want, atol=1e-5)
    np.testing.assert_allclose(got.sum(1), 1.0, atol=1e-6)


def test_the_classifier_reads_every_frame_of_its_window():
    """The classifier really reads both sides of the centre frame, and nothing else."""
    model = _model("phase_classifier", past=4, future=2, hidden=16)
    net = ClassifierNet(model)
    x = _windows(1, 7)
    base = net(x)
    for i in range(7):
        y = x.copy()
        y[0, i] += 5.0
        assert not np.allclose(net(y), base), f"frame {i} of the window is ignored"


def test_large_inputs_do_not_overflow():
    model = _model("phase_classifier", past=3, future=1, hidden=8)
    with np.errstate(all="raise"):
        p = softmax(ClassifierNet(model)(np.full((2, 5, 7), 1e4, np.float32)))
    assert np.isfinite(p).all()


def test_unsupported_models_are_refused():
    with pytest.raises(SquatDataError, match="not a converter"):
        ConverterNet(PhaseClassifier(ModelConfig(kind="phase_classifier")))
    model = PhaseClassifier(ModelConfig(kind="phase_classifier"))
    model.gru = torch.nn.GRU(7, 8, batch_first=True)
    with pytest.raises(SquatDataError, match="bidirectional"):
        ClassifierNet(model)
