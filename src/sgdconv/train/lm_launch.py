"""Launching a language-model run (:mod:`sgdconv.train.lm_engine`): in this process, or over
several processes with ``torchrun`` (one per GPU at paper scale; gloo on CPU).
``python -m sgdconv.train.lm_launch <spec.json> <run_dir> [--threads N]`` is one process of a
run; the ``train_language`` rule calls :func:`launch_lm`. :class:`Processes` is the
processes' rank, world size, device and collectives."""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch
from torch import distributed as dist

from sgdconv.train.checkpoint import write_json
from sgdconv.train.lm_spec import LMRunSpec


class Processes:
    """Rank, world size and device (torchrun's environment, one process without it), and the
    collectives the loop needs."""

    def __init__(self, spec: LMRunSpec) -> None:
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        if spec.device == "cuda":
            if not torch.cuda.is_available():
                raise RuntimeError(f"run {spec.run_id}: device cuda requested but unavailable")
            local = int(os.environ.get("LOCAL_RANK", "0"))
            torch.cuda.set_device(local)
            self.device = torch.device("cuda", local)
        else:
            self.device = torch.device("cpu")
            torch.use_deterministic_algorithms(True, warn_only=True)
        self.owns_group = False
        if self.world > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
            self.owns_group = True
        if spec.batch_size % self.world:
            raise ValueError(f"batch_size {spec.batch_size} not divisible by world {self.world}")
        local_b = spec.batch_size // self.world
        self.streams = slice(self.rank * local_b, (self.rank + 1) * local_b)

    @property
    def main(self) -> bool:
        return self.rank == 0

    def mean(self, value: torch.Tensor) -> torch.Tensor:
        if self.world > 1:
            value = value.clone()
            dist.all_reduce(value)
            value /= self.world
        return value

    def gather(self, value: Any) -> list[Any]:
        """Every process's ``value``, by rank."""
        if self.world == 1:
            return [value]
        out: list[Any] = [None] * self.world
        dist.all_gather_object(out, value)
        return out

    def broadcast(self, value: Any) -> Any:
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


def launch_lm(
    spec: LMRunSpec, run_dir: str | os.PathLike, *, nproc: int | None = None, threads: int = 1
) -> dict[str, Any]:
    """Train ``spec`` with ``nproc`` processes (default ``spec.nproc``): in this process, or
    under ``torchrun --standalone`` (gloo on CPU, NCCL on GPUs), each with ``threads`` threads."""
    nproc = spec.nproc if nproc is None else int(nproc)
    if nproc <= 1:
        from sgdconv.train.lm_engine import train_lm

        return train_lm(spec, run_dir)
    run_dir = Path(run_dir)
    spec_file = run_dir / "launch_spec.json"
    write_json(spec_file, spec.to_dict())
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        f"--nproc_per_node={nproc}", "-m", "sgdconv.train.lm_launch",
        str(spec_file), str(run_dir), f"--threads={int(threads)}",
    ]  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    subprocess.run(command, check=True, env=env, stdout=sys.stderr)
    return json.loads((run_dir / "manifest.json").read_text())


def main(argv: list[str] | None = None) -> None:
    """``python -m sgdconv.train.lm_launch <spec.json> <run_dir> [--threads N]``: one process
    of a run (under torchrun, or alone)."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("spec", help="JSON file with the language-model run spec")
    parser.add_argument("run_dir", help="the run's directory (runs/<run_id>)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    torch.set_num_threads(args.threads)
    spec = LMRunSpec.from_dict(json.loads(Path(args.spec).read_text()))
    from sgdconv.train.lm_engine import train_lm

    train_lm(spec, args.run_dir)


if __name__ == "__main__":
    main()
