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

import copy
import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
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
from sgdconv.train.checkpoint import load_checkpoint
from sgdconv.train.engine import init_model, make_optimizer, steps_per_epoch
from sgdconv.train.losses import LossFn, accuracy, build_loss
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
    eq3: bool = True
    seed: int = 0
    sweep_sizes: Sequence[int] = ()
    sweep_epoch: float | None = None

    def __post_init__(self) -> None:
        if self.bn_mode not in ("train", "eval"):
            raise ValueError(f"bn_mode must be 'train' or 'eval', got {self.bn_mode!r}")
        if self.sample_size < 2 or self.one_step_draws < 0:
            raise ValueError("sample_size must be >= 2 and one_step_draws >= 0")

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
    (its statistics are then empty); a completed run missing one is an error."""
    if Path(path).is_file():
        return True
    if manifest.get("status") == "diverged":
        return False
    raise FileNotFoundError(
        f"{path}: checkpoint missing although run {manifest.get('run_id')} completed "
        "(deleted by hand? re-run `train` for this run)"
    )


def open_checkpoint(
    manifest_path: str | Path, checkpoint: str | Path, settings: Mapping[str, Any]
) -> tuple[dict[str, Any], CheckpointContext | None]:
    """A finished run's manifest and a :class:`CheckpointContext` for one of its planned
    checkpoints, or None where the run diverged before it (see :func:`checkpoint_exists`)."""
    with open(manifest_path) as fh:
        manifest = json.load(fh)
    if not checkpoint_exists(manifest, checkpoint):
        return manifest, None
    spec = RunSpec.from_dict(manifest["spec"])
    ctx = CheckpointContext(spec, checkpoint, StatsSettings.from_dict(settings), device=spec.device)
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


def sharpness(ctx: CheckpointContext, model: nn.Module, batches: MicroBatches) -> Any:
    """The top Hessian eigenvalue of the loss on ``batches`` with the run's settings (the same
    start vector at every checkpoint): a :class:`sgdconv.stats.HessianEig`."""
    from sgdconv.stats import top_hessian_eigenvalue

    s = ctx.settings
    return top_hessian_eigenvalue(
        model,
        ctx.loss_fn,
        batches,
        method=s.sharpness_method,
        tol=s.sharpness_tol,
        max_hvp=s.sharpness_max_hvp,
        seed=mix_seed("sharpness", s.seed),
    )


def checkpoint_statistics(ctx: CheckpointContext) -> dict[str, Any]:
    """One row of ``runs/<id>/stats/step_<k>.parquet`` (see the module docstring)."""
    from sgdconv.stats import estimate_gradient_stats

    s = ctx.settings
    sample = ctx.sample()
    model = ctx.set_mode(ctx.model)
    stats = estimate_gradient_stats(
        model, ctx.loss_fn, sample, population_size=population_size(ctx.source, sample.n_samples)
    )
    row: dict[str, Any] = {
        "step": ctx.step,
        "epoch": ctx.epoch,
        "lr": ctx.lr,
        "loss_last": last_iterate_loss(ctx) if s.eq3 else math.nan,
        "loss": stats.loss,
        "loss_se": stats.loss_se,
        "grad_norm": stats.grad_norm,
        "grad_norm_se": stats.grad_norm_se,
        "grad_norm_sq": stats.grad_norm_sq,
        "grad_norm_plugin": stats.grad_norm_plugin,
        "noise_norm": stats.noise_norm,
        "noise_norm_se": stats.noise_norm_se,
        "noise_norm_sq": stats.noise_norm_sq,
        "n_samples": stats.n_samples,
        "microbatch_size": stats.microbatch_size,
        "sharpness": math.nan,
        "sharpness_residual": math.nan,
        "sharpness_n_hvp": 0,
    }
    if s.sharpness:
        sharp_batches = sample
        if s.sharpness_sample_size:
            count = max(1, min(sample.count, s.sharpness_sample_size // sample.size))
            sharp_batches = sample.truncated(count)
        eig = sharpness(ctx, model, sharp_batches)
        row.update(sharpness=eig.value, sharpness_residual=eig.residual, sharpness_n_hvp=eig.n_hvp)
    row.update(validation_metrics(ctx) if s.validation else {})
    row.update(one_step_loss_change(ctx, sample))
    return row


def last_iterate_loss(ctx: CheckpointContext) -> float:
    """Eq. (3) of Zhang et al.: (1/N) Σ_i ℓ(θ_N, x_i), the loss at the checkpoint's iterate
    θ_N on the N minibatches x_i of the epoch that led to it (train mode, as eq. (2)'s
    minibatch losses were taken), by :func:`sgdconv.stats.loss_last`."""
    from sgdconv.stats import loss_last

    return loss_last(ctx.model.train(), ctx.loss_fn, ctx.epoch_batches())


def validation_metrics(ctx: CheckpointContext) -> dict[str, float]:
    """``val_loss`` and ``val_acc`` (top-1; NaN for regression) in eval mode."""
    val = ctx.source.validation(ctx.settings.val_batch)
    if val is None:
        return {"val_loss": math.nan, "val_acc": math.nan}
    val.device = ctx.device
    model = ctx.model.eval()
    total_loss, total_acc, n = 0.0, 0.0, 0
    with torch.no_grad():
        for x, y in val:
            out = model(x)
            total_loss += float(ctx.loss_fn(out, y)) * len(y)
            if ctx.spec.loss == "cross_entropy":
                total_acc += float(accuracy(out, y)) * len(y)
            n += len(y)
    acc = total_acc / n if ctx.spec.loss == "cross_entropy" else math.nan
    return {"val_loss": total_loss / n, "val_acc": acc}


def sample_loss(model: nn.Module, loss_fn: LossFn, batches: MicroBatches) -> float:
    """L_S: the mean of the equal-size micro-batch losses (eq. (3) at the current iterate),
    by :func:`sgdconv.stats.loss_last` (which leaves BatchNorm buffers untouched)."""
    from sgdconv.stats import loss_last

    return loss_last(model, loss_fn, batches)


def one_step_loss_change(ctx: CheckpointContext, sample: MicroBatches) -> dict[str, float]:
    """D(θ) = L_S(θ) − E_F[L_S(F(θ))] (Zhang et al. Thm. 4.3), estimated at this checkpoint
    with ``one_step_draws`` independent SGD updates F (fresh minibatches of the training
    distribution, the checkpoint's momentum buffers, learning rate and weight decay).

    Returns ``one_step_change`` and its standard error over the draws (NaN when skipped).
    """
    draws = ctx.settings.one_step_draws
    if draws == 0 or ctx.step >= ctx.total_steps:
        return {"one_step_change": math.nan, "one_step_change_se": math.nan}
    mode = ctx.set_mode
    base = sample_loss(mode(ctx.model), ctx.loss_fn, sample)
    changes = []
    for j in range(draws):
        model = copy.deepcopy(ctx.model)
        optimizer, scheduler = make_optimizer(ctx.spec, model, ctx.spe)
        # A deep copy: load_state_dict keeps the momentum tensors it is given, and the
        # step would otherwise update the checkpoint's buffers for the next draw.
        optimizer.load_state_dict(copy.deepcopy(ctx.state["optimizer"]))
        scheduler.load_state_dict(ctx.state["scheduler"])
        seed = mix_seed("one_step", ctx.settings.seed, ctx.step, j)
        generator = torch.Generator().manual_seed(seed)
        indices = torch.randperm(ctx.source.num_train, generator=generator)[: ctx.spec.batch_size]
        x, y = next(iter(ctx.source.train_batches([(indices, seed)])))
        model.train()
        loss = ctx.loss_fn(model(x.to(ctx.device)), y.to(ctx.device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        changes.append(base - sample_loss(mode(model), ctx.loss_fn, sample))
    values = np.asarray(changes)
    se = float(values.std(ddof=1) / np.sqrt(draws)) if draws > 1 else math.nan
    return {"one_step_change": float(values.mean()), "one_step_change_se": se}


# --- Fig. 7: estimates vs sample size -------------------------------------------------------

SWEEP_COLUMNS = ["n_samples", "quantity", "estimator", "value", "se"]


def sample_size_sweep(ctx: CheckpointContext, sizes: Sequence[int]) -> pd.DataFrame:
    """The statistics on nested samples of increasing size (Zhang et al. App. A.2, Fig. 7).

    For each size m (a prefix of the largest sample): ``estimator = "paper"`` is the plug-in
    estimate on S_m (|ḡ| of the sample, σ of the sample, the sample loss and sharpness), which
    Jensen's inequality biases upwards for the gradient norm; ``estimator = "unbiased"`` the
    estimates of the population's |∇L| and σ from :func:`sgdconv.stats.estimate_gradient_stats`.
    Long format: ``n_samples, quantity, estimator, value, se``.
    """
    from sgdconv.stats import estimate_gradient_stats

    s = ctx.settings
    sizes = sorted({int(m) for m in sizes})
    full = ctx.sample(max(sizes))
    model = ctx.set_mode(ctx.model)
    rows = []
    for m in sizes:
        count = m // full.size
        if count < 2:
            raise ValueError(f"sample size {m} gives fewer than 2 micro-batches of {full.size}")
        batches = full.truncated(count)
        n = batches.n_samples
        big_n = population_size(ctx.source, n)
        # One pass gives both: the plug-in |ḡ| and the unbiased population estimates; the
        # sample's own σ_S² = (m − 1)/m ŝ², where ŝ² = noise_norm_sq · N/(N − 1).
        st = estimate_gradient_stats(model, ctx.loss_fn, batches, population_size=big_n)
        if big_n is None:  # the sample is the population: noise_norm is already σ_S
            sigma_sample = st.noise_norm
        else:
            s2 = st.noise_norm_sq if math.isinf(big_n) else st.noise_norm_sq * big_n / (big_n - 1)
            sigma_sample = math.sqrt(max(s2 * (n - 1) / n, 0.0))
        rows += [
            (n, "loss", "paper", st.loss, st.loss_se),
            (n, "grad_norm", "paper", st.grad_norm_plugin, st.grad_norm_se),
            (n, "noise_norm", "paper", sigma_sample, st.noise_norm_se),
            (n, "grad_norm", "unbiased", st.grad_norm, st.grad_norm_se),
            (n, "noise_norm", "unbiased", st.noise_norm, st.noise_norm_se),
        ]
        if s.sharpness:
            eig = sharpness(ctx, model, batches)
            rows.append((n, "sharpness", "paper", eig.value, math.nan))
        logger.info("sample size %d done", n)
    frame = pd.DataFrame(rows, columns=SWEEP_COLUMNS)
    return frame.astype({"n_samples": "int64"})


# --- aggregation ----------------------------------------------------------------------------

#: Columns of ``runs/<id>/stats.parquet``: the DESIGN.md contract first, then extras.
STATS_COLUMNS = [
    "step",
    "epoch",
    "loss_last",
    "loss_moving_avg",
    "grad_norm",
    "grad_norm_se",
    "noise_norm",
    "noise_norm_se",
    "sharpness",
    "sharpness_residual",
    "n_samples",
    "val_acc",
    "val_loss",
]


def aggregate_statistics(
    rows: Sequence[pd.DataFrame], train_log: pd.DataFrame, manifest: Mapping[str, Any]
) -> pd.DataFrame:
    """The run's ``stats.parquet``: one row per checkpoint, by step.

    ``loss_moving_avg`` is eq. (2) (:func:`sgdconv.stats.loss_moving_avg`) of the epoch that
    ends at the checkpoint, over that epoch's steps (NaN at step 0 and at checkpoints inside an
    epoch); ``loss_last`` is eq. (3) at the checkpoint, on the fixed sample. Adds ``run_id``,
    ``status`` (completed/diverged: a diverged run has the rows of its finite checkpoints) and
    the per-checkpoint extras (lr, the paper's plug-in gradient norm, squared estimates, the
    one-step loss change of Thm. 4.3).
    """
    from sgdconv.stats import loss_moving_avg

    frame = pd.concat(list(rows), ignore_index=True).sort_values("step").reset_index(drop=True)
    finite_log = train_log[np.isfinite(train_log["minibatch_loss"])]
    moving = loss_moving_avg(finite_log) if len(finite_log) else None
    frame["loss_moving_avg"] = math.nan
    if moving is not None:
        complete = moving[moving["n_steps"] == int(manifest["steps_per_epoch"])]
        by_last = dict(zip(complete["last_step"], complete["loss_moving_avg"], strict=True))
        frame["loss_moving_avg"] = frame["step"].map(by_last).astype(float)
    frame["run_id"] = manifest["run_id"]
    frame["status"] = manifest["status"]
    extras = [c for c in frame.columns if c not in STATS_COLUMNS]
    for column in STATS_COLUMNS:
        if column not in frame:
            frame[column] = math.nan
    return frame[STATS_COLUMNS + extras]
