"""Batched GD and the trial-and-error rule (Remarks 4.4, 4.7) against closed forms and a plain
loop, the ball of Theorem 2.2 (a run that leaves B(θ0, r) is never chosen), per-row labels, and
the binomial intervals against scipy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from sgdconv.chatterjee.descent import (
    CONVERGED,
    DIVERGED,
    NOT_RUN,
    TIMED_OUT,
    eta_ladder,
    gradient_descent,
    ladder,
)
from sgdconv.models.feedforward import (
    FeedForward,
    chatterjee_init,
    independent_inputs,
    lecun_init,
)
from sgdconv.montecarlo.binomial import binomial_ci

CURVATURE = torch.tensor([1.0, 4.0], dtype=torch.float64)


def quadratic(theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """F(θ) = ½ Σ λ_i θ_i² with λ = (1, 4): GD multiplies θ_i by (1 − η λ_i) per step."""
    return 0.5 * (CURVATURE * theta**2).sum(-1), CURVATURE * theta


# --- gradient descent ---------------------------------------------------------------------


def test_iterations_to_tolerance_match_the_closed_form():
    # Along e_1, F(θ_k) = (1 − η)^{2k} F(θ0): the first k with (1 − η)^{2k} < tol.
    theta0 = torch.tensor([[1.0, 0.0], [1.0, 0.0]], dtype=torch.float64)
    etas = torch.tensor([0.1, 0.3], dtype=torch.float64)
    result = gradient_descent(quadratic, theta0, etas, max_steps=1000, tol=1e-8)
    for row, eta in enumerate(etas.tolist()):
        expected = math.floor(math.log(1e-8) / (2 * math.log(1 - eta))) + 1
        assert int(result.iterations[row]) == expected
    assert bool(result.converged.all()) and not bool(result.diverged.any())
    assert bool((result.f_final < 1e-8 * result.f0).all())


def test_divergence_is_detected_when_the_loss_grows_by_the_factor():
    # η = 0.75 along e_2 (λ = 4): |1 − 3| = 2, F grows by 4 per step; > 1e4 F0 at k = 7.
    theta0 = torch.tensor([[0.0, 1.0]], dtype=torch.float64)
    result = gradient_descent(quadratic, theta0, 0.75, max_steps=100, divergence_factor=1e4)
    assert bool(result.diverged[0]) and not bool(result.converged[0])
    assert int(result.iterations[0]) == 7  # 4^7 = 16384 > 1e4 >= 4^6


def test_batched_rows_match_a_plain_loop():
    g = torch.Generator().manual_seed(0)
    x = independent_inputs(5, 8, generator=g)
    y = torch.randn(5, generator=g, dtype=torch.float64)
    net = FeedForward(8, (4, 3), "tanh")
    theta0 = torch.stack(
        [chatterjee_init(net, middle_low=0.2, middle_high=0.4, output_weight=a) for a in (1, 2, 3)]
    )
    etas = torch.tensor([0.05, 0.02, 0.01], dtype=torch.float64)
    result = gradient_descent(
        lambda th: net.loss_and_grad(th, x, y), theta0, etas, max_steps=60, record=True
    )
    theta, losses = theta0[1].clone(), []
    for k in range(61):
        f, grad = net.loss_and_grad(theta, x, y)
        losses.append(float(f))
        if k < 60:
            theta = theta - 0.02 * grad
    torch.testing.assert_close(result.history[:, 1], torch.tensor(losses, dtype=torch.float64))
    torch.testing.assert_close(result.theta[1], theta)
    assert int(result.iterations[1]) == 60 and not bool(result.converged[1])


def test_max_dist_is_the_largest_excursion():
    theta0 = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    # η = 1.5, λ = 1: θ_k = (−0.5)^k, so |θ_k − θ0| is largest at k = 1: 1.5.
    result = gradient_descent(quadratic, theta0, 1.5, max_steps=200)
    assert float(result.max_dist[0]) == pytest.approx(1.5)


# --- the trial-and-error rule (Remarks 4.4, 4.7) ------------------------------------------


@pytest.mark.parametrize("strategy", ["batch", "sequential"])
def test_ladder_picks_the_largest_converging_step_per_start(strategy):
    # Start 0 on e_1 (λ = 1), start 1 on e_2 (λ = 4). Ladder 1, 0.5, 0.25, 0.125:
    # start 0: η = 1 lands on the minimum in one step. Start 1: η = 1 diverges (factor 3),
    # η = 0.5 oscillates forever (factor −1: times out), η = 0.25 lands in one step.
    theta0 = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    result = eta_ladder(quadratic, theta0, [1.0, 0.5, 0.25, 0.125], max_steps=50, strategy=strategy)
    assert result.eta.tolist() == [1.0, 0.25]
    assert result.rung.tolist() == [0, 2]
    assert result.iterations.tolist() == [1, 1]
    assert bool(result.converged.all())
    assert result.outcome[1, :3].tolist() == [DIVERGED, TIMED_OUT, CONVERGED]
    if strategy == "batch":
        # Smaller steps were retired once a larger one had converged (or converged first).
        assert int(result.outcome[0, 1]) in (NOT_RUN, CONVERGED)
    else:
        assert result.outcome[0, 1:].tolist() == [NOT_RUN] * 3


def test_ladder_without_convergence_reports_nan_and_the_smallest_step():
    theta0 = torch.tensor([[0.0, 1.0]], dtype=torch.float64)
    result = eta_ladder(quadratic, theta0, [2.0, 1.0], max_steps=30)
    assert math.isnan(float(result.eta[0])) and int(result.rung[0]) == -1
    assert not bool(result.converged[0])
    assert result.outcome[0].tolist() == [DIVERGED, DIVERGED]


def test_both_ladder_strategies_choose_the_same_steps_on_a_network():
    g = torch.Generator().manual_seed(1)
    x = independent_inputs(4, 8, generator=g)
    y = torch.randn(4, generator=g, dtype=torch.float64)
    net = FeedForward(8, (4,), "smooth_leaky_relu", 0.2)
    theta0 = lecun_init(net, 6, generator=g)
    runs = [
        eta_ladder(
            lambda th: net.loss_and_grad(th, x, y),
            theta0,
            ladder(2.0, 2.0, 6),
            max_steps=3000,
            strategy=s,
        )
        for s in ("batch", "sequential")
    ]
    torch.testing.assert_close(runs[0].eta, runs[1].eta, equal_nan=True)
    assert torch.equal(runs[0].iterations, runs[1].iterations)


def test_ladder_helper_and_validation():
    assert ladder(1.0, 2.0, 4) == [1.0, 0.5, 0.25, 0.125]
    with pytest.raises(ValueError):
        ladder(1.0, 1.0, 3)
    with pytest.raises(ValueError, match="decreasing"):
        eta_ladder(quadratic, torch.zeros(1, 2, dtype=torch.float64), [0.1, 0.2], max_steps=1)


# --- the ball of Theorem 2.2 -----------------------------------------------------------------


def test_a_run_that_leaves_the_ball_is_not_chosen():
    # λ = 1 along e_1 from θ0 = e_1: η = 1.9 flips sign each step, |θ_1 − θ0| = 1.9, and
    # converges (|1 − η| = 0.9); η = 1.0 lands at 0 in one step (distance 1); η = 0.5 creeps in
    # (distance < 1). With r = 1.5 the ladder must skip η = 1.9 although it converges.
    theta0 = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    free = eta_ladder(quadratic, theta0, [1.9, 1.0, 0.5], max_steps=500, strategy="batch")
    assert free.eta.tolist() == [1.9]
    for strategy in ("batch", "sequential"):
        run = eta_ladder(
            quadratic, theta0, [1.9, 1.0, 0.5], max_steps=500, radius=1.5, strategy=strategy
        )
        assert run.eta.tolist() == [1.0] and bool(run.converged[0])
        assert run.left_ball[0].tolist()[:2] == [True, False]
        assert float(run.rung_max_dist[0, 0]) == pytest.approx(1.9)
        assert float(run.max_dist[0]) <= 1.5
    # Nothing stays within r = 0.1 (every path reaches distance 1 at the minimum): no choice.
    none = eta_ladder(quadratic, theta0, [1.0, 0.5], max_steps=500, radius=0.1)
    assert not bool(none.converged[0]) and math.isnan(float(none.eta[0]))
    assert bool(none.left_ball[0].all())


def test_gradient_descent_flags_rows_outside_the_radius():
    theta0 = torch.tensor([[1.0, 0.0], [1.0, 0.0]], dtype=torch.float64)
    etas = torch.tensor([1.9, 0.5], dtype=torch.float64)
    run = gradient_descent(quadratic, theta0, etas, max_steps=500, radius=1.5)
    assert run.left_ball.tolist() == [True, False] and bool(run.converged.all())


def test_labels_follow_the_rows_as_finished_ones_drop_out():
    # Two "data sets": F = ½ s θ² with s = 1 or 4; rows finish at different steps, and the
    # labels passed to loss_and_grad must stay attached to the rows still running.
    scale = torch.tensor([1.0, 4.0], dtype=torch.float64)
    seen = []

    def loss_and_grad(theta, labels):
        seen.append(labels.clone())
        s = scale[labels].unsqueeze(-1)
        return 0.5 * (s * theta**2).sum(-1), s * theta

    theta0 = torch.ones(4, 1, dtype=torch.float64)
    labels = torch.tensor([0, 1, 0, 1])
    run = gradient_descent(loss_and_grad, theta0, 0.2, max_steps=200, labels=labels)
    # |1 − 0.2 s|: 0.8 per step for s = 1, 0.2 for s = 4: label-1 rows finish much earlier.
    expected = [math.floor(math.log(1e-8) / (2 * math.log(1 - 0.2 * s))) + 1 for s in (1, 4)]
    assert run.iterations.tolist() == [expected[0], expected[1], expected[0], expected[1]]
    assert seen[-1].tolist() == [0, 0]


# --- binomial intervals -------------------------------------------------------------------


@pytest.mark.parametrize(("k", "n"), [(0, 10), (3, 10), (10, 10), (37, 64), (1, 1)])
@pytest.mark.parametrize("method", ["clopper-pearson", "wilson"])
def test_binomial_ci_matches_scipy(k, n, method):
    low, high = binomial_ci(k, n, level=0.9, method=method)
    scipy_method = "exact" if method == "clopper-pearson" else "wilson"
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=0.9, method=scipy_method)
    assert float(low) == pytest.approx(ci.low, abs=1e-12)
    assert float(high) == pytest.approx(ci.high, abs=1e-12)


def test_clopper_pearson_known_values_and_vectorization():
    # k = 0: the upper limit solves (1 − p)^n = α/2.
    low, high = binomial_ci([0, 10], [10, 10], level=0.95)
    np.testing.assert_allclose(low, [0.0, 0.025 ** (1 / 10)])
    np.testing.assert_allclose(high, [1 - 0.025 ** (1 / 10), 1.0])
    with pytest.raises(ValueError):
        binomial_ci(5, 3)
