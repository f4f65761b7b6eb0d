"""Simulated and real squat signals side by side (matplotlib, PNG).

Real watches report *user* acceleration (gravity removed), the simulator the specific
force including gravity; the sim panels show ``accel - gravity`` so both are the same
quantity, and the caption says so. Phase labels shade the time axis.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from embodied_transfer.squat.phases import DOWN, PHASE_NAMES, UP

PHASE_COLOURS = {DOWN: "#f4a582", UP: "#92c5de"}
CHANNELS = ("accel_x", "accel_y", "accel_z", "gyro_x", "gyro_y", "gyro_z", "uwb")


def signal_matrix(accel: np.ndarray, gyro: np.ndarray, uwb: np.ndarray) -> np.ndarray:
    """(N, 7) in CHANNELS order."""
    return np.column_stack([accel, gyro, uwb])


def _shade(ax, t: np.ndarray, phase: np.ndarray) -> None:
    edges = np.flatnonzero(np.diff(phase)) + 1
    for a, b in zip(np.r_[0, edges], np.r_[edges, len(phase)]):
        colour = PHASE_COLOURS.get(int(phase[a]))
        if colour:
            ax.axvspan(t[a], t[min(b, len(t) - 1)], color=colour, alpha=0.35, lw=0)


def plot_domains(sim: dict, real: dict, out: str | Path, seconds: float = 40.0,
                 title: str = "") -> Path:
    """Draw ``sim`` and ``real`` (dicts with t, signals (N, 7), phase) into ``out``.

    Left: the first ``seconds`` of each as time series with shared y limits per row;
    right: each channel's value distribution, sim against real.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = (("acceleration\n[m/s², user]", slice(0, 3)), ("angular rate\n[rad/s]", slice(3, 6)),
            ("UWB range [m]", slice(6, 7)))
    fig, axes = plt.subplots(3, 3, figsize=(16, 9), gridspec_kw={"width_ratios": [3, 3, 2]})
    colours = ("tab:red", "tab:green", "tab:blue")
    for r, (label, cols) in enumerate(rows):
        lo = min(np.percentile(d["signals"][:, cols], 0.5) for d in (sim, real))
        hi = max(np.percentile(d["signals"][:, cols], 99.5) for d in (sim, real))
        pad = 0.1 * (hi - lo + 1e-6)
        for c, (name, d) in enumerate((("simulated", sim), ("real", real))):
            ax = axes[r, c]
            keep = d["t"] - d["t"][0] <= seconds
            t = d["t"][keep] - d["t"][0]
            _shade(ax, t, d["phase"][keep])
            for k, col in enumerate(range(cols.start, cols.stop)):
                ax.plot(t, d["signals"][keep, col], lw=0.9, color=colours[k],
                        label=CHANNELS[col].split("_")[-1] if cols.stop - cols.start > 1 else None)
            ax.set_ylim(lo - pad, hi + pad)
            if r == 0:
                ax.set_title(f"{name}: {d.get('name', '')}", fontsize=10)
            if c == 0:
                ax.set_ylabel(label)
            if r == 2:
                ax.set_xlabel("time [s]")
            if r < 2 and c == 0:
                ax.legend(loc="upper right", fontsize=8, ncol=3)
        ax = axes[r, 2]
        for k, col in enumerate(range(cols.start, cols.stop)):
            bins = np.linspace(lo - pad, hi + pad, 60)
            ax.hist(sim["signals"][:, col], bins=bins, density=True, histtype="step",
                    color=colours[k], ls="--")
            ax.hist(real["signals"][:, col], bins=bins, density=True, histtype="step",
                    color=colours[k], label=CHANNELS[col])
        ax.set_yscale("log")
        if r == 0:
            ax.set_title("distribution: real solid, simulated dashed", fontsize=10)
        ax.legend(fontsize=7)
    patches = [matplotlib.patches.Patch(color=c, alpha=0.35, label=PHASE_NAMES[p])
               for p, c in PHASE_COLOURS.items()]
    fig.legend(handles=patches, loc="lower center", ncol=2, fontsize=9)
    fig.suptitle(title or "squat signals: simulated vs real (unshaded = Stop)", fontsize=12)
    fig.tight_layout(rect=(0, 0.03, 1, 0.97))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def domain_gap(sim: np.ndarray, real: np.ndarray) -> dict[str, dict[str, float]]:
    """Per channel: mean and std of each domain (a numeric summary of the plot)."""
    return {name: {"sim_mean": float(sim[:, i].mean()), "sim_std": float(sim[:, i].std()),
                   "real_mean": float(real[:, i].mean()), "real_std": float(real[:, i].std())}
            for i, name in enumerate(CHANNELS)}


def compare_domains(csv: str | Path, out: str | Path, sim_path: str | Path | None = None,
                    seed: int = 0, sim_reps: int = 6, seconds: float = 40.0):
    """Plot a real recording against simulated squats; returns (png path, :func:`domain_gap`).

    The simulated side is the dataset at ``sim_path`` (its first episodes, laid end to end)
    or, without one, a fresh episode of ``sim_reps`` repetitions from ``seed``.
    """
    from embodied_transfer.sim.dataset import SquatDataset
    from embodied_transfer.sim.episode import EpisodeConfig, simulate_episode
    from embodied_transfer.squat.real import load_real_csv

    rec = load_real_csv(csv)
    real = {"name": Path(csv).name, "t": rec.t, "phase": rec.phase,
            "signals": signal_matrix(rec.accel, rec.gyro, rec.uwb_at_imu)}
    if sim_path:
        data = SquatDataset.load(sim_path)
        end = int(np.searchsorted(data.episode_offsets, seconds * data.meta["rate_hz"]))
        frames = slice(0, int(data.episode_offsets[min(max(end, 1), data.episodes)]))
        t = np.arange(frames.stop) / data.meta["rate_hz"]
        accel, gravity = data.accel[frames], data.gravity[frames]
        sim = {"name": f"{Path(sim_path).name} (episodes end to end)", "t": t,
               "phase": data.phase[frames],
               "signals": signal_matrix(accel - gravity, data.gyro[frames],
                                        data.uwb_at_imu[frames])}
    else:
        ep = simulate_episode(seed, EpisodeConfig(reps=sim_reps))
        sim = {"name": f"seed {seed}, {sim_reps} squats", "t": ep.t, "phase": ep.phase,
               "signals": signal_matrix(ep.accel - ep.gravity, ep.gyro, ep.uwb_at_imu)}
    png = plot_domains(sim, real, out, seconds=seconds)
    return png, domain_gap(sim["signals"], real["signals"])
