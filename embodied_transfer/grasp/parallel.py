"""Data-parallel grasp training: the same ``grasp train`` in one process or under
``accelerate launch`` (several GPUs, several machines, or CPU processes).

:class:`DataParallel` wraps Hugging Face Accelerate. The training loops of
:mod:`~embodied_transfer.grasp.cnn_train` and :mod:`~embodied_transfer.grasp.vlm_train` keep
their *global* batch: every process draws the same batch order and augmentation (the same
seed), takes its share of each batch (:meth:`DataParallel.share`, items ``rank::world``) and
the gradients are averaged across processes (``DistributedDataParallel``), so N processes take
the steps one process takes at the same batch size. Per-process differences that remain: the
loss is averaged per share (unequal shares or token counts weigh slightly differently) and,
on CPUs, BatchNorm normalises each share alone (``SyncBatchNorm`` is used where it runs: on
GPUs). Only the main process writes models, curves and progress bars; every process ends with
:meth:`DataParallel.end`.

Launch: ``accelerate launch --multi_gpu --num_processes N -m embodied_transfer grasp train ...``
(on CPUs only, with ``ACCELERATE_USE_CPU=true`` in the environment: Accelerate's ``--cpu``
alone starts one process).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import torch

from embodied_transfer.grasp.errors import GraspError


@dataclass
class DataParallel:
    """The processes training together (one, when not launched by ``accelerate launch``)."""

    accelerator: object = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.accelerator is None:
            from accelerate import Accelerator

            self.accelerator = Accelerator()
        launched = int(os.environ.get("WORLD_SIZE", "1") or 1)
        if launched > self.world:
            raise GraspError(
                f"launched as {launched} processes but Accelerate trains in {self.world}: "
                f"without GPUs, launch CPU processes with ACCELERATE_USE_CPU=true "
                f"(e.g. 'ACCELERATE_USE_CPU=true accelerate launch --multi_gpu "
                f"--num_processes {launched} ...')")

    @property
    def world(self) -> int:
        return int(self.accelerator.num_processes)

    @property
    def rank(self) -> int:
        return int(self.accelerator.process_index)

    @property
    def main(self) -> bool:
        return bool(self.accelerator.is_main_process)

    @property
    def device(self) -> torch.device:
        """Where this process trains: the accelerator's device when launched, else the CPU
        (a single process keeps the caller's device choice)."""
        return self.accelerator.device if self.world > 1 else torch.device("cpu")

    def check_batch(self, batch_size: int) -> None:
        """A global batch must give every process at least one item."""
        if batch_size < self.world:
            raise GraspError(f"batch size {batch_size} is smaller than the {self.world} "
                             f"processes training together: every process needs an item")

    def share(self, items: np.ndarray | list) -> np.ndarray | list:
        """This process's items of a global batch (``rank::world``; all with one process).

        A final batch shorter than the processes is topped up from its start, so that no
        process is left without data (a process with none would stall the others)."""
        if self.world == 1:
            return items
        while len(items) < self.world:
            items = list(items) + list(items)[:self.world - len(items)]
        return items[self.rank::self.world]

    def prepare(self, model: torch.nn.Module) -> torch.nn.Module:
        """``model`` on this process's device, wrapped for gradient averaging when N > 1
        (one process: ``model`` as it is, where the caller put it)."""
        if self.world == 1:
            return model
        if self.device.type == "cuda":
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        return self.accelerator.prepare_model(model)

    def backward(self, loss: torch.Tensor) -> None:
        self.accelerator.backward(loss)

    def mean(self, value: torch.Tensor) -> float:
        """The mean of a scalar over the processes (the loss one process would log)."""
        if self.world == 1:
            return float(value.item())
        return float(self.accelerator.reduce(value.detach().reshape(1), "mean").item())

    def wait(self) -> None:
        self.accelerator.wait_for_everyone()

    def end(self) -> None:
        """Wait for the others, then leave the process group. A launched process must do so
        before it exits: one that exits with the group alive can abort (SIGABRT, "terminate
        called without an active exception") while its communication threads still run."""
        if self.world == 1:
            return
        self.wait()
        self.accelerator.end_training()


def main_process() -> bool:
    """True in the process that writes results (the only one when not launched)."""
    from accelerate import PartialState

    return bool(PartialState().is_main_process)


def processes() -> int:
    """How many processes train together (1 when not launched)."""
    from accelerate import PartialState

    return int(PartialState().num_processes)
