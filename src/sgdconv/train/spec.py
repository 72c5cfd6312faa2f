"""The run spec: everything that defines one training run, chosen by name.

A spec is plain data (it travels through snakemake params and JSON files): the model and the
data are ``{"name": ..., **kwargs}`` entries of :mod:`sgdconv.models.registry` and
:mod:`sgdconv.data.base`, the loss is ``"cross_entropy"`` or ``"mse"``, and the optimizer is SGD
with momentum and weight decay (Zhang et al. Section 2 and Appendix A; An & Lu's minibatch SGD
with momentum 0). Its hash identifies the checkpoints a run may resume from.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

SCHEDULES = ("constant", "step", "cosine")
LOSSES = ("cross_entropy", "mse")


@dataclass(frozen=True)
class RunSpec:
    """One training run.

    ``batch_size`` is the *global* batch (split over ``nproc`` processes); ``epochs`` full
    passes of ``num_train // batch_size`` steps each (the last incomplete batch is dropped, so
    every step sees the same number of examples). ``schedule``: ``{"name": "constant"}``,
    ``{"name": "step", "milestones": [epochs...], "gamma": 0.1}`` (lr multiplied by ``gamma`` at
    each milestone epoch) or ``{"name": "cosine", "eta_min": 0.0}`` (per step, to ``eta_min`` at
    the end). Checkpoints every ``checkpoint_every`` epochs (rounded to whole steps, at least
    one), plus step 0 and the last step. ``num_train``: the number of training examples the
    config declares; with it the checkpoint steps are known before training
    (:func:`checkpoint_steps`), so the workflow plans one statistics job per checkpoint, and the
    engine refuses data of another size.
    """

    run_id: str
    model: Mapping[str, Any]
    data: Mapping[str, Any]
    loss: str = "cross_entropy"
    batch_size: int = 128
    epochs: int = 1
    lr: float = 0.1
    momentum: float = 0.0
    weight_decay: float = 0.0
    nesterov: bool = False
    schedule: Mapping[str, Any] = field(default_factory=lambda: {"name": "constant"})
    checkpoint_every: float = 1.0
    seed: int = 0
    device: str = "cpu"
    nproc: int = 1
    sync_bn: bool = False
    num_train: int | None = None

    def __post_init__(self) -> None:
        problems = []
        if self.loss not in LOSSES:
            problems.append(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if self.schedule.get("name") not in SCHEDULES:
            problems.append(f"schedule name must be one of {SCHEDULES}, got {self.schedule}")
        if self.batch_size < 1 or self.epochs < 1 or self.nproc < 1:
            problems.append("batch_size, epochs and nproc must be >= 1")
        if self.batch_size % self.nproc:
            problems.append(f"batch_size {self.batch_size} not divisible by nproc {self.nproc}")
        if self.lr <= 0 or self.checkpoint_every <= 0:
            problems.append("lr and checkpoint_every must be > 0")
        if not 0 <= self.momentum < 1 or self.weight_decay < 0:
            problems.append("need 0 <= momentum < 1 and weight_decay >= 0")
        if "name" not in self.model or "name" not in self.data:
            problems.append("model and data need a 'name'")
        if self.num_train is not None and self.num_train < self.batch_size:
            problems.append(f"num_train {self.num_train} is smaller than the batch")
        if problems:
            raise ValueError(f"run {self.run_id!r}: " + "; ".join(problems))

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any]) -> RunSpec:
        known = {f.name for f in fields(cls)}
        unknown = set(spec) - known
        if unknown:
            raise ValueError(f"unknown run spec keys {sorted(unknown)}")
        return cls(**{k: _plain(v) for k, v in spec.items()})

    def to_dict(self) -> dict[str, Any]:
        return _plain(asdict(self))

    def training_hash(self) -> str:
        """Hash of everything that changes the trajectory (not the device count: a resumed or
        re-launched run may use other hardware)."""
        d = self.to_dict()
        for key in ("nproc",):
            d.pop(key)
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def _plain(value: Any) -> Any:
    """Mappings/sequences (e.g. snakemake's Namedlist, tuples) as plain dicts/lists."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def steps_per_epoch(spec: RunSpec, num_train: int) -> int:
    """Optimizer steps per epoch over ``num_train`` examples (the last incomplete global batch
    is dropped, so every step sees the same number of examples)."""
    spe = int(num_train) // spec.batch_size
    if spe < 1:
        raise ValueError(
            f"run {spec.run_id}: batch_size {spec.batch_size} exceeds the "
            f"{num_train} training examples"
        )
    return spe


def checkpoint_steps(spec: RunSpec, spe: int) -> list[int]:
    """Steps with a checkpoint: 0, every ``checkpoint_every`` epochs, and the last step."""
    total = spec.epochs * spe
    every = max(1, round(spec.checkpoint_every * spe))
    return sorted({0, total, *range(every, total, every)})


def planned_checkpoint_steps(spec: RunSpec) -> list[int]:
    """The checkpoint steps of a run whose spec declares ``num_train``, known before it trains
    (a diverged run writes only a prefix of them)."""
    if spec.num_train is None:
        raise ValueError(f"run {spec.run_id}: the spec does not declare num_train")
    return checkpoint_steps(spec, steps_per_epoch(spec, spec.num_train))


def nearest_checkpoint(steps: list[int], spe: int, epoch: float | None) -> int:
    """The checkpoint step nearest ``epoch`` (the later one on a tie; None: the last)."""
    if epoch is None:
        return max(steps)
    target = float(epoch) * spe
    return min(steps, key=lambda k: (abs(k - target), -k))
