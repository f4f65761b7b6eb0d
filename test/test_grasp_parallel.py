"""Data-parallel grasp training (:mod:`embodied_transfer.grasp.parallel`): ``grasp train``
unchanged under ``accelerate launch`` with two CPU processes takes the steps one process
takes at the same global batch."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from embodied_transfer.grasp.backends.cnn import CnnBackend
from embodied_transfer.grasp.errors import GraspError
from embodied_transfer.grasp.parallel import DataParallel
from test_grasp_real import TINY, _objects_dataset

ACCELERATE = Path(sys.executable).with_name("accelerate")
LAUNCH = [str(ACCELERATE), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
          "--mixed_precision", "no", "--dynamo_backend", "no"]
CPU_ENV = {**os.environ, "OMP_NUM_THREADS": "1", "ACCELERATE_USE_CPU": "true"}

#: One data-parallel step of a BatchNorm-free net; each process writes its gradients.
STEP = """
import sys, torch
from embodied_transfer.grasp.parallel import DataParallel
torch.manual_seed(0)
net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Conv2d(4, 1, 3))
x, y = torch.randn(6, 3, 8, 8), torch.randn(6, 1, 4, 4)
dp = DataParallel()
model = dp.prepare(net)
mine = dp.share(list(range(6)))
dp.backward(torch.nn.functional.mse_loss(model(x[mine]), y[mine]))
torch.save([p.grad for p in net.parameters()], f"{sys.argv[1]}/grad{dp.rank}of{dp.world}.pt")
dp.end()
"""


class _Launched:
    """Accelerator stand-in for process ``rank`` of ``world`` (no process group needed)."""

    def __init__(self, rank, world):
        self.process_index, self.num_processes = rank, world
        self.calls = []

    def wait_for_everyone(self):
        self.calls.append("wait")

    def end_training(self):
        self.calls.append("end")


def test_each_process_takes_its_share_of_the_global_batch():
    batch = np.arange(7)
    shares = [DataParallel(_Launched(r, 2)).share(batch) for r in range(2)]
    assert sorted(np.concatenate(shares).tolist()) == batch.tolist()
    assert [len(s) for s in shares] == [4, 3]
    short = [DataParallel(_Launched(r, 3)).share(np.arange(2)) for r in range(3)]
    assert all(len(s) == 1 for s in short)              # nobody is left without an item
    assert DataParallel().share(batch) is batch         # one process: the whole batch
    with pytest.raises(GraspError, match="smaller than the 3 processes"):
        DataParallel(_Launched(0, 3)).check_batch(2)


def test_a_launch_that_accelerate_does_not_see_is_refused(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")              # e.g. --multi_gpu without GPUs
    with pytest.raises(GraspError, match="ACCELERATE_USE_CPU=true"):
        DataParallel(_Launched(0, 1))


def test_launched_processes_leave_the_group_after_waiting_for_each_other():
    launched = _Launched(1, 2)
    DataParallel(launched).end()
    assert launched.calls == ["wait", "end"]   # exiting with the group alive can abort
    alone = _Launched(0, 1)
    DataParallel(alone).end()
    assert alone.calls == []                    # one process: no group to leave


@pytest.mark.skipif(not ACCELERATE.exists(), reason="accelerate is in requirements.txt")
def test_two_processes_average_their_gradients_to_the_global_batch_gradient(tmp_path):
    import torch

    script = tmp_path / "step.py"
    script.write_text(STEP)
    for launch in ([sys.executable], LAUNCH):
        proc = subprocess.run([*launch, str(script), str(tmp_path)], capture_output=True,
                              text=True, timeout=300, env=CPU_ENV)
        assert proc.returncode == 0, proc.stderr[-3000:]
    one = torch.load(tmp_path / "grad0of1.pt")
    for rank in range(2):
        for g, ref in zip(torch.load(tmp_path / f"grad{rank}of2.pt"), one):
            torch.testing.assert_close(g, ref, rtol=1e-5, atol=1e-7)


#: LoRA tuning of a tiny LLaVA (no dropout: each process would draw its own masks).
LORA = """
import sys
sys.path.insert(0, {test!r})
from test_grasp_vlm import examples
from embodied_transfer.grasp.vlm_train import train_vlm
train_vlm(sys.argv[1], examples(8), sys.argv[2], lora=True, epochs=2, batch_size=4, lr=1e-2,
          seed=0, progress=False, lora_r=4, lora_alpha=8, lora_dropout=0.0)
"""


@pytest.mark.skipif(not ACCELERATE.exists(), reason="accelerate is in requirements.txt")
def test_vlm_lora_tuning_in_two_processes_follows_one(tmp_path):
    from test_grasp_vlm import TINY as TINY_VLM
    from test_grasp_vlm import examples

    from embodied_transfer.grasp.vlm_train import build_tiny_vlm

    texts = [t for _, i, a in examples(40, seed=1) for t in (i, a)]
    base = build_tiny_vlm(tmp_path / "base", texts, **TINY_VLM)
    script = tmp_path / "lora.py"
    script.write_text(LORA.format(test=str(Path(__file__).parent)))
    curves = {}
    for name, launch in (("one", [sys.executable]), ("two", LAUNCH)):
        proc = subprocess.run([*launch, str(script), str(base), str(tmp_path / name)],
                              capture_output=True, text=True, timeout=300, env=CPU_ENV)
        assert proc.returncode == 0, proc.stderr[-3000:]
        curves[name] = json.loads((tmp_path / name / "training_curves.json").read_text())
        assert (tmp_path / name / "adapter_model.safetensors").is_file()
    meta = json.loads((tmp_path / "two" / "grasp_vlm.json").read_text())
    assert meta["processes"] == 2 and len(curves["two"]["loss"]) == len(curves["one"]["loss"])
    # each process averages its own share's tokens: the same steps, within a few per cent
    np.testing.assert_allclose(curves["two"]["loss"], curves["one"]["loss"], rtol=0.05)


def _train(tmp_path, name, data, start, launch=()):
    env = CPU_ENV
    cmd = [*launch, "-m", "embodied_transfer", "grasp", "train", "--backend", "cnn",
           "--real", str(data), "--init", str(start), "--workspace", "0", "0", "1", "1",
           "--epochs", "2", "--batch-size", "8", "--lr", "1e-3", "--out", str(tmp_path / name)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((tmp_path / name / "training_curves.json").read_text())


@pytest.mark.skipif(not ACCELERATE.exists(), reason="accelerate is in requirements.txt")
def test_two_cpu_processes_match_one_at_the_same_global_batch(tmp_path):
    ds = _objects_dataset(tmp_path / "real")
    CnnBackend.create(TINY, seed=1).save(tmp_path / "start")
    one = _train(tmp_path, "one", ds.directory, tmp_path / "start", [sys.executable])
    two = _train(tmp_path, "two", ds.directory, tmp_path / "start", LAUNCH)
    assert one["processes"] == 1 and two["processes"] == 2
    assert len(one["step_loss"]) == len(two["step_loss"]) == 4
    # the same batches and augmentation; BatchNorm normalises each process's share alone
    # on CPUs, so the losses are close, not equal
    np.testing.assert_allclose(two["step_loss"], one["step_loss"], rtol=0.05)
    assert CnnBackend.load(tmp_path / "two").info["steps"] == 4
