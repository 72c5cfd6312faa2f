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
  on CPU, to an uninterrupted run; checkpoints are verified on resume, and a missing or corrupt
  one is rewritten by replaying from the good one before it (:mod:`sgdconv.train.resume`);
* divergence: a NaN or infinite minibatch loss stops the run before the update; the run is
  marked ``diverged`` in its manifest and its statistics (the rest of the DAG completes);
* data parallelism: launched with ``torchrun``, each of the ``WORLD_SIZE`` processes takes an
  equal contiguous shard of every global batch and DistributedDataParallel averages the
  gradients, which reproduces a single process with the same global batch (exactly so for
  models without BatchNorm; with BatchNorm each process normalizes over its own shard, as in
  the ImageNet example, unless ``sync_bn``).
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from sgdconv.data.base import DataSource, batch_seed, build_data, epoch_permutation, mix_seed
from sgdconv.models.registry import build_model
from sgdconv.train.checkpoint import (
    CorruptCheckpointError,
    checkpoint_path,
    clear_run,
    list_checkpoints,
    load_checkpoint,
    log_frame,
    read_log_parts,
    recorded_sha256,
    rng_state,
    save_checkpoint,
    set_rng_state,
    write_json,
    write_log_part,
    write_parquet,
)
from sgdconv.train.distributed import Distributed, configure_determinism
from sgdconv.train.losses import build_loss
from sgdconv.train.resume import ResumePlan, plan_resume
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


def train_run(
    spec: RunSpec,
    run_dir: str | os.PathLike,
    *,
    progress: bool = True,
    source: DataSource | None = None,
    repair: bool = False,
) -> dict[str, Any]:
    """Train (or resume) run ``spec`` in ``run_dir``; return its manifest.

    Writes ``checkpoints/``, ``log_parts/``, and at the end ``train_log.parquet`` and
    ``manifest.json`` (only the main process writes). If the folder holds checkpoints of the
    same spec, training resumes from the latest good one, after rewriting any missing or
    corrupt one before it (:mod:`sgdconv.train.resume`); checkpoints of another spec are
    removed. With ``repair``, only the missing or corrupt checkpoints of the finished run (those
    its manifest lists) are rewritten, and the manifest and train log are left as they are;
    the return value is then ``{"run_id", "rewritten", "restart"}``.
    """
    run_dir = Path(run_dir)
    ctx = Distributed(spec)
    configure_determinism(ctx.device)
    started = time.perf_counter()
    try:
        source = source if source is not None else build_data(spec.data)
        trainer = _Trainer(spec, run_dir, ctx, source, progress)
        plan = ctx.broadcast(_prepare(trainer, repair) if ctx.main else None)
        if plan.rewrite:
            _rewrite(trainer, plan)
        if repair:
            ctx.barrier()
            return {"run_id": spec.run_id, "rewritten": list(plan.rewrite), "restart": plan.restart}
        if plan.latest is None:
            trainer.start_fresh()
        else:
            trainer.restore(plan.latest)
            trainer.rows = read_log_parts(run_dir, plan.latest) if ctx.main else []
            if plan.latest > 0:
                logger.info("run %s: resuming from step %d", spec.run_id, plan.latest)
        ctx.barrier()
        resumed_from = trainer.step
        trainer.advance(trainer.total, set(trainer.planned), spec.run_id)
        return _finish(trainer, started, resumed_from, plan)
    finally:
        ctx.close()


class _Trainer:
    """A run being trained: its model, optimizer, schedule, data and position (``step``, the
    log rows so far), on this process."""

    def __init__(
        self, spec: RunSpec, run_dir: Path, ctx: Distributed, source: DataSource, progress: bool
    ) -> None:
        self.spec, self.run_dir, self.ctx, self.source = spec, run_dir, ctx, source
        self.progress = progress and ctx.main
        self.spe = steps_per_epoch(spec, source)
        self.total = spec.epochs * self.spe
        self.planned = checkpoint_steps(spec, self.spe)
        self.digest = spec.training_hash()
        self.model = init_model(spec, ctx.device)
        if spec.sync_bn and ctx.world > 1:
            self.model = nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
        self.optimizer, self.scheduler = make_optimizer(spec, self.model, self.spe)
        self.loss_fn = build_loss(spec.loss)
        self.net: nn.Module = self.model
        if ctx.world > 1:
            device_ids = [ctx.device.index] if ctx.device.type == "cuda" else None
            self.net = nn.parallel.DistributedDataParallel(self.model, device_ids=device_ids)
        self.step = 0
        self.rows: list[tuple] = []  # log rows up to the last checkpoint passed
        self.pending: list[tuple] = []  # log rows since then
        self.status, self.diverged_at = COMPLETED, None

    def start_fresh(self) -> None:
        """Step 0: seed the global RNGs from the run seed (so that neither the run nor its
        checkpoints, byte for byte, depend on what the process did before) and save it."""
        random.seed(mix_seed("python-rng", self.spec.seed))
        torch.manual_seed(mix_seed("torch-rng", self.spec.seed))
        self.save(0, [])

    def restore(self, step: int) -> None:
        """Load the state of checkpoint ``step`` (every process reads the same file)."""
        path = checkpoint_path(self.run_dir, step)
        state = load_checkpoint(path, map_location=self.ctx.device)
        if state["spec_hash"] != self.digest:
            raise CorruptCheckpointError(path, f"written by another spec ({state['spec_hash']})")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        set_rng_state(state["rng"])
        self.step, self.rows, self.pending = step, [], []

    def save(self, step: int, rows: list[tuple]) -> None:
        """Write the log part (``rows``: the steps since the previous checkpoint) and the
        checkpoint of ``step`` (main process only)."""
        if not self.ctx.main:
            return
        if step > 0:
            write_log_part(self.run_dir, step, rows)
        epoch, position = divmod(step, self.spe)
        path = checkpoint_path(self.run_dir, step)
        save_checkpoint(
            path,
            {
                "run_id": self.spec.run_id,
                "spec_hash": self.digest,
                "step": step,
                "epoch": epoch,
                "position": position,
                "steps_per_epoch": self.spe,
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "rng": rng_state(),
            },
        )

    def advance(self, until: int, save_at: set[int], desc: str) -> None:
        """Train from ``step`` to step ``until`` (or a divergence), saving the planned
        checkpoints in ``save_at``."""
        spec, spe, planned = self.spec, self.spe, set(self.planned)
        bar = tqdm(
            total=until,
            initial=self.step,
            desc=desc,
            file=sys.stderr,
            mininterval=5.0,
            disable=not self.progress,
        )
        self.net.train()
        while self.step < until and self.status == COMPLETED:
            epoch, position = divmod(self.step, spe)
            order = epoch_permutation(self.source.num_train, spec.seed, epoch)
            b = spec.batch_size
            plan = [
                (order[j * b : (j + 1) * b], batch_seed(spec.seed, epoch, j))
                for j in range(position, min(spe, position + until - self.step))
            ]
            for x, y in self.source.train_batches(plan, self.ctx.rank, self.ctx.world):
                if not self._update(x, y, epoch):
                    break
                bar.update()
                if self.step in planned:
                    if self.step in save_at:
                        self.save(self.step, self.pending)
                    self.rows.extend(self.pending)
                    self.pending = []
        bar.close()

    def _update(self, x: torch.Tensor, y: torch.Tensor, epoch: int) -> bool:
        """One SGD step on the minibatch (x, y); False (and no update) if its loss is not
        finite."""
        x = x.to(self.ctx.device, non_blocking=True)
        y = y.to(self.ctx.device, non_blocking=True)
        lr = self.optimizer.param_groups[0]["lr"]
        loss = self.loss_fn(self.net(x), y)
        value = float(self.ctx.mean(loss.detach()))
        self.pending.append((self.step + 1, epoch, lr, value))
        if not math.isfinite(value):
            self.status, self.diverged_at = DIVERGED, self.step + 1
            logger.warning(
                "run %s diverged at step %d (loss %s)", self.spec.run_id, self.step + 1, value
            )
            return False
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.scheduler.step()
        self.step += 1
        return True


def _prepare(trainer: _Trainer, repair: bool) -> ResumePlan:
    """Check the folder's spec, then plan the resume (main process only)."""
    spec, run_dir = trainer.spec, trainer.run_dir
    spec_file = run_dir / "spec.json"
    previous = _read_json(spec_file)
    same = previous is not None and previous.get("spec_hash") == trainer.digest
    if repair:
        manifest = _read_json(run_dir / "manifest.json")
        if manifest is None or not same:
            raise FileNotFoundError(
                f"{run_dir}: no finished run of this spec to repair (manifest.json or spec.json "
                "missing or of another spec); re-run its `train` job instead"
            )
        return plan_resume(run_dir, trainer.planned, [c["step"] for c in manifest["checkpoints"]])
    if not same:
        if list_checkpoints(run_dir) or previous is not None:
            logger.warning("run %s: spec changed, removing old checkpoints", spec.run_id)
        clear_run(run_dir)
        for name in ("train_log.parquet", "manifest.json"):
            (run_dir / name).unlink(missing_ok=True)
        write_json(spec_file, {"spec_hash": trainer.digest, "spec": spec.to_dict()})
    plan = plan_resume(run_dir, trainer.planned)
    if plan.latest is None:  # nothing to resume from: start afresh, without stale files
        clear_run(run_dir)
    return plan


def _rewrite(trainer: _Trainer, plan: ResumePlan) -> None:
    """Rewrite the checkpoints ``plan.rewrite`` by replaying from ``plan.restart``."""
    if plan.restart is not None:
        trainer.restore(plan.restart)
    else:  # replay from the initialization, which step 0 holds
        trainer.start_fresh()
    trainer.advance(plan.rewrite[-1], set(plan.rewrite), f"{trainer.spec.run_id} (rewriting)")
    if trainer.status != COMPLETED:
        raise RuntimeError(
            f"run {trainer.spec.run_id} diverged at step {trainer.diverged_at} while rewriting "
            "checkpoints the original run had passed (not reproducible on this hardware?)"
        )


def _finish(trainer: _Trainer, started: float, resumed_from: int, plan: ResumePlan) -> dict:
    """Write the train log and the manifest (main process); return the manifest."""
    ctx, run_dir = trainer.ctx, trainer.run_dir
    rows = trainer.rows + trainer.pending
    manifest: dict[str, Any] = {}
    if ctx.main:
        if trainer.pending:  # a diverged run: keep its log rows (no checkpoint of a NaN state)
            write_log_part(run_dir, trainer.pending[-1][0], trainer.pending)
        manifest = _manifest(trainer, started, resumed_from, list(plan.rewrite))
        write_parquet(run_dir / "train_log.parquet", log_frame(rows))
        write_json(run_dir / "manifest.json", manifest)
    ctx.barrier()
    return manifest if ctx.main else _read_json(run_dir / "manifest.json") or {}


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None


def _manifest(trainer: _Trainer, started: float, resumed_from: int, rewritten: list[int]) -> dict:
    spec, run_dir, spe, ctx = trainer.spec, trainer.run_dir, trainer.spe, trainer.ctx
    checkpoints = [
        {
            "step": s,
            "epoch": s / spe,
            "path": str(p.relative_to(run_dir)),
            "sha256": recorded_sha256(p),
        }
        for s, p in list_checkpoints(run_dir)
    ]
    return {
        "run_id": spec.run_id,
        "status": trainer.status,
        "diverged_at_step": trainer.diverged_at,
        "spec": spec.to_dict(),
        "spec_hash": trainer.digest,
        "steps_per_epoch": spe,
        "total_steps": trainer.total,
        "checkpoints": checkpoints,
        "world_size": ctx.world,
        "device": str(ctx.device),
        "torch_threads": torch.get_num_threads(),
        "resumed_from_step": resumed_from,
        "rewritten_checkpoints": rewritten,
        "wall_time_s": time.perf_counter() - started,
    }
