"""The authors' estimator (sgdconv.stats.authors) against a direct computation of their formula
on a small model, its expectation on a population with known moments, and their power
iteration against the exact top eigenvalue."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from sgdconv.stats.authors import authors_gradient_stats, authors_sharpness

DT = torch.float64
LOSS = nn.MSELoss()

pytestmark = pytest.mark.usefixtures("one_thread")


def small_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1)).to(DT)


def minibatches(count: int, b: int, seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    gen = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(b, 3, generator=gen, dtype=DT), torch.randn(b, 1, generator=gen, dtype=DT))
        for _ in range(count)
    ]


def flat_grad(model: nn.Module, batch) -> np.ndarray:
    model.zero_grad()
    LOSS(model(batch[0]), batch[1]).backward()
    g = torch.cat([p.grad.flatten() for p in model.parameters()]).numpy().copy()
    model.zero_grad(set_to_none=True)
    return g


def test_matches_the_formula_computed_directly():
    model = small_model()
    main, ref = minibatches(6, 5, seed=1), minibatches(6, 5, seed=2)
    before = [p.detach().clone() for p in model.parameters()]
    got = authors_gradient_stats(model, LOSS, main, ref, counts=[3, 6])
    for k in (3, 6):
        g = np.stack([flat_grad(model, batch) for batch in main[:k]])
        g_ref = np.stack([flat_grad(model, batch) for batch in ref[:k]])
        g_bar, g_bar_ref = g.mean(0), g_ref.mean(0)
        noise = np.mean([np.sum((gj - g_bar_ref) ** 2) for gj in g])
        with torch.no_grad():
            loss = np.mean([float(LOSS(model(x), y)) for x, y in main[:k]])
        stats = got[k]
        assert stats.n_batches == k and stats.batch_size == 5 and stats.n_samples == 5 * k
        assert stats.grad_norm_sq == pytest.approx(np.sum(g_bar**2), rel=1e-12)
        assert stats.noise_sq == pytest.approx(noise, rel=1e-12)
        assert stats.loss == pytest.approx(loss, rel=1e-12)
        assert stats.grad_norm == pytest.approx(math.sqrt(np.sum(g_bar**2)))
    for p, q in zip(model.parameters(), before, strict=True):
        assert torch.equal(p.detach(), q) and p.grad is None


def test_expectations_are_the_biased_minibatch_scale():
    """Linear least squares with Gaussian data: per-sample gradients are i.i.d., so
    E|ḡ|² = |∇L|² + σ²/(bK) and E noise² = (σ²/b)(1 + 1/K) (module docstring); the per-sample
    σ² and |∇L|² of the distribution are computed from a very large sample."""
    model = nn.Linear(3, 1).to(DT)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[0.8, -1.5, 0.3]], dtype=DT))
        model.bias.fill_(0.1)
    w_true = torch.tensor([[1.0], [-2.0], [0.5]], dtype=DT)

    def draw(count: int, b: int, gen: torch.Generator):
        out = []
        for _ in range(count):
            x = torch.randn(b, 3, generator=gen, dtype=DT)
            out.append((x, x @ w_true + 0.5 * torch.randn(b, 1, generator=gen, dtype=DT)))
        return out

    gen = torch.Generator().manual_seed(0)
    big = draw(1, 200_000, gen)[0]
    x, y = big
    residual = model(x).detach() - y  # MSE per-sample gradient: 2 r (x, 1)
    per_sample = 2 * residual * torch.cat([x, torch.ones(len(x), 1, dtype=DT)], 1)
    grad = per_sample.mean(0)
    sigma2 = float(((per_sample - grad) ** 2).sum(1).mean())
    grad2 = float(grad @ grad)
    k, b, reps = 4, 8, 600
    values = np.array(
        [
            [s.grad_norm_sq, s.noise_sq]
            for s in (
                authors_gradient_stats(model, LOSS, draw(k, b, gen), draw(k, b, gen))[k]
                for _ in range(reps)
            )
        ]
    )
    mean, se = values.mean(0), values.std(0, ddof=1) / math.sqrt(reps)
    expected = np.array([grad2 + sigma2 / (b * k), sigma2 / b * (1 + 1 / k)])
    assert np.all(np.abs(mean - expected) <= 4 * se)
    # The same tolerance rejects the per-sample scale and the unbiased |∇L|².
    assert abs(mean[1] - sigma2) > 4 * se[1]
    assert abs(mean[0] - grad2) > 4 * se[0]


def test_power_iteration_finds_the_top_eigenvalue_of_a_quadratic():
    torch.manual_seed(3)
    a = torch.randn(4, 4, dtype=DT)
    hessian = a @ a.T + torch.diag(torch.tensor([6.0, 0.0, 0.0, 0.0], dtype=DT))
    model = nn.Linear(4, 1, bias=False).to(DT)

    def quadratic(out, _target):  # L(w) = ½ wᵀ H w, whatever the batch
        w = model.weight.reshape(-1)
        return 0.5 * w @ hessian @ w + 0 * out.sum()

    batches = [(torch.zeros(2, 4, dtype=DT), torch.zeros(2, 1, dtype=DT))]
    top = float(torch.linalg.eigvalsh(hessian)[-1])
    assert authors_sharpness(model, quadratic, batches, n_iter=200) == pytest.approx(top, rel=1e-6)
    few = authors_sharpness(model, quadratic, batches, n_iter=1)
    assert few <= top + 1e-9  # a Rayleigh quotient never exceeds λ_max


def test_refuses_unequal_minibatches():
    model = small_model()
    main = minibatches(2, 5, seed=1) + minibatches(1, 4, seed=3)
    with pytest.raises(ValueError, match="equal size"):
        authors_gradient_stats(model, LOSS, main, minibatches(3, 5, seed=2))
