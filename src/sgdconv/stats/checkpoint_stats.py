"""One row of ``runs/<id>/stats/step_<k>.parquet``: the statistics of eq. (1), the sharpness,
the last-iterate loss of eq. (3), validation metrics and the one-step loss change of Thm. 4.3
at one checkpoint (see :mod:`sgdconv.stats.checkpoint_context` for the model mode and the
population)."""

from __future__ import annotations

import copy
import logging
import math
from typing import Any

import numpy as np
import torch
from torch import nn

from sgdconv.data.base import (
    MicroBatches,
    mix_seed,
)
from sgdconv.stats.checkpoint_context import CheckpointContext, population_size
from sgdconv.train.engine import make_optimizer
from sgdconv.train.losses import LossFn, accuracy

logger = logging.getLogger(__name__)


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
        "grad_norm_sq_se": stats.grad_norm_sq_se,
        **grad_norm_bounds(stats.grad_norm_sq, stats.grad_norm_sq_se),
        "grad_norm_plugin": stats.grad_norm_plugin,
        "noise_norm": stats.noise_norm,
        "noise_norm_se": stats.noise_norm_se,
        "noise_norm_sq": stats.noise_norm_sq,
        "n_samples": stats.n_samples,
        # N of the population the sample estimates (inf: a data distribution; = n_samples
        # when the sample is the whole training set)
        "population_size": (
            float(stats.n_samples) if stats.population_size is None else stats.population_size
        ),
        "microbatch_size": stats.microbatch_size,
        "batch_size": ctx.spec.batch_size,
        "momentum": ctx.spec.momentum,
        "sharpness": math.nan,
        "sharpness_residual": math.nan,
        # residual <= sharpness_tol: False where the solver ran out of Hessian-vector products
        # (its λ_max is then a lower estimate) or the sharpness was not computed
        "sharpness_converged": False,
        "sharpness_n_hvp": 0,
    }
    if s.sharpness:
        sharp_batches = sample
        if s.sharpness_sample_size:
            count = max(1, min(sample.count, s.sharpness_sample_size // sample.size))
            sharp_batches = sample.truncated(count)
        eig = sharpness(ctx, model, sharp_batches)
        row.update(
            sharpness=eig.value,
            sharpness_residual=eig.residual,
            sharpness_converged=bool(eig.residual <= s.sharpness_tol),
            sharpness_n_hvp=eig.n_hvp,
        )
    row.update(curvature(ctx, model, sample))
    row.update(validation_metrics(ctx) if s.validation else {})
    row.update(one_step_loss_change(ctx, sample))
    return row


def grad_norm_bounds(grad_norm_sq: float, se: float) -> dict[str, float]:
    """``grad_norm_lcb`` / ``grad_norm_ucb``: √max(|∇L|²^ ∓ 2 SE, 0), the 2-SE bounds of |∇L|
    from the unbiased squared estimate and its SE; a clipped estimate (|∇L|²^ < 0) keeps an
    upper bound instead of showing 0 ± 0."""
    if not math.isfinite(se):
        return {"grad_norm_lcb": math.nan, "grad_norm_ucb": math.nan}
    return {
        "grad_norm_lcb": math.sqrt(max(grad_norm_sq - 2 * se, 0.0)),
        "grad_norm_ucb": math.sqrt(max(grad_norm_sq + 2 * se, 0.0)),
    }


CURVATURE_COLUMNS = ("sgd_curvature", "mean_curvature", "noise_curvature", "noise_curvature_se")


def curvature(ctx: CheckpointContext, model: nn.Module, sample: MicroBatches) -> dict[str, float]:
    """The curvature terms of eq. (10) (:func:`sgdconv.stats.directional.gradient_curvature`):
    H on the sharpness sample (its first micro-batches, at most all but the last J), the
    J = ``curvature_directions`` micro-batch gradients from the *last* J micro-batches of the
    sample (disjoint from H's), ḡ from the whole sample, and r = SGD batch / micro-batch. NaN
    when J = 0."""
    from sgdconv.stats.directional import gradient_curvature

    s = ctx.settings
    j = s.curvature_directions
    if j == 0:
        return dict.fromkeys(CURVATURE_COLUMNS, math.nan)
    count = sample.count
    if s.sharpness_sample_size:
        count = max(1, min(sample.count, s.sharpness_sample_size // sample.size))
    count = min(count, sample.count - j)
    if count < 1:
        raise ValueError(
            f"curvature_directions {j} leave no micro-batch of the sample's {sample.count} "
            "for the Hessian"
        )
    c = gradient_curvature(
        model,
        ctx.loss_fn,
        hessian_batches=sample.truncated(count),
        direction_batches=[sample[i] for i in range(sample.count - j, sample.count)],
        mean_batches=sample,
        microbatches_per_batch=ctx.spec.batch_size / sample.size,
        population_size=population_size(ctx.source, sample.n_samples),
        seed=mix_seed("curvature", s.seed),
    )
    return {column: getattr(c, column) for column in CURVATURE_COLUMNS}


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
