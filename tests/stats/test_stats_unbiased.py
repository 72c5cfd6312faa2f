"""Unbiasedness of the estimators, by averaging over many random partitions of a sample and
many random subsamples of a small synthetic population whose eq. (1) quantities are computed
exactly by a per-sample loop.

Tolerances come from the spread of the replicates: |mean − truth| <= Z · sd / √R, with Z = 4
(a false alarm has probability ~6e-5 per check under the CLT). Each test also shows that the
same tolerance rejects the estimator without the correction, so it can fail.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from sgdconv.stats import estimate_gradient_stats

DT = torch.float64
Z = 4.0
R = 2000
LOSS = nn.MSELoss()


pytestmark = pytest.mark.usefixtures("one_thread")


def population(n: int = 30, seed: int = 0):
    """A linear least-squares problem near (not at) its minimiser, so |∇L_P| is small next to
    the per-sample noise, which makes the Jensen bias of |ḡ|² large."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=gen, dtype=DT)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]], dtype=DT) + torch.randn(
        n, 1, generator=gen, dtype=DT
    )
    model = nn.Linear(3, 1).to(DT)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.3, -1.8, 0.4]], dtype=DT))
        model.bias.fill_(0.2)
    return model, x, y


def per_sample(model, x, y) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample gradients and losses by one backward per sample."""
    grads, losses = [], []
    for i in range(len(x)):
        model.zero_grad()
        loss = LOSS(model(x[i : i + 1]), y[i : i + 1])
        loss.backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
        losses.append(loss.detach())
    model.zero_grad(set_to_none=True)
    return torch.stack(grads), torch.stack(losses)


def within(values: np.ndarray, truth: float) -> bool:
    return abs(values.mean() - truth) <= Z * values.std(ddof=1) / math.sqrt(len(values))


def test_noise_unbiased_over_random_partitions():
    """Fixed S (m = 12), random partitions into K = 4 micro-batches of b = 3:
    E[σ̂²] = σ_S², while b (1/K) Σ|g_k − ḡ|² (no (m−1)/(m−b) factor) is biased by (m−b)/(m−1)."""
    model, x, y = population()
    x, y = x[:12], y[:12]
    g, _ = per_sample(model, x, y)
    sigma2 = float(((g - g.mean(0)) ** 2).sum(1).mean())
    gen = torch.Generator().manual_seed(1)
    est = np.empty(R)
    for r in range(R):
        idx = torch.randperm(12, generator=gen)
        batches = [(x[idx[i : i + 3]], y[idx[i : i + 3]]) for i in range(0, 12, 3)]
        est[r] = estimate_gradient_stats(model, LOSS, batches).noise_norm_sq
    assert within(est, sigma2)
    naive = est * (12 - 3) / (12 - 1)
    assert not within(naive, sigma2)


def test_population_mode_unbiased_over_subsamples():
    """S a simple random sample (m = 12) of a population of N = 30, randomly split (b = 3):
    E[grad_norm_sq] = |∇L_P|², E[noise_norm_sq] = σ_P², E[loss] = L_P, and
    E[loss_se²] = Var(loss) = (1 − m/N) S_ℓ²/m exactly (the jackknife of a mean, with the
    finite-population correction). The plug-in |ḡ|² of App. A.2 is rejected."""
    model, x, y = population()
    big_n, m, b = len(x), 12, 3
    g, losses = per_sample(model, x, y)
    mean = g.mean(0)
    grad2 = float(mean @ mean)
    sigma2 = float(((g - mean) ** 2).sum(1).mean())
    loss_var = (1 - m / big_n) * float(losses.var(unbiased=True)) / m
    gen = torch.Generator().manual_seed(2)
    cols = ("grad_norm_sq", "noise_norm_sq", "loss", "loss_se", "grad_norm_plugin")
    est = {c: np.empty(R) for c in cols}
    for r in range(R):
        idx = torch.randperm(big_n, generator=gen)[:m]
        batches = [(x[idx[i : i + b]], y[idx[i : i + b]]) for i in range(0, m, b)]
        stats = estimate_gradient_stats(model, LOSS, batches, population_size=big_n)
        for c in cols:
            est[c][r] = getattr(stats, c)
    assert within(est["grad_norm_sq"], grad2)
    assert within(est["noise_norm_sq"], sigma2)
    assert within(est["loss"], float(losses.mean()))
    assert within(est["loss_se"] ** 2, loss_var)
    # Power: the uncorrected versions are rejected by the same tolerance.
    assert not within(est["grad_norm_plugin"] ** 2, grad2)  # Jensen bias (1 − m/N) S²/m
    assert not within(est["loss_se"] ** 2 / (1 - m / big_n), loss_var)  # no FPC
    assert grad2 == pytest.approx(est["grad_norm_sq"].mean(), rel=0.5)  # and not trivially 0
