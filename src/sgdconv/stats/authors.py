"""The statistics as the authors' scripts estimate them (Zhang et al. 2022, App. A.2; their
``train_stat_batch.py`` and ``utils.py``), kept beside the plug-in and unbiased estimators of
:mod:`sgdconv.stats.gradient` so that Fig. 7 can show all three.

Their scripts draw K minibatches B_1..B_K of size b and K further, independent minibatches
B'_1..B'_K, take the minibatch gradients g_j = ∇L_{B_j} and g'_j = ∇L_{B'_j}, and log

    loss          = (1/K) Σ_j L_{B_j},
    grad norm²    = |ḡ|²,                     ḡ  = (1/K) Σ_j g_j,
    noise²        = (1/K) Σ_j |g_j − ḡ'|²,    ḡ' = (1/K) Σ_j g'_j,

and the sharpness from a fixed small number (5-10) of power iterations. For i.i.d. minibatches
with per-sample covariance Σ (σ² = tr Σ, σ_b² = σ²/b the variance of one minibatch gradient):

    E|ḡ|²    = |∇L|² + σ_b² / K           (biased upward: Jensen's inequality),
    E noise² = σ_b² (1 + 1/K)             (minibatch scale, biased upward by the spread of ḡ'),

since g_j and ḡ' are independent. The noise is therefore on the *minibatch* scale σ/√b, not
the per-sample σ of eq. (1); :func:`authors_gradient_stats` returns it as the scripts log it
(``noise_sq``) and does not rescale it. :func:`authors_sharpness` is the plain power iteration
(no convergence test: it returns the Rayleigh quotient after ``n_iter`` products, which
underestimates λ_max when the iteration has not converged, and converges to the eigenvalue of
largest magnitude).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from sgdconv.stats._batches import Batch, LossFn, batch_size, mean_loss, model_device, unpack
from sgdconv.stats._model_state import preserved_model_state, trainable_parameters
from sgdconv.stats.hessian import HessianVectorProduct, _start_vector


@dataclass(frozen=True)
class AuthorsStats:
    """The authors' estimates from K minibatches of size b (and K reference minibatches)."""

    loss: float
    grad_norm_sq: float  # |ḡ|²
    noise_sq: float  # (1/K) Σ_j |g_j − ḡ'|², minibatch scale
    n_batches: int  # K
    batch_size: int  # b

    @property
    def grad_norm(self) -> float:
        return math.sqrt(max(self.grad_norm_sq, 0.0))

    @property
    def noise_norm(self) -> float:
        return math.sqrt(max(self.noise_sq, 0.0))

    @property
    def n_samples(self) -> int:
        return self.n_batches * self.batch_size


def _flat_grads(
    model: nn.Module, loss_fn: LossFn, batch: Batch, params: Sequence[nn.Parameter]
) -> tuple[Tensor, float, int]:
    device = model_device(list(params))
    args, targets = unpack(batch, device)
    loss = mean_loss(model, loss_fn, args, targets)
    grads = torch.autograd.grad(loss, list(params), materialize_grads=True)
    flat = torch.cat([g.reshape(-1) for g in grads]).double()
    return flat, float(loss.detach()), batch_size(args, targets)


def _prefix_pass(
    model: nn.Module,
    loss_fn: LossFn,
    batches: Iterable[Batch],
    params: Sequence[nn.Parameter],
    counts: Sequence[int],
) -> dict[int, tuple[Tensor, float, float, int]]:
    """For every prefix length K in ``counts``: (Σ_{j≤K} g_j, Σ_{j≤K} |g_j|², Σ_{j≤K} L_j, b)."""
    wanted, last = set(counts), max(counts)
    out: dict[int, tuple[Tensor, float, float, int]] = {}
    total: Tensor | None = None
    sq, loss_sum, b, k = 0.0, 0.0, None, 0
    for k, batch in enumerate(batches, start=1):
        g, loss, size = _flat_grads(model, loss_fn, batch, params)
        if b is not None and size != b:
            raise ValueError(f"minibatches must have equal size: got {size} after {b}")
        b = size
        total = g if total is None else total + g
        sq += float(g @ g)
        loss_sum += loss
        if k in wanted:
            out[k] = (total.clone(), sq, loss_sum, b)
        if k == last:
            break
    if k < last:
        raise ValueError(f"need {last} minibatches, got {k}")
    return out


def authors_gradient_stats(
    model: nn.Module,
    loss_fn: LossFn,
    batches: Iterable[Batch],
    reference: Iterable[Batch],
    counts: Sequence[int] | None = None,
) -> dict[int, AuthorsStats]:
    """The authors' loss, |ḡ|² and minibatch noise (module docstring) for every K in
    ``counts``, from the first K minibatches of ``batches`` (the B_j) and the first K of the
    independent ``reference`` (the B'_j); default: one K, the length of ``batches``.

    One pass over each sequence (nested prefixes share it); the model's mode is used as set
    and its parameters, ``.grad``, buffers, modes and RNG are left unchanged.
    """
    params = trainable_parameters(model)
    device = model_device(params)
    if counts is None:
        counts = [len(batches)]  # type: ignore[arg-type]
    counts = sorted({int(k) for k in counts})
    if counts[0] < 1:
        raise ValueError(f"counts must be >= 1, got {counts}")
    with preserved_model_state(model, device), torch.enable_grad():
        main = _prefix_pass(model, loss_fn, batches, params, counts)
        ref = _prefix_pass(model, loss_fn, reference, params, counts)
    result = {}
    for k in counts:
        total, sq, loss_sum, b = main[k]
        mean, ref_mean = total / k, ref[k][0] / k
        if ref[k][3] != b:
            raise ValueError(f"reference minibatches have size {ref[k][3]}, not {b}")
        # (1/K) Σ |g_j − ḡ'|² = (1/K) Σ |g_j|² − 2 ḡ·ḡ' + |ḡ'|²
        noise_sq = sq / k - 2.0 * float(mean @ ref_mean) + float(ref_mean @ ref_mean)
        result[k] = AuthorsStats(loss_sum / k, float(mean @ mean), noise_sq, k, b)
    return result


def authors_sharpness(
    model: nn.Module,
    loss_fn: LossFn,
    batches: Iterable[Batch],
    *,
    n_iter: int = 10,
    seed: int = 0,
) -> float:
    """Power iteration as in the authors' scripts (after Wu, Ma & E 2018): ``n_iter``
    Hessian-vector products of the mean minibatch loss over ``batches`` from a seeded random
    start, returning the last Rayleigh quotient v·Hv (|v| = 1). No convergence test."""
    if n_iter < 1:
        raise ValueError(f"n_iter must be >= 1, got {n_iter}")
    params = trainable_parameters(model)
    device = model_device(params)
    hvp = HessianVectorProduct(model, loss_fn, batches, params, seed=seed)
    v = _start_vector(None, hvp.dim, seed).to(device)
    v = v / v.norm()
    value = math.nan
    with preserved_model_state(model, device):
        for _ in range(n_iter):
            w = hvp(v)
            value = float(v @ w)
            norm = w.norm()
            if norm == 0:
                return 0.0
            v = w / norm
    return value
