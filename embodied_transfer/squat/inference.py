"""NumPy inference of the trained Real2Sim models, for the frame-by-frame nodes.

The models are trained in torch (:mod:`embodied_transfer.squat.models`); at run time a node
pushes one small window per frame, where torch's per-call overhead dominates: four GRU
passes of 16 steps on 64 units cost about 1.2 ms a frame in torch eager on this CPU. The
same arithmetic written with NumPy on the extracted weights computes only what is used:

* converters: the content GRU over the window and the decoder GRU, and only the last frame's
  output layer; the fixed simulator style ``w_s·z_s`` is folded into the decoder's input
  bias once;
* the classifier: the forward direction up to the centre frame and the backward direction
  from the end down to it (``past + 1`` and ``future + 1`` steps instead of twice the
  window).

Results equal torch's to float32 rounding (``test_squat_inference`` checks every model
kind); offline evaluation and the nodes both use these, so they agree exactly.
"""
from __future__ import annotations

import numpy as np
from torch import nn

from embodied_transfer.squat.errors import SquatDataError


def _np(t) -> np.ndarray:
    return t.detach().cpu().numpy().astype(np.float32)


def _sigmoid(a: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * a))      # no overflow for large |a|


class GRUDirection:
    """One direction of a one-layer ``nn.GRU`` (gate order r, z, n, as torch)."""

    def __init__(self, gru: nn.GRU, suffix: str = "") -> None:
        if gru.num_layers != 1 or not gru.batch_first:
            raise SquatDataError("NumPy inference supports one-layer batch-first GRUs only")
        self.hidden = gru.hidden_size
        self.w_ih = _np(getattr(gru, f"weight_ih_l0{suffix}")).T.copy()   # (C, 3H)
        self.w_hh = _np(getattr(gru, f"weight_hh_l0{suffix}")).T.copy()   # (H, 3H)
        self.b_ih = _np(getattr(gru, f"bias_ih_l0{suffix}"))
        self.b_hh = _np(getattr(gru, f"bias_hh_l0{suffix}"))

    def input_gates(self, x: np.ndarray) -> np.ndarray:
        """(B, T, C) → (B, T, 3H): the input half of every gate, for all steps at once."""
        return x @ self.w_ih + self.b_ih

    def run(self, gates: np.ndarray, keep: bool = False) -> np.ndarray:
        """Steps over ``gates`` (B, T, 3H) in order from h = 0; the last state (B, H), or every
        state (B, T, H) with ``keep``."""
        h_dim = self.hidden
        h = np.zeros((gates.shape[0], h_dim), np.float32)
        states = np.empty(gates.shape[:2] + (h_dim,), np.float32) if keep else None
        for t in range(gates.shape[1]):
            gi = gates[:, t]
            gh = h @ self.w_hh + self.b_hh
            rz = _sigmoid(gi[:, :2 * h_dim] + gh[:, :2 * h_dim])
            n = np.tanh(gi[:, 2 * h_dim:] + rz[:, :h_dim] * gh[:, 2 * h_dim:])
            h = n + rz[:, h_dim:] * (h - n)
            if keep:
                states[:, t] = h
        return states if keep else h


class _Linear:
    def __init__(self, layer: nn.Linear) -> None:
        self.w, self.b = _np(layer.weight).T.copy(), _np(layer.bias)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return x @ self.w + self.b


class ConverterNet:
    """A converter's ``convert(x)[:, -1]``: normalised windows (B, T, 7) → last frames (B, 7)."""

    def __init__(self, model: nn.Module) -> None:
        from embodied_transfer.squat.models import MultiEncoderVAE, PlainVAE

        if not isinstance(model, (MultiEncoderVAE, PlainVAE)):
            raise SquatDataError(f"{type(model).__name__} is not a converter")
        dec, k = model.decoder, model.cfg.content_dim
        self.dec_gru, self.dec_out = GRUDirection(dec.gru), _Linear(dec.out)
        if isinstance(model, MultiEncoderVAE):
            self.enc_gru, enc_out = GRUDirection(model.content.gru), _Linear(model.content.proj)
            self.encode = lambda h: np.tanh(enc_out(h))
            style = np.exp(_np(dec.log_w_style)) * _np(model.z_style)
            self.dec_gru.b_ih = self.dec_gru.b_ih + style @ self.dec_gru.w_ih[k:]
            self.dec_gru.w_ih = self.dec_gru.w_ih[:k]
        else:
            self.enc_gru, enc_out = GRUDirection(model.gru), _Linear(model.out)
            self.encode = lambda h: enc_out(h)[..., :k]              # the posterior mean
        self.dec_gru.w_ih = self.dec_gru.w_ih * np.exp(_np(dec.log_w_content))   # w_c·z_c

    def __call__(self, x: np.ndarray) -> np.ndarray:
        states = self.enc_gru.run(self.enc_gru.input_gates(x), keep=True)
        z_c = self.encode(states)
        return self.dec_out(self.dec_gru.run(self.dec_gru.input_gates(z_c)))


class ClassifierNet:
    """The Bi-GRU classifier's logits of the centre frame: windows (B, T, 7) → (B, 3)."""

    def __init__(self, model: nn.Module) -> None:
        if not model.gru.bidirectional:
            raise SquatDataError("the phase classifier's GRU is not bidirectional")
        self.past = model.cfg.past
        self.forward_dir = GRUDirection(model.gru)
        self.backward_dir = GRUDirection(model.gru, "_reverse")
        self.out = _Linear(model.out)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        fwd = self.forward_dir.run(self.forward_dir.input_gates(x[:, :self.past + 1]))
        back = self.backward_dir.run(self.backward_dir.input_gates(x[:, self.past:][:, ::-1]))
        return self.out(np.concatenate([fwd, back], axis=-1))


def softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)
