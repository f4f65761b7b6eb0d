"""Figures the commands write (matplotlib without a display): training curves and PNGs."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class Curves:
    """Loss curves per training stage, for the plot and the checkpoints' records."""

    data: dict[str, dict[str, list[float]]] = field(default_factory=dict)

    def add(self, stage: str, **values: float) -> None:
        for k, v in values.items():
            self.data.setdefault(stage, {}).setdefault(k, []).append(float(v))


def pyplot():
    """matplotlib.pyplot on the Agg backend."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def save_figure(fig, out: str | Path, dpi: int = 100) -> Path:
    """Lay out, write (creating the folder) and close ``fig``."""
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi)
    pyplot().close(fig)
    return out


def plot_curves(curves: Curves, out: str | Path,
                panels: Sequence[tuple[str, Sequence[str], bool]] | None = None,
                dpi: int = 100, xlabel: str = "step") -> Path:
    """One panel per (stage, curve names, log scale), default one per stage with all its
    curves; each curve is a moving mean over about 1 % of its points (``xlabel``)."""
    if panels is None:
        panels = [(stage, list(v), False) for stage, v in curves.data.items()]
    plt = pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(4.1 * len(panels), 3.4))
    for ax, (stage, names, log) in zip(np.atleast_1d(axes), panels):
        for name in names:
            v = np.asarray(curves.data[stage][name])
            k = max(1, len(v) // 100)
            ax.plot(np.convolve(v, np.ones(k) / k, mode="valid"), label=name)
        ax.set_title(stage, fontsize=9)
        ax.set_xlabel(xlabel)
        if log:
            ax.set_yscale("log")
        ax.legend(fontsize=7)
    return save_figure(fig, out, dpi)
