"""Synthetic grasp data from the MuJoCo tabletop, and grasps executed there.

* :func:`export_dataset` renders random scenes into two Cornell-layout directories:
  ``plain/``, one sample per scene with every object's grasps (for instruction-free training
  such as the CNN), and ``instructed/``, one sample per (scene, target object) with an
  instruction naming the target and only its grasps in ``cpos`` (for reasoning tuning).
* :func:`simulate_trials` asks a backend for a grasp on fresh scenes and executes it with the
  parallel-jaw gripper: the honest end-to-end measure.

Scene ``i`` of a seed is drawn from ``SeedSequence(seed, spawn_key=(i,))``, so a dataset does
not depend on the number of worker processes.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from embodied_transfer.grasp.cornell import CornellSample, write_sample
from embodied_transfer.grasp.errors import GraspError
from embodied_transfer.grasp.reasoning import instruction
from embodied_transfer.grasp.tabletop_task import scene_seed


def scene_cornell_samples(seed: int, i: int, width: int, height: int, randomise: bool = False,
                          random_size: bool = True
                          ) -> tuple[CornellSample, list[CornellSample]]:
    """Scene ``i`` as (one sample with every grasp, one instructed sample per object)."""
    from embodied_transfer.grasp.scene_labels import sample_scene

    s = sample_scene(scene_seed(seed, i), width=width, height=height, randomise=randomise,
                     random_size=random_size)
    every = [g for name in sorted(s.grasps) for g in s.grasps[name]]
    plain = CornellSample("pcd0000", s.rgb, s.depth, every, objects=list(s.objects))
    rng = np.random.default_rng(scene_seed(seed, i) + 1)
    instructed = [CornellSample("pcd0000", s.rgb, s.depth, list(s.grasps[obj.name]),
                                instruction=instruction(obj, rng), objects=list(s.objects),
                                target=obj.name)
                  for obj in s.objects if s.grasps.get(obj.name)]
    return plain, instructed


def _job(args) -> tuple[CornellSample, list[CornellSample]]:
    return scene_cornell_samples(*args)


def export_dataset(out: str | Path, scenes: int, seed: int = 0, *, width: int = 320,
                   height: int = 240, workers: int | None = None, progress: bool = True,
                   randomise: bool = False, random_size: bool = True) -> dict[str, int]:
    """Render ``scenes`` scenes into ``out/plain`` (one sample per scene, every object's
    grasps) and ``out/instructed`` (one sample per object, its instruction and grasps);
    returns the number of samples written to each. With ``randomise`` each scene has a random
    look and, unless ``random_size`` is False, a random image size (width and height are
    then ignored)."""
    if scenes < 1:
        raise GraspError(f"need at least one scene, got {scenes}")
    workers = workers or os.cpu_count() or 1
    jobs = [(seed, i, width, height, randomise, random_size) for i in range(scenes)]
    out = Path(out)
    count = {"plain": 0, "instructed": 0}
    bar = tqdm(total=scenes, unit="scene", desc="rendering scenes", disable=not progress)
    ctx = mp.get_context("spawn")     # a fresh GL context per worker
    with ctx.Pool(workers) if workers > 1 else _Serial() as pool:
        for plain, instructed in pool.imap(_job, jobs):
            for kind, samples in (("plain", [plain]), ("instructed", instructed)):
                for sample in samples:
                    sample.id = f"pcd{count[kind]:05d}"
                    write_sample(out / kind, sample)
                    count[kind] += 1
            bar.update()
    bar.close()
    return count


class _Serial:
    """``Pool``'s imap in this process (one worker)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None

    @staticmethod
    def imap(fn, jobs):
        return map(fn, jobs)


def simulate_trials(backend, trials: int, seed: int = 10_000, *, width: int = 320,
                    height: int = 240, progress: bool = True, randomise: bool = False) -> dict:
    """Fresh scenes, a random target each, the backend's grasp executed in MuJoCo.

    Success: the target object rises > ``LIFT_SUCCESS`` between both pads (for a backend
    that ignores instructions, any object counts as ``success`` and the target is reported
    separately as ``target_success_rate``).
    """
    from embodied_transfer.grasp.tabletop_task import LiveTabletop
    from embodied_transfer.sim.errors import SimError

    if trials < 1:
        raise GraspError(f"need at least one trial, got {trials}")
    task = LiveTabletop(seed, width, height, randomise=randomise)
    rows, times = [], []
    for i in tqdm(range(trials), unit="trial", desc=f"trials ({backend.name})",
                  disable=not progress):
        if i:
            task.next_scene()
        obs = task.observe()
        start = time.perf_counter()
        pred = backend.predict(obs.rgb, obs.depth, task.instruction)
        times.append(time.perf_counter() - start)
        row = {"scene": i, "instruction": task.instruction, "target": task.target.name,
               "success": False, "target_lifted": False, "lifted": None, "reason": ""}
        rows.append(row)
        if pred.grasp is None:
            row["reason"] = f"no grasp: {pred.error}"
            continue
        try:
            outcome = task.execute(pred.grasp)
        except SimError as exc:
            row["reason"] = f"not executable: {exc}"
            continue
        row["lifted"], row["reason"] = outcome.lifted, outcome.reason
        row["target_lifted"] = outcome.success and outcome.lifted == task.target.name
        row["success"] = row["target_lifted"] if backend.uses_instruction else outcome.success
    n = len(rows)
    return {"backend": backend.name, "trials": n,
            "success_rate": sum(r["success"] for r in rows) / n,
            "target_success_rate": sum(r["target_lifted"] for r in rows) / n,
            "no_grasp": sum(r["reason"].startswith("no grasp") for r in rows),
            "ms_per_prediction": float(np.mean(times) * 1e3),
            "seed": seed, "randomised": randomise, "rows": rows}
