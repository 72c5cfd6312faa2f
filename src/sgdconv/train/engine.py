"""The training engine: minibatch SGD with momentum and weight decay, resumable at any step.

A plain loop in the style of the PyTorch ImageNet example (the training of Zhang et al.
Section 2 / Appendix A), with what a reproducible pipeline needs around it:

* a train-log row per optimizer step, ``step, epoch, lr, minibatch_loss`` (DESIGN.md), where
  ``minibatch_loss`` is the loss ℓ(θ_{k−1}, x_k) of eq. (2) of Zhang et al. on the step's global
  minibatch (averaged over processes), ``step`` = k counts updates (1-based) and ``epoch`` is
  the 0-based epoch of the step;
* checkpoints every ``checkpoint_every`` epochs and at steps 0 and last, holding the model,
  optimizer, scheduler, RNG and data position; the data order and every augmentation are pure
  functions of (seed, epoch, position) (:mod:`sgdconv.data.base`), so a job killed at any
  moment (kill -9) and started again resumes from its last checkpoint and ends bit-identical,
  on CPU, to an uninterrupted run;
* divergence: a NaN or infinite minibatch loss stops the run before the update; the run is
  marked ``diverged`` in its manifest and its statistics (the rest of the DAG completes);
* data parallelism: launched with ``torchrun``, each of the ``WORLD_SIZE`` processes takes an
  equal contiguous shard of every global batch and DistributedDataParallel averages the
  gradients, which reproduces a single process with the same global batch (exactly so for
  models without BatchNorm; with BatchNorm each process normalizes over its own shard, as in
  the ImageNet example, unless ``sync_bn``).
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import distributed as dist
from torch import nn
from tqdm import tqdm

from sgdconv.data.base import DataSource, batch_seed, build_data, epoch_permutation, mix_seed
from sgdconv.models.registry import build_model
from sgdconv.train.checkpoint import (
    checkpoint_path,
    clear_run,
    list_checkpoints,
    load_checkpoint,
    log_frame,
    read_log_parts,
    rng_state,
    save_checkpoint,
    set_rng_state,
    write_json,
    write_log_part,
    write_parquet,
)
from sgdconv.train.losses import build_loss
from sgdconv.train.schedules import lr_factor
from sgdconv.train.spec import RunSpec, checkpoint_steps
from sgdconv.train.spec import steps_per_epoch as _steps_per_epoch

logger = logging.getLogger(__name__)

COMPLETED = "completed"
DIVERGED = "diverged"


def steps_per_epoch(spec: RunSpec, source: DataSource) -> int:
    """Optimizer steps per epoch of ``source``; fails when the data do not have the
    ``num_train`` examples the spec declares (the workflow planned its jobs from it)."""
    if spec.num_train is not None and source.num_train != spec.num_train:
        key = spec.data.get("key", "the data of the run")
        raise ValueError(
            f"run {spec.run_id}: the data ({key}) have {source.num_train} training examples, "
            f"the config declares {spec.num_train}"
        )
    return _steps_per_epoch(spec, source.num_train)


def init_model(spec: RunSpec, device: torch.device) -> nn.Module:
    """The model of the spec, initialized from the run seed."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(mix_seed("init", spec.seed))
        model = build_model(
            spec.model["name"], **{k: v for k, v in spec.model.items() if k != "name"}
        )
    return model.to(device)


def make_optimizer(
    spec: RunSpec, model: nn.Module, spe: int
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """SGD (momentum, weight decay on every parameter, as the ImageNet example) and its
    per-step schedule."""
    optimizer = torch.optim.SGD(
        model.parameters(),
        lr=spec.lr,
        momentum=spec.momentum,
        weight_decay=spec.weight_decay,
        nesterov=spec.nesterov,
    )
    factor = lr_factor(spec.schedule, spec.lr, spe, spec.epochs * spe)
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


class _Distributed:
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

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    def close(self) -> None:
        if self.owns_group:
            dist.destroy_process_group()


def _configure_determinism(device: torch.device) -> None:
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True, warn_only=True)
    else:
        torch.backends.cudnn.benchmark = False


def train_run(
    spec: RunSpec,
    run_dir: str | os.PathLike,
    *,
    progress: bool = True,
    source: DataSource | None = None,
) -> dict[str, Any]:
    """Train (or resume) run ``spec`` in ``run_dir``; return its manifest.

    Writes ``checkpoints/``, ``log_parts/``, and at the end ``train_log.parquet`` and
    ``manifest.json`` (only the main process writes). If the folder holds checkpoints of the
    same spec, training resumes from the latest; checkpoints of another spec are removed.
    """
    run_dir = Path(run_dir)
    ctx = _Distributed(spec)
    _configure_determinism(ctx.device)
    started = time.perf_counter()
    try:
        source = source if source is not None else build_data(spec.data)
        spe = steps_per_epoch(spec, source)
        total = spec.epochs * spe
        ckpt_steps = set(checkpoint_steps(spec, spe))
        model = init_model(spec, ctx.device)
        if spec.sync_bn and ctx.world > 1:
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        optimizer, scheduler = make_optimizer(spec, model, spe)
        loss_fn = build_loss(spec.loss)

        rows, step = _resume(spec, run_dir, model, optimizer, scheduler, ctx)
        resumed_from = step
        if step == 0 and ctx.main:
            save = _saver(spec, run_dir, model, optimizer, scheduler, spe)
            save(0, [])
        ctx.barrier()
        net: nn.Module = model
        if ctx.world > 1:
            net = nn.parallel.DistributedDataParallel(
                model, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None
            )
        save = _saver(spec, run_dir, model, optimizer, scheduler, spe)
        pending: list[tuple] = []
        status, diverged_at = COMPLETED, None
        bar = tqdm(
            total=total,
            initial=step,
            desc=spec.run_id,
            file=sys.stderr,
            mininterval=5.0,
            disable=not (progress and ctx.main),
        )
        net.train()
        while step < total and status == COMPLETED:
            epoch, position = divmod(step, spe)
            order = epoch_permutation(source.num_train, spec.seed, epoch)
            plan = [
                (
                    order[j * spec.batch_size : (j + 1) * spec.batch_size],
                    batch_seed(spec.seed, epoch, j),
                )
                for j in range(position, spe)
            ]
            for x, y in source.train_batches(plan, ctx.rank, ctx.world):
                x = x.to(ctx.device, non_blocking=True)
                y = y.to(ctx.device, non_blocking=True)
                lr = optimizer.param_groups[0]["lr"]
                loss = loss_fn(net(x), y)
                value = float(ctx.mean(loss.detach()))
                pending.append((step + 1, epoch, lr, value))
                if not math.isfinite(value):
                    status, diverged_at = DIVERGED, step + 1
                    logger.warning(
                        "run %s diverged at step %d (loss %s)", spec.run_id, step + 1, value
                    )
                    break
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
                step += 1
                bar.update()
                if step in ckpt_steps:
                    if ctx.main:
                        save(step, pending)
                    rows.extend(pending)
                    pending = []
        bar.close()
        rows.extend(pending)
        if ctx.main:
            if pending:  # a diverged run: keep its log rows (no checkpoint of a NaN state)
                write_log_part(run_dir, pending[-1][0], pending)
            manifest = _manifest(
                spec, run_dir, spe, status, diverged_at, ctx, started, resumed_from
            )
            write_parquet(run_dir / "train_log.parquet", log_frame(rows))
            write_json(run_dir / "manifest.json", manifest)
        ctx.barrier()
        return _read_manifest(run_dir) if not ctx.main else manifest
    finally:
        ctx.close()


def _read_manifest(run_dir: Path) -> dict[str, Any]:
    import json

    return json.loads((run_dir / "manifest.json").read_text())


def _saver(spec, run_dir, model, optimizer, scheduler, spe):
    digest = spec.training_hash()

    def save(step: int, pending: list[tuple]) -> None:
        if step > 0:
            write_log_part(run_dir, step, pending)
        epoch, position = divmod(step, spe)
        save_checkpoint(
            checkpoint_path(run_dir, step),
            {
                "run_id": spec.run_id,
                "spec_hash": digest,
                "step": step,
                "epoch": epoch,
                "position": position,
                "steps_per_epoch": spe,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "rng": rng_state(),
            },
        )

    return save


def _resume(spec, run_dir, model, optimizer, scheduler, ctx) -> tuple[list[tuple], int]:
    """Load the latest checkpoint of this spec (if any); return (log rows so far, step)."""
    spec_file = run_dir / "spec.json"
    digest = spec.training_hash()
    if ctx.main:
        previous = _read_json(spec_file)
        if previous is not None and previous.get("spec_hash") != digest:
            logger.warning("run %s: spec changed, removing old checkpoints", spec.run_id)
            clear_run(run_dir)
            for name in ("train_log.parquet", "manifest.json"):
                (run_dir / name).unlink(missing_ok=True)
        write_json(spec_file, {"spec_hash": digest, "spec": spec.to_dict()})
    ctx.barrier()
    for step, path in reversed(list_checkpoints(run_dir)):
        try:
            state = load_checkpoint(path, map_location=ctx.device)
            if state["spec_hash"] != digest:
                continue
            rows = read_log_parts(run_dir, step) if ctx.main else []
        except Exception as error:  # unreadable file or incomplete log: an earlier one
            logger.warning("cannot resume from %s (%s)", path, error)
            continue
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        set_rng_state(state["rng"])
        if step > 0:
            logger.info("run %s: resuming from step %d", spec.run_id, step)
        return rows, step
    if ctx.main:
        clear_run(run_dir)
    return [], 0


def _read_json(path: Path) -> dict[str, Any] | None:
    import json

    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None


def _manifest(spec, run_dir, spe, status, diverged_at, ctx, started, resumed_from) -> dict:
    checkpoints = [
        {"step": s, "epoch": s / spe, "path": str(p.relative_to(run_dir))}
        for s, p in list_checkpoints(run_dir)
    ]
    return {
        "run_id": spec.run_id,
        "status": status,
        "diverged_at_step": diverged_at,
        "spec": spec.to_dict(),
        "spec_hash": spec.training_hash(),
        "steps_per_epoch": spe,
        "total_steps": spec.epochs * spe,
        "checkpoints": checkpoints,
        "world_size": ctx.world,
        "device": str(ctx.device),
        "resumed_from_step": resumed_from,
        "wall_time_s": time.perf_counter() - started,
    }
