"""chatterjee_thm45: the claims on hand-made tables (holding; failing when the converging
fraction collapses for d/n >= 1; a collapse below 1, outside the hypothesis, not counted), the
cost slope against a power law, the per-data-set gradients against autograd, and a small run
of the sweep through d/n = 1."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from sgdconv.chatterjee.claims import claims_thm45, cost_slope
from sgdconv.chatterjee.lecun import DataSets, simulate_thm45
from sgdconv.models.feedforward import FeedForward, lecun_init
from sgdconv.montecarlo.binomial import binomial_ci


def thm45_table(fractions: dict[float, list[float]], seeds: int = 20) -> pd.DataFrame:
    """One row per (d/n, n), n = 4, 8, 16, with the given converging fractions and
    iterations growing like n²."""
    rows = []
    for ratio, values in fractions.items():
        for n, f in zip((4, 8, 16), values, strict=True):
            k = round(f * seeds)
            low, high = binomial_ci(k, seeds)
            rows.append(
                {
                    "d_over_n": ratio,
                    "n": n,
                    "seeds": seeds,
                    "converged": k,
                    "fraction": k / seeds,
                    "ci_low": float(low),
                    "ci_high": float(high),
                    "ci_level": 0.95,
                    "ci_method": "clopper-pearson",
                    "median_iterations": 10.0 * n**2 if k else math.nan,
                    "max_steps": 5000,
                }
            )
    return pd.DataFrame(rows)


def _by_id(claims):
    out = {}
    for claim in claims:
        out.setdefault(claim.claim_id, []).append(claim)
    return out


def test_thm45_claim_holds_when_the_fraction_stays_up_for_d_over_n_at_least_1():
    # d/n = 0.5 collapses (outside the hypothesis): it does not enter the claim.
    table = thm45_table({2.0: [1.0, 0.9, 0.6], 1.0: [1.0, 1.0, 0.8], 0.5: [0.8, 0.2, 0.0]})
    claims = _by_id(claims_thm45({"fractions": table}, {"tol": 1e-8}))
    (bounded,) = claims["chatterjee_thm45_bounded_below"]
    assert bounded.holds and bounded.value == pytest.approx(0.6)
    assert "d/n=0.5 (outside the hypothesis, not in the claim)" in bounded.note
    assert len(claims["chatterjee_thm45_cost"]) == 3


def test_thm45_claim_fails_when_the_fraction_collapses_for_d_over_n_at_least_1():
    # At d/n = 1 the fraction falls from 1.0 to 0.4 (< 0.5 ×): the statement is false there.
    table = thm45_table({2.0: [1.0, 1.0, 1.0], 1.0: [1.0, 0.7, 0.4]})
    (bounded,) = _by_id(claims_thm45({"fractions": table}, {}))["chatterjee_thm45_bounded_below"]
    assert not bounded.holds and bounded.value == pytest.approx(0.4)
    # A fraction of 0 at the largest n fails the "> 0" half whatever the smallest n had.
    table = thm45_table({2.0: [0.0, 0.0, 0.0]})
    (bounded,) = _by_id(claims_thm45({"fractions": table}, {}))["chatterjee_thm45_bounded_below"]
    assert not bounded.holds and bounded.value == 0.0
    # Only the smallest n had none: the ratio is +inf, and the claim holds.
    table = thm45_table({2.0: [0.0, 0.5, 0.3]})
    (bounded,) = _by_id(claims_thm45({"fractions": table}, {}))["chatterjee_thm45_bounded_below"]
    assert math.isinf(bounded.value) and bounded.holds
    # No ratio >= 1 at all: nothing supports the claim.
    table = thm45_table({0.5: [1.0, 1.0, 1.0]})
    (bounded,) = _by_id(claims_thm45({"fractions": table}, {}))["chatterjee_thm45_bounded_below"]
    assert not bounded.holds


def test_cost_slope_recovers_a_power_law():
    table = thm45_table({2.0: [1.0, 1.0, 1.0]})
    slope, se, points = cost_slope(table)
    assert slope == pytest.approx(2.0) and se == pytest.approx(0.0, abs=1e-9) and points == 3
    (cost,) = _by_id(claims_thm45({"fractions": table}, {}))["chatterjee_thm45_cost"]
    assert cost.op == "report" and cost.holds is None and cost.value == pytest.approx(2.0)
    # Where no seed converged the median is missing and the fit uses the others.
    table = thm45_table({1.0: [1.0, 1.0, 0.0]})
    assert cost_slope(table)[2] == 2 and math.isnan(cost_slope(table)[1])


def test_per_data_set_gradients_match_autograd():
    net = FeedForward(5, (3, 2), "smooth_leaky_relu", 0.2)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 4, 5, generator=g, dtype=torch.float64)
    y = torch.randn(3, 4, generator=g, dtype=torch.float64)
    theta = lecun_init(net, 6, generator=g)
    labels = torch.tensor([0, 1, 2, 2, 1, 0])
    loss, grad = DataSets(net, x, y).loss_and_grad(theta, labels)
    for b in range(6):
        f, gb = net.loss_and_grad(theta[b : b + 1], x[labels[b]], y[labels[b]])
        torch.testing.assert_close(loss[b], f[0])
        torch.testing.assert_close(grad[b], gb[0])


SETTINGS = {
    "ns": [2, 4],
    "d_over_n": [2.0, 0.5],
    "datasets": 3,
    "widths": [2],
    "leaky_slope": 0.2,
    "c": 1.0,
    "inputs": "gaussian",
    "seeds": 6,
    "eta_max": 1.0,
    "eta_factor": 2.0,
    "eta_rungs": 6,
    "max_steps": 2000,
    "tol": 1e-8,
    "divergence_factor": 1e4,
    "ci_level": 0.95,
    "ci_method": "wilson",
}


def test_simulate_thm45_small():
    tables = simulate_thm45(SETTINGS, seed=4)
    fractions, runs = tables["fractions"], tables["runs"]
    assert fractions["d"].tolist() == [4, 8, 1, 2] and len(runs) == 24
    assert fractions["within_hypothesis"].tolist() == [True, True, False, False]
    # d < n: the n×n Gram matrix has rank d, α = 0.
    assert bool((fractions.loc[~fractions["within_hypothesis"], "alpha_X"] < 1e-9).all())
    assert bool((fractions.loc[fractions["within_hypothesis"], "alpha_X"] > 0).all())
    assert sorted(runs["dataset"].unique().tolist()) == [0, 1, 2]
    for row in fractions.itertuples():
        mine = runs[(runs["n"] == row.n) & (runs["d_over_n"] == row.d_over_n)]
        assert row.converged == int(mine["converged"].sum())
        assert row.ci_low <= row.fraction <= row.ci_high
        done = mine[mine["converged"]]
        if len(done):
            assert row.median_iterations == float(np.median(done["iterations"]))
    done = runs[runs["converged"]]
    assert bool((done["F_final"] < 1e-8 * done["F0"]).all())
    again = simulate_thm45(SETTINGS, seed=4)["runs"]
    pd.testing.assert_frame_equal(runs, again)  # reproducible
