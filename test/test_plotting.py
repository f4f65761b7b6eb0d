"""Training-curve figures of the squat and tactile trainers."""
from __future__ import annotations

import numpy as np

from embodied_transfer.core.plotting import Curves, plot_curves
from embodied_transfer.squat import train as squat_train
from embodied_transfer.tactile import train as tactile_train


def _curves(stages: dict[str, tuple[str, ...]], steps: int = 300) -> Curves:
    curves = Curves()
    rng = np.random.default_rng(0)
    for stage, names in stages.items():
        for _ in range(steps):
            curves.add(stage, **{n: float(rng.uniform(0.1, 1.0)) for n in names})
    return curves


def test_curves_record_per_stage():
    curves = Curves()
    curves.add("a", loss=1, acc=0.5)
    curves.add("a", loss=0.5, acc=0.75)
    assert curves.data == {"a": {"loss": [1.0, 0.5], "acc": [0.5, 0.75]}}


def test_squat_and_tactile_curves_are_drawn(tmp_path):
    squat = _curves({"classifier": ("loss",), "plain_vae": ("recon", "kld")})
    assert squat_train.plot_curves is plot_curves
    out = plot_curves(squat, tmp_path / "deep" / "squat.png")
    assert out.stat().st_size > 5_000
    tactile = _curves({"stage1_reconstruction": ("rec_glove",),
                       "stage2_alignment": ("l_con", "l_rec", "disc_acc", "batch_top1")})
    out = tactile_train.plot_curves(tactile, tmp_path / "tactile.png")
    assert out.stat().st_size > 5_000
