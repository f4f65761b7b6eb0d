"""Simulated squat datasets: many episodes generated in parallel, saved as one ``.npz``.

Episode ``i`` of a dataset with seed ``S`` is simulated from ``SeedSequence(S, spawn_key=(i,))``,
so the data depend on the seed only, not on the number of worker processes.
"""
from __future__ import annotations

import json
import multiprocessing
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from embodied_transfer.sim.episode import Episode, EpisodeConfig, simulate_episode
from embodied_transfer.sim.errors import SimError
from embodied_transfer.sim.sensors import describe
from embodied_transfer.core.phases import PHASE_NAMES

FORMAT = "embodied_transfer.squat_sim/1"
_FRAME_ARRAYS = ("t", "accel", "gyro", "gravity", "uwb_at_imu", "phase")


@dataclass
class SquatDataset:
    """Episodes laid end to end: frame arrays, UWB arrays, and offsets into them.

    Frames of episode ``e`` are ``episode_offsets[e]:episode_offsets[e + 1]``; its raw UWB
    readings ``uwb_offsets[e]:uwb_offsets[e + 1]``; ``rep_frames`` holds (first DOWN
    frame, first frame after the ascent) of every repetition, as dataset frame indices.
    ``t`` restarts at every episode.
    """

    t: np.ndarray
    accel: np.ndarray
    gyro: np.ndarray
    gravity: np.ndarray
    uwb_at_imu: np.ndarray
    phase: np.ndarray
    uwb_t: np.ndarray
    uwb: np.ndarray
    episode_offsets: np.ndarray
    uwb_offsets: np.ndarray
    rep_frames: np.ndarray
    meta: dict

    @property
    def episodes(self) -> int:
        return len(self.episode_offsets) - 1

    def episode(self, e: int) -> dict[str, np.ndarray]:
        """The frame and UWB arrays of episode ``e``."""
        a, b = self.episode_offsets[e], self.episode_offsets[e + 1]
        u, v = self.uwb_offsets[e], self.uwb_offsets[e + 1]
        arrays = {name: getattr(self, name)[a:b] for name in _FRAME_ARRAYS}
        arrays.update(uwb_t=self.uwb_t[u:v], uwb=self.uwb[u:v])
        return arrays

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {name: getattr(self, name) for name in
                  (*_FRAME_ARRAYS, "uwb_t", "uwb", "episode_offsets", "uwb_offsets", "rep_frames")}
        with open(path, "wb") as f:          # keep the name as given (savez adds .npz otherwise)
            np.savez_compressed(f, meta=np.array(json.dumps(self.meta)), **arrays)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "SquatDataset":
        try:
            loaded = np.load(path, allow_pickle=False)
            if not isinstance(loaded, np.lib.npyio.NpzFile):     # a bare .npy array
                raise ValueError("a single array, not an .npz archive")
            with loaded as npz:
                arrays = {name: npz[name] for name in npz.files}
        except FileNotFoundError:
            raise SimError(f"dataset '{path}' does not exist") from None
        except (OSError, ValueError) as exc:
            raise SimError(f"'{path}' is not a squat dataset (.npz): {exc}") from None
        try:
            meta = json.loads(str(arrays.pop("meta")))
            found = meta.get("format") if isinstance(meta, dict) else None
            if found != FORMAT:
                raise SimError(f"'{path}' has format {found!r}, expected {FORMAT}")
            return cls(meta=meta, **arrays)
        except (KeyError, TypeError) as exc:
            raise SimError(f"'{path}' is not a squat dataset: missing {exc}") from None
        except ValueError as exc:                               # meta is not JSON
            raise SimError(f"'{path}' is not a squat dataset: bad metadata ({exc})") from None


def _episode(args: tuple[int, int, EpisodeConfig]) -> Episode:
    seed, index, config = args
    return simulate_episode(np.random.SeedSequence(seed, spawn_key=(index,)), config)


def generate(squats: int, seed: int = 0, workers: int | None = None,
             config: EpisodeConfig = EpisodeConfig(), progress: bool = True) -> SquatDataset:
    """Simulate ``squats`` episodes of ``config.reps`` repetitions each, on ``workers``
    processes."""
    if squats < 1:
        raise SimError(f"need at least one squat, got {squats}")
    if workers is not None and workers < 0:
        raise SimError(f"workers must be positive (0 or none: all cores), got {workers}")
    workers = workers or os.cpu_count() or 1
    jobs = [(seed, i, config) for i in range(squats)]
    bar = tqdm(total=squats, unit="squat", desc="simulating", disable=not progress)
    episodes: list[Episode] = []
    if workers == 1:
        for job in jobs:
            episodes.append(_episode(job))
            bar.update()
    else:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            for episode in pool.imap(_episode, jobs, chunksize=8):
                episodes.append(episode)
                bar.update()
    bar.close()
    return _assemble(episodes, seed, config)


def _assemble(episodes: list[Episode], seed: int, config: EpisodeConfig) -> SquatDataset:
    frame_counts = np.array([len(e.t) for e in episodes])
    uwb_counts = np.array([len(e.uwb_t) for e in episodes])
    episode_offsets = np.concatenate([[0], np.cumsum(frame_counts)])
    rep_frames = np.concatenate([e.rep_frames + o for e, o in zip(episodes, episode_offsets)])
    cat = {name: np.concatenate([getattr(e, name) for e in episodes]) for name in _FRAME_ARRAYS}
    meta = {
        "format": FORMAT, "seed": seed, "episodes": len(episodes),
        "reps_per_episode": config.reps, "frames": int(frame_counts.sum()),
        "rate_hz": 1.0 / config.frame_dt, "phases": list(PHASE_NAMES),
        "signals": describe(config.imu, config.uwb, episodes[0].params["physics_dt"],
                            config.frame_dt),
        "config": asdict(config),
        "episode_params": [e.params for e in episodes],
    }
    return SquatDataset(uwb_t=np.concatenate([e.uwb_t for e in episodes]),
                        uwb=np.concatenate([e.uwb for e in episodes]),
                        episode_offsets=episode_offsets,
                        uwb_offsets=np.concatenate([[0], np.cumsum(uwb_counts)]),
                        rep_frames=rep_frames, meta=meta, **cat)
