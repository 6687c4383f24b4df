"""Data-parallel training under ``torchrun``: torch.distributed with gloo on CPU, nccl on GPUs.

``torchrun`` sets RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR / MASTER_PORT; the Trainer joins the process group
itself, so the same script runs alone or as ``torchrun --nproc_per_node N script.py`` (and across machines with
torchrun's rendezvous flags, see docs/training.md). Gradients are averaged by ``DistributedDataParallel``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Processes:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1


def init_processes(backend: str | None = None) -> Processes:
    """Join the process group torchrun describes in the environment (once); one process needs none."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return Processes()
    if not dist.is_initialized():
        if backend is None:
            backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend=backend)
    return Processes(dist.get_rank(), int(os.environ.get("LOCAL_RANK", "0")), dist.get_world_size())


def device_for(processes: Processes, use_cpu: bool) -> torch.device:
    if torch.cuda.is_available() and not use_cpu:
        torch.cuda.set_device(processes.local_rank)
        return torch.device("cuda", processes.local_rank)
    return torch.device("cpu")


def sum_over_processes(value: torch.Tensor, processes: Processes) -> torch.Tensor:
    if processes.active:
        value = value.clone()
        dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return value


def gather_objects(value, processes: Processes) -> list:
    """Every process's ``value``, in rank order (picklable objects of any size)."""
    if not processes.active:
        return [value]
    out = [None] * processes.world_size
    dist.all_gather_object(out, value)
    return out


def barrier(processes: Processes) -> None:
    if processes.active:
        dist.barrier()


def wrap_model(model: torch.nn.Module, processes: Processes, device: torch.device) -> torch.nn.Module:
    """``DistributedDataParallel`` around the model when several processes train it (rank 0's weights win)."""
    if not processes.active:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)
