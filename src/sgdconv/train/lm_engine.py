"""The training loop of a segment-recurrent language model (Transformer-XL, Zhang et al. 2022,
Sec. 3.2), resumable at any step, in the style of the official ``pytorch/train.py`` of Dai et
al. (2019).

Step k (0-based) of a run is segment ``t = k mod n_segments`` of every training stream
(:class:`~sgdconv.data.wikitext.LMStreams`), in epoch ``k div n_segments``; the memory of the
previous segment is carried over and reset at the start of each epoch (the official ``train()``
starts an epoch with ``mems = tuple()``). The update: mean NLL over the batch's tokens, backward,
``clip_grad_norm_(clip)``, Adam, then the per-step schedule (:mod:`sgdconv.train.schedules`).

Around it, as :mod:`sgdconv.train.engine` does for the vision runs:

* a train-log row per step, ``step, epoch, lr, minibatch_loss`` (DESIGN.md): the loss of eq. (2)
  of Zhang et al. at the iterate before the step (mean over processes), ``epoch`` 0-based;
* checkpoints at the planned steps (:func:`~sgdconv.train.lm_spec.lm_checkpoint_steps`):
  ``checkpoints/step_<k>.pt`` holds the model, the schedule, every process's RNG state and the
  *memory* (gathered from all processes), and ``optimizer/step_<k>.pt`` the Adam state (only the
  last ``keep_optimizer`` are kept). The data order is fixed, so a job killed at any moment
  (kill -9) resumes from its latest complete checkpoint and ends bit-identical, on CPU, to an
  uninterrupted run. Files are written atomically and verified by their sha256
  (:mod:`sgdconv.train.checkpoint`);
* divergence: a non-finite loss stops the run before the update, marked ``diverged``;
* data parallelism under ``torchrun``: each of W processes takes B/W contiguous streams of every
  batch, with its own memory; DistributedDataParallel averages the gradients, so the update is
  that of one process with all B streams (exactly so without dropout: the processes' dropout
  masks come from their own RNG streams).
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import re
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from sgdconv.data.base import build_data, mix_seed
from sgdconv.data.wikitext import LMStreams
from sgdconv.models.registry import build_model
from sgdconv.train.checkpoint import (
    CorruptCheckpointError,
    checkpoint_path,
    clear_run,
    list_checkpoints,
    load_checkpoint,
    log_frame,
    log_part_problem,
    read_log_parts,
    recorded_sha256,
    rng_state,
    save_checkpoint,
    set_rng_state,
    sidecar_path,
    write_json,
    write_log_part,
    write_parquet,
)
from sgdconv.train.lm_launch import Processes
from sgdconv.train.lm_spec import LMRunSpec, lm_checkpoint_steps
from sgdconv.train.schedules import lr_factor

logger = logging.getLogger(__name__)

COMPLETED, DIVERGED = "completed", "diverged"
_OPTIM = re.compile(r"^step_(\d+)\.pt$")


def build_streams(spec: LMRunSpec) -> LMStreams:
    """The training streams of the spec's data (``wikitext``: WT103 or the offline corpus)."""
    return build_data(
        {
            **spec.data,
            "batch_size": spec.batch_size,
            "tgt_len": spec.tgt_len,
            "eval_batch_size": spec.eval_batch_size,
            "eval_tgt_len": spec.eval_tgt_len,
        }
    )


def init_lm(spec: LMRunSpec, vocab_size: int, device: torch.device) -> nn.Module:
    """The model of the spec, initialized from the run seed (the official ``init normal``)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(mix_seed("init", spec.seed))
        kwargs = spec.model_kwargs(vocab_size)
        model = build_model(kwargs.pop("name"), **kwargs)
    return model.to(device)


def make_lm_optimizer(
    spec: LMRunSpec, model: nn.Module, steps_per_epoch: int
) -> tuple[torch.optim.Adam, torch.optim.lr_scheduler.LambdaLR]:
    """Adam with PyTorch's defaults (the official ``--optim adam``) and the per-step schedule
    (cosine: the official ``CosineAnnealingLR(max_step, eta_min)``)."""
    optimizer = torch.optim.Adam(model.parameters(), lr=spec.lr)
    factor = lr_factor(spec.schedule, spec.lr, steps_per_epoch, spec.max_steps)
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def optimizer_path(run_dir: str | os.PathLike, step: int) -> Path:
    return Path(run_dir) / "optimizer" / f"step_{int(step)}.pt"


def train_lm(
    spec: LMRunSpec,
    run_dir: str | os.PathLike,
    *,
    progress: bool = True,
    streams: LMStreams | None = None,
) -> dict[str, Any]:
    """Train (or resume) run ``spec`` in ``run_dir``; return its manifest.

    Writes ``checkpoints/``, ``optimizer/``, ``log_parts/``, and at the end
    ``train_log.parquet`` and ``manifest.json`` (the main process). Resumes from the latest
    checkpoint whose model, optimizer and log files are intact; files of another spec are
    removed first.
    """
    run_dir = Path(run_dir)
    procs = Processes(spec)
    started = time.perf_counter()
    try:
        streams = streams if streams is not None else build_streams(spec)
        trainer = _LMTrainer(spec, run_dir, procs, streams, progress)
        latest = procs.broadcast(_prepare(trainer) if procs.main else None)
        if latest is None:
            trainer.start_fresh()
        else:
            trainer.restore(latest)
            trainer.rows = read_log_parts(run_dir, latest) if procs.main else []
            if latest > 0:
                logger.info("run %s: resuming from step %d", spec.run_id, latest)
        procs.barrier()
        resumed_from = trainer.step
        trainer.advance(spec.max_steps)
        return _finish(trainer, started, resumed_from)
    finally:
        procs.close()


class _LMTrainer:
    """A run being trained on this process: model, optimizer, schedule, memory, position."""

    def __init__(
        self,
        spec: LMRunSpec,
        run_dir: Path,
        procs: Processes,
        streams: LMStreams,
        progress: bool,
    ) -> None:
        self.spec, self.run_dir, self.procs, self.streams = spec, run_dir, procs, streams
        self.progress = progress and procs.main
        self.spe = streams.n_segments
        self.planned = lm_checkpoint_steps(spec)
        self.digest = spec.training_hash()
        self.model = init_lm(spec, streams.n_token, procs.device)
        self.optimizer, self.scheduler = make_lm_optimizer(spec, self.model, self.spe)
        self.net: nn.Module = self.model
        if procs.world > 1:
            ids = [procs.device.index] if procs.device.type == "cuda" else None
            self.net = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        self.step, self.mems = 0, None
        self.rows: list[tuple] = []  # log rows up to the last checkpoint passed
        self.pending: list[tuple] = []  # log rows since then
        self.status, self.diverged_at = COMPLETED, None

    def start_fresh(self) -> None:
        """Step 0: seed the RNGs from the run seed (and the rank) and save the initialization."""
        random.seed(mix_seed("python-rng", self.spec.seed, self.procs.rank))
        torch.manual_seed(mix_seed("torch-rng", self.spec.seed, self.procs.rank))
        self.save(0, [])

    def restore(self, step: int) -> None:
        """Load checkpoint ``step`` (every process reads the same files)."""
        state = load_checkpoint(checkpoint_path(self.run_dir, step), self.procs.device)
        optim = load_checkpoint(optimizer_path(self.run_dir, step), self.procs.device)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(optim["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        rngs = state["rng"]
        if len(rngs) != self.procs.world:
            logger.warning(
                "checkpoint of %d process(es) resumed by %d", len(rngs), self.procs.world
            )
        set_rng_state(rngs[self.procs.rank % len(rngs)])
        mems = state["mems"]
        self.mems = None if mems is None else [m[:, self.procs.streams] for m in mems]
        self.step, self.rows, self.pending = step, [], []

    def save(self, step: int, rows: list[tuple]) -> None:
        """Write the log part of the steps since the previous checkpoint, then checkpoint
        ``step``; collective (memory and RNG states come from every process)."""
        parts = self.procs.gather(None if self.mems is None else [m.cpu() for m in self.mems])
        mems = (
            None if parts[0] is None else [torch.cat(ms, dim=1) for ms in zip(*parts, strict=True)]
        )
        rngs = self.procs.gather(rng_state())
        if not self.procs.main:
            return
        if step > 0:
            write_log_part(self.run_dir, step, rows)
        head = {"run_id": self.spec.run_id, "spec_hash": self.digest, "step": step}
        save_checkpoint(
            optimizer_path(self.run_dir, step), {**head, "optimizer": self.optimizer.state_dict()}
        )
        save_checkpoint(
            checkpoint_path(self.run_dir, step),
            {
                **head,
                "epoch": step // self.spe,
                "position": step % self.spe,
                "steps_per_epoch": self.spe,
                "model": self.model.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "mems": mems,
                "rng": rngs,
            },
        )
        if self.spec.keep_optimizer:
            for old in _optimizer_steps(self.run_dir)[: -self.spec.keep_optimizer]:
                _remove_optimizer_state(self.run_dir, old)

    def advance(self, until: int) -> None:
        """Train from ``step`` to step ``until`` (or a divergence), saving planned checkpoints."""
        planned = set(self.planned)
        bar = tqdm(
            total=until,
            initial=self.step,
            desc=self.spec.run_id,
            file=sys.stderr,
            mininterval=5.0,
            disable=not self.progress,
        )
        self.net.train()
        while self.step < until and self.status == COMPLETED:
            epoch, t = divmod(self.step, self.spe)
            if t == 0:
                self.mems = None  # a new epoch starts from empty memory (official train())
            x, y = self.streams.batch(t)
            if not self._update(x[:, self.procs.streams], y[:, self.procs.streams], epoch):
                break
            bar.update()
            if self.step in planned:
                self.save(self.step, self.pending)
                self.rows.extend(self.pending)
                self.pending = []
        bar.close()

    def _update(self, x: torch.Tensor, y: torch.Tensor, epoch: int) -> bool:
        """One step on segment (x, y); False (and no update) if its loss is not finite."""
        device = self.procs.device
        lr = self.optimizer.param_groups[0]["lr"]
        nll, mems = self.net(x.to(device), y.to(device), self.mems)
        loss = nll.mean()
        value = float(self.procs.mean(loss.detach()))
        self.pending.append((self.step + 1, epoch, lr, value))
        if not math.isfinite(value):
            self.status, self.diverged_at = DIVERGED, self.step + 1
            logger.warning("run %s diverged at step %d", self.spec.run_id, self.step + 1)
            return False
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.model.parameters(), self.spec.clip)
        self.optimizer.step()
        self.scheduler.step()
        self.mems, self.step = mems, self.step + 1
        return True


def _optimizer_steps(run_dir: Path) -> list[int]:
    folder = run_dir / "optimizer"
    names = os.listdir(folder) if folder.is_dir() else []
    return sorted(int(m[1]) for m in map(_OPTIM.match, names) if m)


def _remove_optimizer_state(run_dir: Path, step: int) -> None:
    path = optimizer_path(run_dir, step)
    path.unlink(missing_ok=True)
    sidecar_path(path).unlink(missing_ok=True)


def _resumable(run_dir: Path, step: int, previous: int, digest: str) -> str | None:
    """Why checkpoint ``step`` cannot be resumed from (None: it can)."""
    try:
        for path in (checkpoint_path(run_dir, step), optimizer_path(run_dir, step)):
            if load_checkpoint(path)["spec_hash"] != digest:
                return f"{path} was written by another spec"
    except (FileNotFoundError, CorruptCheckpointError, KeyError) as error:
        return str(error)
    return log_part_problem(run_dir, step, previous) if step > 0 else None


def _prepare(trainer: _LMTrainer) -> int | None:
    """Clear the files of another spec; return the step to resume from (None: fresh)."""
    run_dir, digest = trainer.run_dir, trainer.digest
    spec_file = run_dir / "spec.json"
    try:
        same = json.loads(spec_file.read_text()).get("spec_hash") == digest
    except (FileNotFoundError, ValueError):
        same = False
    if not same:
        _clear(run_dir)
        for name in ("train_log.parquet", "manifest.json"):
            (run_dir / name).unlink(missing_ok=True)
        write_json(spec_file, {"spec_hash": digest, "spec": trainer.spec.to_dict()})
        return None
    planned = trainer.planned
    for i in reversed(range(len(planned))):
        step = planned[i]
        if step not in _optimizer_steps(run_dir):
            continue
        problem = _resumable(run_dir, step, planned[i - 1] if i else 0, digest)
        if problem is None:
            return step
        logger.warning("run %s: cannot resume from step %d: %s", trainer.spec.run_id, step, problem)
    _clear(run_dir)  # nothing to resume from: start afresh, without stale files
    return None


def _clear(run_dir: Path) -> None:
    """Remove a run's checkpoints, optimizer states and log parts."""
    clear_run(run_dir)
    for old in _optimizer_steps(run_dir):
        _remove_optimizer_state(run_dir, old)


def _finish(trainer: _LMTrainer, started: float, resumed_from: int) -> dict[str, Any]:
    """Write the train log and the manifest (main process); return the manifest."""
    procs, run_dir, spec = trainer.procs, trainer.run_dir, trainer.spec
    manifest: dict[str, Any] = {}
    if procs.main:
        if trainer.pending:  # a diverged run keeps its log rows (no checkpoint of a NaN state)
            write_log_part(run_dir, trainer.pending[-1][0], trainer.pending)
        checkpoints = [
            {
                "step": s,
                "epoch": s / trainer.spe,
                "path": str(p.relative_to(run_dir)),
                "sha256": recorded_sha256(p),
            }
            for s, p in list_checkpoints(run_dir)
        ]
        manifest = {
            "run_id": spec.run_id,
            "status": trainer.status,
            "diverged_at_step": trainer.diverged_at,
            "spec": spec.to_dict(),
            "spec_hash": trainer.digest,
            "steps_per_epoch": trainer.spe,
            "total_steps": spec.max_steps,
            "checkpoints": checkpoints,
            "data": trainer.streams.describe(),
            "world_size": procs.world,
            "device": str(procs.device),
            "torch_threads": torch.get_num_threads(),
            "resumed_from_step": resumed_from,
            "wall_time_s": time.perf_counter() - started,
        }
        write_parquet(run_dir / "train_log.parquet", log_frame(trainer.rows + trainer.pending))
        write_json(run_dir / "manifest.json", manifest)
    procs.barrier()
    return manifest if procs.main else json.loads((run_dir / "manifest.json").read_text())
