"""Squat dataset generation speed against the physics limit of the same model.

``generate`` runs the reference dataset (3000 squats, all cores, as
``embodied-transfer squat simulate`` does). The physics limit is raw ``mj_step``
throughput of the nominal humanoid, stepped in C (``mj_step(..., nstep=N)``), on one
core, times the cores used. ``efficiency`` = physics steps the generator simulated per
second / that limit: what the Python around the physics (planning, model building with
randomised bodies, sensor models, process pool) costs. Target: 3000 squats < 120 s.
"""
from __future__ import annotations

import os
import time

import mujoco
import numpy as np

from embodied_transfer.sim.dataset import generate
from embodied_transfer.sim.episode import SETTLE
from embodied_transfer.sim.squat import RepMotion, SquatPlan, build_model, reset_to

SQUATS = int(os.environ.get("BENCH_SQUATS", "3000"))
TARGET_S = 120.0
TABLE_COLUMNS = (("squats", "squats"), ("seconds", "seconds"), ("squats/s", "squats_per_s"),
                 ("sim s per wall s", "sim_speedup"), ("raw steps/s/core", "raw_steps_per_s"),
                 ("efficiency", "efficiency"), ("target met", "target_met"))


def raw_step_rate(seconds: float = 3.0) -> float:
    """mj_step steps per second of the nominal humanoid standing (PD on), in C, one core."""
    model = build_model()
    data = mujoco.MjData(model)
    reset_to(model, data, SquatPlan([RepMotion()]).targets([0.0])[0])
    steps = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        mujoco.mj_step(model, data, nstep=2000)
        steps += 2000
    return steps / (time.perf_counter() - start)


def run() -> dict:
    workers = os.cpu_count() or 1
    raw = raw_step_rate()
    start = time.perf_counter()
    dataset = generate(SQUATS, seed=0, workers=workers, progress=False)
    seconds = time.perf_counter() - start
    sim_seconds = sum(p["duration"] + SETTLE for p in dataset.meta["episode_params"])
    dt = dataset.meta["episode_params"][0]["physics_dt"]
    steps_per_s = sim_seconds / dt / seconds
    return {"cases": {"generate": {
        "squats": SQUATS, "workers": workers, "seconds": round(seconds, 2),
        "squats_per_s": SQUATS / seconds, "frames": int(len(dataset.t)),
        "sim_seconds": round(sim_seconds, 1), "sim_speedup": sim_seconds / seconds,
        "raw_steps_per_s": raw, "generator_steps_per_s": steps_per_s,
        "efficiency": steps_per_s / (raw * workers),
        "squats_per_s_limit": SQUATS / (sim_seconds / dt / (raw * workers)),
        "target_s": TARGET_S, "target_met": seconds < TARGET_S,
        "mean_episode_s": float(np.mean([p["duration"] for p in dataset.meta["episode_params"]])),
    }}}
