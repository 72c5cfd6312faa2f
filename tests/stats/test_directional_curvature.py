"""sgdconv.stats.directional against a quadratic model whose Hessian, gradient and noise are
known in closed form, and the SE of the unclipped |∇L|² of sgdconv.stats.gradient."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from sgdconv.stats import estimate_gradient_stats
from sgdconv.stats.directional import gradient_curvature

DT = torch.float64

pytestmark = pytest.mark.usefixtures("one_thread")


class Quadratic(nn.Module):
    """ℓ(w; x) = ½ (w − x)ᵀ A (w − x): H = A for every batch, per-sample gradient A(w − x)."""

    def __init__(self, a: torch.Tensor, w: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("a", a)
        self.w = nn.Parameter(w.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d = self.w - x
        return 0.5 * ((d @ self.a) * d).sum(1)


def mean_loss(out, _target):
    return out.mean()


def batches(count, b, mean, scale, gen):
    return [
        (mean + scale * torch.randn(b, len(mean), generator=gen, dtype=DT), torch.zeros(b))
        for _ in range(count)
    ]


def test_curvature_terms_match_the_closed_form():
    """x ~ N(μ, s² I): ∇L = A(w − μ), Σ_1 = s² A², tr(H Σ_B) = s² tr(A³) / B."""
    a = torch.diag(torch.tensor([1.0, 2.0, 3.0], dtype=DT))
    w, mu, s = torch.tensor([1.0, 0.5, -0.5], dtype=DT), torch.zeros(3, dtype=DT), 0.7
    model = Quadratic(a, w)
    grad = a @ (w - mu)
    b, r = 8, 4  # micro-batches of 8, SGD batch 32
    exact_mean = float(grad @ a @ grad)
    exact_noise = s**2 * float(torch.trace(a @ a @ a)) / (b * r)
    gen = torch.Generator().manual_seed(0)
    reps = [
        gradient_curvature(
            model,
            mean_loss,
            hessian_batches=batches(2, b, mu, s, gen),
            direction_batches=batches(16, b, mu, s, gen),
            mean_batches=batches(16, b, mu, s, gen),
            microbatches_per_batch=r,
            population_size=math.inf,
        )
        for _ in range(120)
    ]
    noise = np.array([c.noise_curvature for c in reps])
    mean = np.array([c.mean_curvature for c in reps])
    total = np.array([c.sgd_curvature for c in reps])
    for values, truth in (
        (noise, exact_noise),
        (mean, exact_mean),
        (total, exact_mean + exact_noise),
    ):
        assert abs(values.mean() - truth) <= 4 * values.std(ddof=1) / math.sqrt(len(values))
    # The reported SE is that of the directions' spread alone: a lower bound on the spread of
    # noise_curvature across repetitions (which also varies with ḡ and H).
    se = np.sqrt(np.mean(np.array([c.noise_curvature_se for c in reps]) ** 2))
    assert 0.3 * noise.std(ddof=1) < se <= 1.1 * noise.std(ddof=1)
    assert torch.equal(model.w.detach(), w) and model.w.grad is None


def test_refuses_fewer_than_two_directions():
    a = torch.eye(2, dtype=DT)
    model = Quadratic(a, torch.ones(2, dtype=DT))
    gen = torch.Generator().manual_seed(1)
    one = batches(1, 4, torch.zeros(2, dtype=DT), 1.0, gen)
    with pytest.raises(ValueError, match=">= 2"):
        gradient_curvature(
            model, mean_loss, hessian_batches=one, direction_batches=one, mean_batches=one * 3
        )


def test_squared_gradient_se_stays_positive_where_the_norm_is_clipped():
    """At the minimiser (|∇L| = 0) about half the unbiased |∇L|² estimates are negative and
    clipped; the SE of the squared estimate matches their spread, the norm's SE does not."""
    a = torch.eye(3, dtype=DT)
    model = Quadratic(a, torch.zeros(3, dtype=DT))  # ∇L = 0 at μ = 0
    gen = torch.Generator().manual_seed(2)
    results = [
        estimate_gradient_stats(
            model,
            mean_loss,
            batches(20, 4, torch.zeros(3, dtype=DT), 1.0, gen),
            population_size=math.inf,
        )
        for _ in range(200)
    ]
    sq = np.array([r.grad_norm_sq for r in results])
    sq_se = np.array([r.grad_norm_sq_se for r in results])
    assert (sq < 0).mean() > 0.2
    clipped = [r for r in results if r.grad_norm_sq < 0]
    assert all(r.grad_norm == 0.0 and r.grad_norm_sq_se > 0 for r in clipped)
    # The delete-a-group jackknife is conservative for this quadratic statistic at 0.
    assert sq.std(ddof=1) <= np.sqrt(np.mean(sq_se**2)) <= 2 * sq.std(ddof=1)
