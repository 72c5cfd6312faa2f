"""Statistics of a saved checkpoint, for the ``estimate_stats`` / ``aggregate_stats`` /
``estimator_vs_sample_size`` rules (Zhang et al. eq. (1)-(3), Thm. 4.3, eq. (10), App. A.2).

A statistics job rebuilds the run's model and data from its spec, loads checkpoint k and
evaluates, on a fixed sample S_m of training draws (the same sample at every checkpoint of the
run), the quantities of eq. (1) with :func:`sgdconv.stats.estimate_gradient_stats` and the
sharpness with :func:`sgdconv.stats.top_hessian_eigenvalue`; the validation loss and accuracy;
and, for Thm. 4.3, the one-step loss change L_S(θ) − E_F[L_S(F(θ))] under independent SGD steps.

Model mode. BatchNorm is in *train* mode for every training-loss statistic, with micro-batches of
the training batch size by default: a micro-batch gradient is then exactly a stochastic gradient
g(θ) of the update F(θ) = θ − η g(θ) the paper analyses, ``grad_norm`` is |∇L| of the objective
SGD descends and ``noise_norm``² / b is the variance of g (see :mod:`sgdconv.stats.gradient`).
Validation uses eval mode (running statistics), as the ImageNet example's ``validate``.

Population. The sample is a simple random sample of the training distribution: of the N
training examples, or (augmented data, where every draw is a fresh augmentation) of an infinite
population; ``grad_norm`` is then the unbiased estimate of the population's |∇L|, and
``grad_norm_plugin`` the paper's |ḡ|. A sample of the whole training set gives |∇L_S| exactly.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sgdconv.data.base import (
    DataSource,
    MicroBatches,
    batch_seed,
    build_data,
    epoch_permutation,
    mix_seed,
)
from sgdconv.train.checkpoint import CorruptCheckpointError, load_checkpoint, repair_hint
from sgdconv.train.engine import init_model, steps_per_epoch
from sgdconv.train.losses import LossFn, build_loss
from sgdconv.train.schedules import lr_at
from sgdconv.train.spec import RunSpec

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StatsSettings:
    """How the statistics of a run are taken (one entry per run in the run registry).

    ``sample_size`` m draws in micro-batches of ``microbatch`` (default: the run's batch size);
    ``bn_mode`` the BatchNorm mode of the training-loss statistics; sharpness on the first
    ``sharpness_sample_size`` draws of the sample (default all) by ``sharpness_method`` to
    relative residual ``sharpness_tol`` within ``sharpness_max_hvp`` Hessian-vector products;
    ``one_step_draws`` independent SGD steps per checkpoint for Thm. 4.3 (0: skipped);
    ``curvature_directions`` J micro-batch gradients along which the curvature of eq. (10) is
    taken (:mod:`sgdconv.stats.directional`; 0: skipped), with the sharpness sample's Hessian;
    ``eq3`` the last-iterate loss of eq. (3) on the epoch's minibatches (a forward pass over
    one epoch of data; NaN when off);
    ``sweep_sizes`` the sample sizes of the estimator-vs-sample-size sweep (Fig. 7), taken at
    the checkpoint nearest ``sweep_epoch`` (None: the last one).
    """

    sample_size: int = 1024
    microbatch: int | None = None
    bn_mode: str = "train"
    sharpness: bool = True
    sharpness_sample_size: int | None = None
    sharpness_method: str = "lanczos"
    sharpness_tol: float = 1e-3
    sharpness_max_hvp: int = 100
    validation: bool = True
    val_batch: int = 500
    one_step_draws: int = 0
    curvature_directions: int = 0
    eq3: bool = True
    seed: int = 0
    sweep_sizes: Sequence[int] = ()
    sweep_epoch: float | None = None

    def __post_init__(self) -> None:
        if self.bn_mode not in ("train", "eval"):
            raise ValueError(f"bn_mode must be 'train' or 'eval', got {self.bn_mode!r}")
        if self.sample_size < 2 or self.one_step_draws < 0:
            raise ValueError("sample_size must be >= 2 and one_step_draws >= 0")
        if self.curvature_directions < 0 or self.curvature_directions == 1:
            raise ValueError("curvature_directions must be 0 or >= 2")

    @classmethod
    def from_dict(cls, settings: Mapping[str, Any]) -> StatsSettings:
        known = {f.name for f in fields(cls)}
        unknown = set(settings) - known
        if unknown:
            raise ValueError(f"unknown stats settings {sorted(unknown)}")
        values = dict(settings)
        if "sweep_sizes" in values:
            values["sweep_sizes"] = tuple(int(s) for s in values["sweep_sizes"])
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["sweep_sizes"] = list(d["sweep_sizes"])
        return d


def checkpoint_exists(manifest: Mapping[str, Any], path: str | Path) -> bool:
    """Whether a planned checkpoint was written: False only when the run diverged before it
    (its statistics are then empty); a completed run missing one is an error whose message
    says how to rebuild it."""
    if Path(path).is_file():
        return True
    if manifest.get("status") == "diverged":
        return False
    raise FileNotFoundError(
        f"{path}: checkpoint missing although run {manifest.get('run_id')} completed. "
        f"{repair_hint(path)}"
    )


def open_checkpoint(
    manifest_path: str | Path, checkpoint: str | Path, settings: Mapping[str, Any]
) -> tuple[dict[str, Any], CheckpointContext | None]:
    """A finished run's manifest and a :class:`CheckpointContext` for one of its planned
    checkpoints, or None where the run diverged before it (see :func:`checkpoint_exists`).

    A checkpoint that does not match the sha256 recorded when it was written, or that cannot
    be read, raises :class:`~sgdconv.train.checkpoint.CorruptCheckpointError` naming the file,
    with the command that rebuilds it.
    """
    with open(manifest_path) as fh:
        manifest = json.load(fh)
    if not checkpoint_exists(manifest, checkpoint):
        return manifest, None
    spec = RunSpec.from_dict(manifest["spec"])
    try:
        ctx = CheckpointContext(
            spec, checkpoint, StatsSettings.from_dict(settings), device=spec.device
        )
    except CorruptCheckpointError as error:
        raise error.with_hint(repair_hint(checkpoint)) from None
    return manifest, ctx


def population_size(source: DataSource, m: int) -> float | None:
    """N for the unbiased estimators: inf for augmented data, N for a strict subsample of the
    training set, None when the sample is the whole training set (then |∇L_S| is exact)."""
    if source.augmented:
        return math.inf
    return None if m >= source.num_train else float(source.num_train)


class CheckpointContext:
    """A run's spec, data, loss and one loaded checkpoint, ready for statistics."""

    def __init__(
        self,
        spec: RunSpec,
        checkpoint: str | Path,
        settings: StatsSettings,
        *,
        source: DataSource | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        self.spec, self.settings = spec, settings
        self.device = torch.device(device)
        self.source = source if source is not None else build_data(spec.data)
        self.spe = steps_per_epoch(spec, self.source)
        self.total_steps = spec.epochs * self.spe
        self.state = load_checkpoint(checkpoint, map_location=self.device)
        self.step = int(self.state["step"])
        self.model = init_model(spec, self.device)
        self.model.load_state_dict(self.state["model"])
        self.loss_fn: LossFn = build_loss(spec.loss)
        self.microbatch = int(settings.microbatch or spec.batch_size // spec.nproc)

    @property
    def epoch(self) -> float:
        return self.step / self.spe

    @property
    def lr(self) -> float:
        """The learning rate of the update from this checkpoint (of the last step at the end)."""
        k = min(self.step, self.total_steps - 1)
        return lr_at(self.spec.schedule, self.spec.lr, self.spe, self.total_steps, k)

    def sample(self, size: int | None = None) -> MicroBatches:
        """The run's fixed sample (same draws at every checkpoint: seeded by the stats seed)."""
        size = self.settings.sample_size if size is None else size
        batches = self.source.sample(size, self.microbatch, mix_seed("stats", self.settings.seed))
        batches.device = self.device
        return batches

    def epoch_batches(self) -> MicroBatches:
        """The minibatches of the last epoch before this checkpoint (steps k − spe + 1 .. k;
        the first epoch's at step 0), exactly as training drew them (same examples, same
        augmentations, split into the same per-process shards): the data of eq. (3)."""
        spec, spe = self.spec, self.spe
        first = max(self.step - spe, 0)
        plan = []
        for k in range(first, first + spe):
            epoch, position = divmod(k, spe)
            order = epoch_permutation(self.source.num_train, spec.seed, epoch)
            b = spec.batch_size
            plan.append(
                (order[position * b : (position + 1) * b], batch_seed(spec.seed, epoch, position))
            )
        shards = [
            shard
            for planned in plan
            for rank in range(spec.nproc)
            for shard in self.source.train_batches([planned], rank, spec.nproc)
        ]
        size = spec.batch_size // spec.nproc
        batches = MicroBatches(lambda i: shards[i], len(shards), size)
        batches.device = self.device
        return batches

    def set_mode(self, model: nn.Module) -> nn.Module:
        return model.train() if self.settings.bn_mode == "train" else model.eval()
