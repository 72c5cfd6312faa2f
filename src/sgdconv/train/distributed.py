"""The processes of a training run: rank, world size and device from ``torchrun``'s
environment (one process without it), and the collectives the engine needs."""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import distributed as dist

from sgdconv.train.spec import RunSpec


class Distributed:
    """Rank, world size and device of this process (torchrun's environment, if any)."""

    def __init__(self, spec: RunSpec) -> None:
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if spec.device == "cuda":
            if not torch.cuda.is_available():
                raise RuntimeError(f"run {spec.run_id}: device cuda requested but unavailable")
            torch.cuda.set_device(local_rank)
            self.device = torch.device("cuda", local_rank)
        else:
            self.device = torch.device("cpu")
        self.owns_group = False
        if self.world > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
            self.owns_group = True
        if spec.batch_size % self.world:
            raise ValueError(f"batch_size {spec.batch_size} not divisible by world {self.world}")

    @property
    def main(self) -> bool:
        return self.rank == 0

    def mean(self, value: torch.Tensor) -> torch.Tensor:
        if self.world > 1:
            value = value.clone()
            dist.all_reduce(value)
            value /= self.world
        return value

    def broadcast(self, value: Any) -> Any:
        """The main process's ``value``, on every process."""
        if self.world > 1:
            box = [value]
            dist.broadcast_object_list(box, src=0)
            value = box[0]
        return value

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    def close(self) -> None:
        if self.owns_group:
            dist.destroy_process_group()


def configure_determinism(device: torch.device) -> None:
    """Deterministic kernels on CPU (a resumed run is bit-identical); no cuDNN autotuning."""
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True, warn_only=True)
    else:
        torch.backends.cudnn.benchmark = False
