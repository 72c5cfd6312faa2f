"""Batched GD and the trial-and-error rule against closed forms and a plain loop, the binomial
intervals against scipy, the claims of chatterjee_thm41/thm45 on hand-made tables, and small
runs of both experiments."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from sgdconv.chatterjee.claims import claims_thm41, claims_thm45
from sgdconv.chatterjee.descent import (
    CONVERGED,
    DIVERGED,
    NOT_RUN,
    TIMED_OUT,
    eta_ladder,
    gradient_descent,
    ladder,
)
from sgdconv.chatterjee.nets import simulate_thm41, simulate_thm45, thin_steps
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


# --- claims -------------------------------------------------------------------------------


def thm41_table(**overrides) -> pd.DataFrame:
    rows = {
        "depth": [2, 3],
        "width": [8, 8],
        "activation": ["tanh", "linear"],
        "F0": [0.5, 0.5],
        "F_final": [1e-9, 4e-9],
        "r": [0.5, 0.05],
        "alpha_hat": [20.0, 1600.0],
        "certificate_lb_holds": [False, True],
    }
    rows.update(overrides)
    return pd.DataFrame(rows)


def test_thm41_claim_holds_with_the_worst_case_metric():
    (claim,) = claims_thm41({"configs": thm41_table()}, {})
    # Both converged; 4F0/(r²α̂) = 4·0.5/(0.25·20) = 0.4 and 4·0.5/(0.0025·1600) = 0.5.
    assert claim.value == pytest.approx(0.5)
    assert claim.holds
    assert "1/2" in claim.note and "failing" not in claim.note


def test_thm41_claim_fails_when_a_configuration_does_not_converge_or_certify():
    (claim,) = claims_thm41({"configs": thm41_table(F_final=[1e-9, 1e-6])}, {})
    assert not claim.holds and "L=3 w=8 linear: not converged" in claim.note
    assert math.isinf(claim.value)
    (claim,) = claims_thm41({"configs": thm41_table(alpha_hat=[7.0, 1600.0])}, {})
    assert not claim.holds and "certificate fails" in claim.note
    assert claim.value == pytest.approx(4 * 0.5 / (0.25 * 7.0))
    (claim,) = claims_thm41({"configs": thm41_table(F_final=[1e-9, math.nan])}, {})
    assert not claim.holds


def thm45_table(fractions: list[float], seeds: int = 20) -> pd.DataFrame:
    k = [round(f * seeds) for f in fractions]
    low, high = binomial_ci(k, [seeds] * len(k))
    return pd.DataFrame(
        {
            "n": [16, 4, 8][: len(k)],
            "seeds": seeds,
            "converged": k,
            "fraction": [c / seeds for c in k],
            "ci_low": low,
            "ci_high": high,
            "ci_level": 0.95,
            "ci_method": "clopper-pearson",
        }
    )


def test_thm45_claim_compares_the_largest_and_smallest_n():
    # Rows are sorted by n inside the claim: n = 4 has 1.0, n = 16 has 0.6.
    (claim,) = claims_thm45({"fractions": thm45_table([0.6, 1.0, 0.8])}, {"tol": 1e-8})
    assert claim.value == pytest.approx(0.6) and claim.holds
    (claim,) = claims_thm45({"fractions": thm45_table([0.4, 1.0, 0.8])}, {})
    assert claim.value == pytest.approx(0.4) and not claim.holds
    (claim,) = claims_thm45({"fractions": thm45_table([0.0, 0.0, 0.5])}, {})
    assert claim.value == 0.0 and not claim.holds
    (claim,) = claims_thm45({"fractions": thm45_table([0.3, 0.0, 0.5])}, {})
    assert math.isinf(claim.value) and claim.holds


# --- the experiments ----------------------------------------------------------------------

THM41 = {
    "depths": [2, 3],
    "widths": [4],
    "activations": ["tanh", "linear"],
    "leaky_slope": 0.2,
    "n": 4,
    "d": 8,
    "inputs": "gaussian",
    "middle_range": [0.5, 1.0],
    "delta_two_layer": 1.0,
    "a_start": 1.0,
    "a_factor": 2.0,
    "a_trials": 12,
    "epsilon": 0.25,
    "eta_max": 1.0,
    "eta_factor": 2.0,
    "eta_rungs": 10,
    "max_steps": 3000,
    "tol": 1e-8,
    "divergence_factor": 1e4,
    "search": {"n_random": 32, "n_starts": 4, "n_steps": 30},
}


def test_simulate_thm41_small():
    tables = simulate_thm41(THM41, seed=3)
    configs = tables["configs"]
    assert len(configs) == 4
    assert bool(configs["converged"].all()) and bool(configs["certificate_holds"].all())
    assert bool((configs["alpha_lb"] <= configs["alpha_hat"]).all())
    assert bool((configs["loss_ratio_final"] < 1e-8).all())
    # Linear activation: every c_ℓ = 1, so the proof's A is finite.
    assert bool(np.isfinite(configs.loc[configs["activation"] == "linear", "A_proof"]).all())
    curves = tables["curves"]
    assert set(curves.columns) == {"depth", "width", "activation", "step", "loss_ratio"}
    assert bool((curves.groupby(["depth", "activation"])["loss_ratio"].first() == 1.0).all())
    trials = tables["trials"]
    # The chosen A is the first one where both the certificate and GD succeeded.
    for row in configs.itertuples():
        mine = trials[(trials["depth"] == row.depth) & (trials["activation"] == row.activation)]
        ok = mine[mine["accepted"] & mine["converged"]]
        assert ok["A"].iloc[0] == row.A and len(mine) == row.a_trials
    # A is accepted under (2.2): 4 F(θ0) < (1 − ε)² r² α̂.
    ratio = 4 * configs["F0"] / (configs["r"] ** 2 * configs["alpha_hat"])
    assert bool((ratio < (1 - THM41["epsilon"]) ** 2).all())
    again = simulate_thm41(THM41, seed=3)["configs"]
    pd.testing.assert_frame_equal(configs, again)  # reproducible


def test_simulate_thm45_small():
    settings = {
        "ns": [2, 4],
        "d_over_n": 2.0,
        "widths": [4],
        "leaky_slope": 0.2,
        "c": 1.0,
        "inputs": "gaussian",
        "seeds": 6,
        "eta_max": 1.0,
        "eta_factor": 2.0,
        "eta_rungs": 6,
        "max_steps": 3000,
        "tol": 1e-8,
        "divergence_factor": 1e4,
        "ci_level": 0.95,
        "ci_method": "wilson",
    }
    tables = simulate_thm45(settings, seed=4)
    fractions, runs = tables["fractions"], tables["runs"]
    assert fractions["d"].tolist() == [4, 8] and len(runs) == 12
    for row in fractions.itertuples():
        mine = runs[runs["n"] == row.n]
        assert row.converged == int(mine["converged"].sum())
        assert row.ci_low <= row.fraction <= row.ci_high
    done = runs[runs["converged"]]
    assert bool((done["F_final"] < 1e-8 * done["F0"]).all())


def test_thin_steps_keeps_both_ends():
    steps = thin_steps(10_000, points=50)
    assert steps[0] == 0 and steps[-1] == 10_000 and len(steps) <= 50
    assert thin_steps(3).tolist() == [0, 1, 2, 3]


def test_workload_net_size_is_eq_4_1():
    from sgdconv.chatterjee.workload import cluster_minutes, net_size

    for d, widths in ((20, (8,)), (64, (16, 16)), (7, (5, 3, 2))):
        assert net_size(d, widths) == FeedForward(d, widths).p
    assert cluster_minutes(0) == 10 and cluster_minutes(1e30) == 24 * 60
