"""Curvature along stochastic gradients: the terms of eq. (10) of Zhang et al. (2022).

Eq. (15) of the paper (and its heuristic eq. (10), (∇)² = η 𝓛 G²) involves the Hessian *along
the update direction*, E_g[gᵀ H g], not λ_max. With g_B the stochastic gradient of an SGD batch
B = ∇L + ξ_B (E ξ_B = 0, covariance Σ_B) and H = ∇²L:

    E[g_Bᵀ H g_B] = ∇Lᵀ H ∇L + tr(H Σ_B),      𝓛 := E[g_Bᵀ H g_B] / E|g_B|²,

so η 𝓛 G² = η E[g_Bᵀ H g_B] (G² = E|g_B|²). This module estimates the two terms from
micro-batch gradients of the fixed sample (micro-batch gradients g_j of size b_m, an SGD batch
being the mean of r = B / b_m of them, so tr(H Σ_B) = tr(H Σ_m) / r) with Hessian-vector
products of the sample loss on separate micro-batches (so H is independent of the g_j):

    q̄  = (1/J) Σ_j g_jᵀ H g_j        E q̄ = ∇LᵀH∇L + T_m,        T_m = tr(H Σ_m),
    q₀ = ḡᵀ H ḡ  (ḡ: the sample mean of K micro-batch gradients)   E q₀ = ∇LᵀH∇L + f T_m / K,

with f = 1 − m/N the finite-population correction of a sample of m out of N (f = 1 for a data
distribution, 0 when the sample is the population). Hence the unbiased (in the gradients, for a
fixed H) estimates

    T̂_m = (q̄ − q₀) / (1 − f/K),      (∇LᵀH∇L)^ = q₀ − f T̂_m / K,
    E[g_BᵀHg_B]^ = (∇LᵀH∇L)^ + T̂_m / r.

Cost: K gradient passes for ḡ, J for the g_j, and J + 1 Hessian-vector products.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from sgdconv.stats._batches import Batch, LossFn, mean_loss, model_device, unpack
from sgdconv.stats._model_state import preserved_model_state, trainable_parameters
from sgdconv.stats.hessian import HessianVectorProduct


@dataclass(frozen=True)
class Curvature:
    """Curvature along gradients (module docstring), in units of the loss per squared step.

    ``sgd_curvature`` = E[g_Bᵀ H g_B] for the SGD batch; ``mean_curvature`` = ∇LᵀH∇L;
    ``noise_curvature`` = tr(H Σ_B); ``noise_curvature_se`` the standard error of
    ``noise_curvature`` from the spread of the J directions alone (a lower bound: ḡ and H add
    their own sampling error)."""

    sgd_curvature: float
    mean_curvature: float
    noise_curvature: float
    noise_curvature_se: float
    n_directions: int
    microbatches_per_batch: float


def _flat_gradient(model: nn.Module, loss_fn: LossFn, batch: Batch, params: list) -> Tensor:
    args, targets = unpack(batch, model_device(params))
    loss = mean_loss(model, loss_fn, args, targets)
    grads = torch.autograd.grad(loss, params, materialize_grads=True)
    return torch.cat([g.reshape(-1) for g in grads]).double()


def gradient_curvature(
    model: nn.Module,
    loss_fn: LossFn,
    *,
    hessian_batches: Sequence[Batch],
    direction_batches: Sequence[Batch],
    mean_batches: Sequence[Batch],
    microbatches_per_batch: float = 1.0,
    population_size: float | None = math.inf,
    seed: int = 0,
) -> Curvature:
    """E[g_BᵀHg_B], ∇LᵀH∇L and tr(HΣ_B) (module docstring).

    ``hessian_batches``: the micro-batches whose mean loss defines H; ``direction_batches``:
    the J >= 2 micro-batches giving the g_j (disjoint from ``hessian_batches``);
    ``mean_batches``: the K micro-batches of the sample giving ḡ; ``microbatches_per_batch``
    r = SGD batch / micro-batch; ``population_size``: N of the population the sample of m
    = K b_m draws comes from (inf: a data distribution; None: the sample is the population).
    The model is used in its current mode and left unchanged.
    """
    params = trainable_parameters(model)
    device = model_device(params)
    j, k = len(direction_batches), len(mean_batches)
    if j < 2 or k < 2:
        raise ValueError(f"need >= 2 direction and mean micro-batches, got {j} and {k}")
    m = k * _size(mean_batches[0])
    if population_size is None:
        fpc = 0.0
    else:
        fpc = 1.0 if math.isinf(population_size) else max(0.0, 1.0 - m / population_size)
    hvp = HessianVectorProduct(model, loss_fn, hessian_batches, params, seed=seed)
    with preserved_model_state(model, device), torch.enable_grad():
        g_bar = sum(_flat_gradient(model, loss_fn, b, params) for b in mean_batches) / k
        directions = [_flat_gradient(model, loss_fn, b, params) for b in direction_batches]
        q0 = float(g_bar @ hvp(g_bar.to(torch.float64)))
        q = np.array([float(g @ hvp(g)) for g in directions])
    scale = 1.0 - fpc / k
    noise_m = (q.mean() - q0) / scale
    mean_curv = q0 - fpc * noise_m / k
    r = float(microbatches_per_batch)
    return Curvature(
        sgd_curvature=float(mean_curv + noise_m / r),
        mean_curvature=float(mean_curv),
        noise_curvature=float(noise_m / r),
        noise_curvature_se=float(q.std(ddof=1) / math.sqrt(j) / scale / r),
        n_directions=j,
        microbatches_per_batch=r,
    )


def _size(batch: Batch) -> int:
    targets = batch[1]
    return int(targets.shape[0])
