"""Loss, gradient norm and noise norm of Zhang et al. (2022), eq. (1), in one pass.

For a fixed sample S = {(x_i, y_i)}, i = 1..m, of per-sample losses ℓ_i(θ) and per-sample
gradients ∇ℓ_i, eq. (1) of the paper defines

    L_S = (1/m) Σ_i ℓ_i,     |∇L_S| = |(1/m) Σ_i ∇ℓ_i|,     σ² = (1/m) Σ_i |∇ℓ_i − ∇L_S|².

The sample is handed over as K micro-batches of equal size b (m = K b). The pass accumulates,
per micro-batch k, the micro-batch mean gradient g_k and folds it into running moments, so it
costs one forward/backward per micro-batch and memory O(p) (p = number of parameters), never
O(b p):

* ``loss`` = (1/K) Σ_k L_k = L_S (the mean of equal-size micro-batch means);
* ḡ = (1/K) Σ_k g_k = ∇L_S exactly;
* the spread of the micro-batch means gives σ² without per-sample gradients. If the K
  micro-batches are a random partition of S (sampling without replacement), each g_k is a
  simple random sample mean of size b, so E|g_k − ḡ|² = (1 − b/m) s²/b with
  s² = (1/(m − 1)) Σ_i |∇ℓ_i − ḡ|² = m σ²/(m − 1). Hence

      ŝ² = b · (1/(K − 1)) Σ_k |g_k − ḡ|²      (unbiased for s²)
      σ̂² = (m − 1)/m · ŝ² = b (m − 1)/(m − b) · (1/K) Σ_k |g_k − ḡ|²   (unbiased for σ²),

  exact when b = 1. The same ŝ² is unbiased for the per-sample variance when the micro-batches
  are i.i.d. draws from a larger population. Either way the order of S must be random (a
  shuffled loader): micro-batches sorted by class would inflate σ̂.
  ``per_sample=True`` replaces micro-batch means by exact per-sample gradients
  (``torch.func``), which makes σ exact at memory O(b p).

Finite population (``population_size=N``): Appendix A.2 of the paper estimates eq. (1) on a
random subset S of m < N training points and reports |ḡ|, which is biased upwards by Jensen's
inequality: for a simple random sample, E|ḡ|² = |∇L|² + (1 − m/N) S_N²/m, S_N² the population
variance with divisor N − 1, and E[ŝ²] = S_N². This module therefore reports

    grad_norm² = |ḡ|² − (1 − m/N) ŝ²/m      (unbiased for |∇L|²; clipped at 0 for grad_norm),
    noise_norm² = (N − 1)/N · ŝ²             (unbiased for the population's σ², divisor N),

and keeps the paper's plug-in |ḡ| as ``grad_norm_plugin``. ``N = inf`` (an infinite data
distribution) is allowed; ``population_size=None`` means S is the population (N = m): then
``grad_norm = |∇L_S|`` exactly and ``noise_norm`` is σ_S.

Standard errors: the micro-batches are dealt round-robin into G = min(n_groups, K) groups and
each group keeps its own running moments (memory O(G p)). The delete-a-group jackknife
(:mod:`sgdconv.stats._jackknife`) of each statistic then measures its *sampling variability*:
how much it would move if S were a fresh sample of the same size from the population — from
the data distribution when ``population_size`` is None or inf, and with the finite-population
correction 1 − m/N (so SE → 0 as m → N) when N is finite. It does not measure the error of
``grad_norm`` as |∇L_S| (which is exact); use it to judge whether |∇L| > 0 beyond estimation
error, the third hypothesis of Zhang et al. Section 3.

BatchNorm and dropout: the model is used in the mode the caller set.

* BatchNorm in eval mode normalises with running statistics: per-sample losses are independent,
  and the statistics are those of eq. (1) for the network used at evaluation time.
* BatchNorm in train mode normalises with micro-batch statistics, which couples the samples of
  a micro-batch: the "per-sample" loss is not defined, and the quantities describe the
  micro-batch loss L_k as SGD sees it with batch size b — ``loss`` and ``grad_norm`` are those
  of (1/K) Σ_k L_k and σ̂² is the formula above applied to the micro-batch gradients, so all
  of them depend on b (use the training batch size to describe SGD's own noise). Running
  statistics are updated by these forward passes and restored afterwards. ``per_sample=True``
  is refused.
* Dropout in train mode makes every ℓ_i random: ``loss`` and ḡ are unbiased for the expected
  (over masks) loss and gradient, and ``noise_norm`` includes the dropout noise. Eval mode
  gives the deterministic network. The caller's RNG stream is left untouched either way.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence, Sized
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from sgdconv.stats._batches import (
    Batch,
    LossFn,
    Progress,
    batch_size,
    mean_loss,
    model_device,
    unpack,
    with_progress,
)
from sgdconv.stats._jackknife import grouped_jackknife_se
from sgdconv.stats._model_state import preserved_model_state, trainable_parameters


@dataclass(frozen=True)
class GradientStats:
    """The quantities of Zhang et al. eq. (1) on a sample, with jackknife standard errors.

    ``grad_norm_sq`` and ``noise_norm_sq`` are the unbiased squared estimates before clipping
    and square root: average those (not the norms) across seeds or checkpoints.
    """

    loss: float
    grad_norm: float
    noise_norm: float
    grad_norm_se: float
    noise_norm_se: float
    n_samples: int
    microbatch_size: int
    loss_se: float
    grad_norm_sq: float
    noise_norm_sq: float
    grad_norm_plugin: float  # |ḡ|, the paper's (Jensen-biased) estimator of App. A.2
    n_microbatches: int
    population_size: float | None
    # Jackknife SE of the unclipped ``grad_norm_sq``: unlike ``grad_norm_se`` (0 when every
    # replicate is clipped at 0) it says what the data can and cannot resolve near |∇L| = 0.
    grad_norm_sq_se: float = math.nan

    def as_dict(self) -> dict[str, Any]:
        """The fields as a flat dict (one row of a stats table)."""
        return dataclasses.asdict(self)


# --- the estimators as functions of sufficient statistics -----------------------------------


def _estimates(
    n_obs: int, unit: int, mean_sq: float, m2: float, population_size: float | None
) -> tuple[float, float]:
    """(|∇L|² estimate, σ² estimate) from n_obs observations of ``unit`` samples each, with
    |ḡ|² = ``mean_sq`` and M2 = Σ_obs |g_obs − ḡ|² = ``m2`` (see the module docstring)."""
    m = n_obs * unit
    s2 = unit * m2 / (n_obs - 1) if n_obs >= 2 else math.nan
    big_n = m if population_size is None else population_size
    if math.isinf(big_n):
        return mean_sq - s2 / m, s2
    noise_sq = (big_n - 1) / big_n * s2 if big_n > 1 else 0.0
    grad_sq = mean_sq - (1.0 - m / big_n) * s2 / m if big_n > m else mean_sq
    return grad_sq, noise_sq


def _sqrt0(x: float) -> float:
    return math.sqrt(x) if x > 0 else (0.0 if x <= 0 else math.nan)


# --- streaming moments ----------------------------------------------------------------------


def _sq_norm(tensors: Sequence[Tensor]) -> Tensor:
    """Σ over tensors of |t|², as a float64 scalar tensor (no host sync)."""
    return torch.stack(torch._foreach_norm(list(tensors))).double().pow(2).sum()


def _dot(a: Sequence[Tensor], b: Sequence[Tensor]) -> Tensor:
    return torch.stack(
        [torch.vdot(x.reshape(-1), y.reshape(-1)) for x, y in zip(a, b, strict=True)]
    ).sum()


class _GroupMoments:
    """Running count, mean vector and M2 = Σ |obs − mean|² of one jackknife group.

    Observations arrive in blocks (count c, block mean, block M2) and are merged with the
    pairwise update of Chan, Golub & LeVeque (1979): for c = 1 this is Welford's algorithm.
    Working with deviations from the running mean, instead of Σ|g_k|² − K|ḡ|², avoids the
    cancellation that ruins σ̂ in float32 when |ḡ| dominates the noise.
    """

    def __init__(self) -> None:
        self.count = 0
        self.n_batches = 0
        self.mean: list[Tensor] = []
        self.m2: Tensor | float = 0.0
        self.loss_sum: Tensor | float = 0.0

    def add(self, count: int, block_mean: list[Tensor], block_m2: Tensor | None, loss: Tensor):
        if self.count == 0:
            self.mean = [g.detach() for g in block_mean]  # fresh tensors: no copy needed
            self.m2 = block_m2 if block_m2 is not None else 0.0
        else:
            total = self.count + count
            delta = torch._foreach_sub(block_mean, self.mean)
            torch._foreach_add_(self.mean, delta, alpha=count / total)
            self.m2 = self.m2 + _sq_norm(delta) * (self.count * count / total)
            if block_m2 is not None:
                self.m2 = self.m2 + block_m2
        self.count += count
        self.n_batches += 1
        self.loss_sum = self.loss_sum + loss.detach().double()


def _block_from_per_sample(grads: list[Tensor]) -> tuple[list[Tensor], Tensor]:
    """Mean and M2 of a block of per-sample gradients (leading dimension = sample)."""
    means = [g.mean(0) for g in grads]
    m2 = sum(((g - mu).double() ** 2).sum() for g, mu in zip(grads, means, strict=True))
    return means, m2  # type: ignore[return-value]


# --- per-sample gradients with torch.func -------------------------------------------------------


def _check_no_train_batchnorm(model: nn.Module) -> None:
    for name, module in model.named_modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.training:
            raise ValueError(
                f"per_sample=True needs per-sample losses, but BatchNorm {name!r} is in train "
                "mode and couples the samples of a micro-batch; call model.eval() or use "
                "per_sample=False (micro-batch statistics)"
            )


def _per_sample_grad_fn(model: nn.Module, loss_fn: LossFn):
    """A function (args, targets) -> (per-sample grads in parameter order, per-sample losses)."""
    from torch.func import functional_call, grad_and_value, vmap

    names = [n for n, p in model.named_parameters() if p.requires_grad]
    constants = {n: p.detach() for n, p in model.named_parameters() if not p.requires_grad}
    constants.update(dict(model.named_buffers()))

    def one_sample(params: dict[str, Tensor], args: tuple, dims: tuple, target: Any) -> Tensor:
        args = tuple(a.unsqueeze(0) if d == 0 else a for a, d in zip(args, dims, strict=True))
        out = functional_call(model, (params, constants), args)
        return loss_fn(out, target.unsqueeze(0))

    def run(args: tuple, targets: Tensor) -> tuple[list[Tensor], Tensor]:
        params = {n: p.detach() for n, p in model.named_parameters() if p.requires_grad}
        dims = tuple(0 if isinstance(a, Tensor) and a.dim() > 0 else None for a in args)
        fn = vmap(
            grad_and_value(lambda p, a, t: one_sample(p, a, dims, t)),
            in_dims=(None, dims, 0),
            randomness="different",
        )
        grads, losses = fn(params, args, targets)
        return [grads[n] for n in names], losses

    return run


# --- the public estimator ---------------------------------------------------------------------

_K_MESSAGE = (
    "need K >= 2 micro-batches to estimate the noise from their spread, got K = {k}; "
    "split the sample into smaller micro-batches or use per_sample=True"
)


def estimate_gradient_stats(
    model: nn.Module,
    loss_fn: LossFn,
    batches: Iterable[Batch],
    *,
    per_sample: bool = False,
    population_size: float | None = None,
    n_groups: int = 10,
    microbatch_size: int | None = None,
    progress: Progress = False,
) -> GradientStats:
    """Loss, |∇L| and σ of Zhang et al. eq. (1) on the sample ``batches``, in one pass.

    Args:
        model: used in the mode the caller set; its parameters, ``.grad``, buffers (BatchNorm
            running statistics), modes and the global RNG are left as found. Parameters with
            ``requires_grad=False`` are constants. Batches are moved to the parameters' device.
        loss_fn: ``loss_fn(output, target)`` -> the mean loss over the micro-batch (scalar).
        batches: the micro-batches ``(inputs, targets)`` of equal size b that together form
            the sample S (m = K b); ``inputs`` is a tensor or a tuple for ``model(*inputs)``.
            They should be a random partition of S (e.g. a shuffled split), see module doc.
        per_sample: exact per-sample gradients via ``torch.func`` (memory O(b p)); refused for
            BatchNorm in train mode.
        population_size: N if S is a simple random sample of a population of N (``math.inf``
            for a data distribution); None if S is the population. See the module docstring.
        n_groups: jackknife groups G for the standard errors. Memory is G running mean
            vectors of p entries in the parameters' dtype (the cancellation-free update keeps
            float32 accurate); lower G for very large models.
        microbatch_size: samples per micro-batch when that is not the targets' leading
            dimension (e.g. tokens of a language-model batch); not with ``per_sample``.
        progress: True for a tqdm bar, or a callable receiving the micro-batches done.

    Returns:
        :class:`GradientStats`; ``grad_norm`` is clipped at 0 when its unbiased square
        ``grad_norm_sq`` is negative (possible in population mode when |∇L| is small).

    Raises:
        ValueError: K < 2 micro-batches (m < 2 samples with ``per_sample``), unequal
            micro-batch sizes, ``population_size`` < m, or ``per_sample`` with train-mode
            BatchNorm.
    """
    if n_groups < 2:
        raise ValueError(f"n_groups must be >= 2, got {n_groups}")
    if per_sample and microbatch_size is not None:
        raise ValueError("microbatch_size cannot be combined with per_sample=True")
    if per_sample:
        _check_no_train_batchnorm(model)
    if not per_sample and isinstance(batches, Sized) and len(batches) == 1:
        raise ValueError(_K_MESSAGE.format(k=1))  # fail before the pass when we can
    params = trainable_parameters(model)
    device = model_device(params)
    per_sample_grads = _per_sample_grad_fn(model, loss_fn) if per_sample else None

    groups = [_GroupMoments() for _ in range(n_groups)]
    b: int | None = None
    k = 0
    with preserved_model_state(model, device), torch.enable_grad():
        for k, batch in enumerate(with_progress(batches, progress, "gradient stats"), start=1):
            args, targets = unpack(batch, device)
            size = microbatch_size or batch_size(args, targets)
            if b is None:
                b = size
            elif size != b:
                raise ValueError(
                    f"micro-batches must have equal size: got {size} after {b} "
                    "(use drop_last=True for a DataLoader)"
                )
            group = groups[(k - 1) % n_groups]
            if per_sample_grads is None:
                loss = mean_loss(model, loss_fn, args, targets)
                grads = torch.autograd.grad(loss, params, materialize_grads=True)
                group.add(1, list(grads), None, loss)
            else:
                sample_grads, losses = per_sample_grads(args, targets)
                block_mean, block_m2 = _block_from_per_sample(sample_grads)
                group.add(size, block_mean, block_m2, losses.mean())
    if b is None:
        raise ValueError("batches is empty")
    n_batches = k
    if not per_sample and n_batches < 2:
        raise ValueError(_K_MESSAGE.format(k=n_batches))
    m = n_batches * b
    if per_sample and m < 2:
        raise ValueError("need at least 2 samples to estimate the noise")
    if population_size is not None and population_size < m:
        raise ValueError(f"population_size = {population_size} < sample size m = {m}")
    unit = 1 if per_sample else b
    return _finish([g for g in groups if g.count > 0], unit, b, population_size)


def _finish(
    groups: list[_GroupMoments], unit: int, b: int, population_size: float | None
) -> GradientStats:
    """Combine the groups into the estimates and their leave-one-group-out replicates."""
    counts = np.array([g.count for g in groups], dtype=float)
    n_batches = np.array([g.n_batches for g in groups], dtype=float)
    n = counts.sum()
    mean = [torch.zeros_like(t) for t in groups[0].mean]
    for g, c in zip(groups, counts, strict=True):
        torch._foreach_add_(mean, g.mean, alpha=c / n)
    for g in groups:  # centre the group means in place: d_j = mean_j − mean
        torch._foreach_sub_(g.mean, mean)
    n_groups = len(groups)
    gram = torch.empty(n_groups, n_groups, dtype=torch.float64, device=mean[0].device)
    for i in range(n_groups):
        for j in range(i + 1):
            gram[i, j] = gram[j, i] = _dot(groups[i].mean, groups[j].mean).double()
    cross = torch.stack([_dot(mean, g.mean).double() for g in groups])
    mean_sq_t = _sq_norm(mean)
    # One host transfer for every scalar of the pass.
    d = gram.cpu().numpy()
    c = cross.cpu().numpy()
    mean_sq = float(mean_sq_t)
    m2_groups = np.array([float(g.m2) for g in groups])
    loss_groups = np.array([float(g.loss_sum) for g in groups])

    within = m2_groups.sum()
    m2 = within + float(np.sum(counts * np.diag(d)))
    n_obs = int(n)
    loss = loss_groups.sum() / n_batches.sum()
    grad_sq, noise_sq = _estimates(n_obs, unit, mean_sq, m2, population_size)

    rep_loss, rep_grad, rep_noise, rep_grad_sq = [], [], [], []
    for j in range(n_groups if n_groups >= 2 else 0):  # one group: no replicate, SE = NaN
        rest = n - counts[j]
        r = counts[j] / rest
        keep = np.arange(n_groups) != j
        mean_sq_j = mean_sq - 2 * r * c[j] + r * r * d[j, j]
        between_j = np.sum(counts[keep] * (np.diag(d)[keep] + 2 * r * d[keep, j] + r * r * d[j, j]))
        m2_j = within - m2_groups[j] + between_j
        grad_sq_j, noise_sq_j = _estimates(int(rest), unit, mean_sq_j, m2_j, population_size)
        rep_loss.append((loss_groups.sum() - loss_groups[j]) / (n_batches.sum() - n_batches[j]))
        rep_grad.append(_sqrt0(grad_sq_j))
        rep_grad_sq.append(grad_sq_j)
        rep_noise.append(_sqrt0(noise_sq_j))

    m = n_obs * unit
    finite = population_size is not None and not math.isinf(population_size)
    fpc = 1.0 - m / population_size if finite else 1.0  # type: ignore[operator]
    sizes = counts * unit

    def se(full: float, reps: list[float]) -> float:
        if n_groups < 2:
            return math.nan
        return grouped_jackknife_se(full, np.array(reps), sizes, fpc)

    grad_norm, noise_norm = _sqrt0(grad_sq), _sqrt0(noise_sq)
    return GradientStats(
        loss=float(loss),
        grad_norm=grad_norm,
        noise_norm=noise_norm,
        grad_norm_se=se(grad_norm, rep_grad),
        noise_norm_se=se(noise_norm, rep_noise),
        n_samples=int(m),
        microbatch_size=int(b),
        loss_se=se(float(loss), rep_loss),
        grad_norm_sq=float(grad_sq),
        noise_norm_sq=float(noise_sq),
        grad_norm_plugin=math.sqrt(mean_sq),
        n_microbatches=int(n_batches.sum()),
        population_size=None if population_size is None else float(population_size),
        grad_norm_sq_se=se(float(grad_sq), rep_grad_sq),
    )
