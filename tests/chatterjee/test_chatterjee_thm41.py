"""chatterjee_thm41: the claim on hand-made tables (holding, and failing where Theorems 2.1/2.2
are false: a run that leaves the ball, one that does not converge, a refuted certificate), and a
small run of the experiment (the chosen steps stay in the ball; reproducible)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from sgdconv.chatterjee.claims import claims_thm41
from sgdconv.chatterjee.nets import simulate_thm41, thin_steps


def thm41_table(**overrides) -> pd.DataFrame:
    rows = {
        "depth": [2, 3],
        "width": [8, 8],
        "activation": ["tanh", "linear"],
        "F0": [0.5, 0.5],
        "F_final": [1e-9, 4e-9],
        "r": [0.5, 0.05],
        "alpha_hat": [20.0, 1600.0],
        "max_dist_over_r": [0.3, 0.45],
        "rungs_left_ball": [3, 0],
        "certificate_lb_holds": [False, True],
    }
    rows.update(overrides)
    return pd.DataFrame(rows)


def test_thm41_claim_holds_with_the_worst_case_metric():
    (claim,) = claims_thm41({"configs": thm41_table()}, {})
    # Both converged inside the ball; 4F0/(r²α̂) = 4·0.5/(0.25·20) = 0.4 and 0.5; excursions
    # 0.3 and 0.45: the worst of everything is 0.5.
    assert claim.value == pytest.approx(0.5)
    assert claim.holds
    assert "1/2" in claim.note and "failing" not in claim.note
    assert "left the ball in 1/2" in claim.note


def test_thm41_claim_fails_for_a_run_that_leaves_the_ball():
    # GD converged, but after travelling 6 r from θ0: Theorem 2.2 keeps every iterate in
    # B(θ0, r), so this run is not one the theorem speaks for and the claim fails.
    (claim,) = claims_thm41({"configs": thm41_table(max_dist_over_r=[6.0, 0.45])}, {})
    assert not claim.holds and claim.value == pytest.approx(6.0)
    assert "L=2 w=8 tanh: left the ball" in claim.note


def test_thm41_claim_fails_when_a_configuration_does_not_converge_or_certify():
    (claim,) = claims_thm41({"configs": thm41_table(F_final=[1e-9, 1e-6])}, {})
    assert not claim.holds and "L=3 w=8 linear: no step of the ladder converged" in claim.note
    assert math.isinf(claim.value)
    (claim,) = claims_thm41({"configs": thm41_table(alpha_hat=[7.0, 1600.0])}, {})
    assert not claim.holds and "certificate refuted" in claim.note
    assert claim.value == pytest.approx(4 * 0.5 / (0.25 * 7.0))
    (claim,) = claims_thm41({"configs": thm41_table(F_final=[1e-9, math.nan])}, {})
    assert not claim.holds
    (claim,) = claims_thm41({"configs": thm41_table().iloc[:0]}, {})
    assert not claim.holds


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
    # The chosen runs stay in B(θ0, r), as the ladder demands.
    assert bool((configs["max_dist_over_r"] <= 1.0).all())
    assert bool((configs["alpha_lb"] <= configs["alpha_hat"]).all())
    assert bool((configs["loss_ratio_final"] < 1e-8).all())
    # α̂ is the smaller of the selecting search and the independent one at the chosen A.
    np.testing.assert_allclose(
        configs["alpha_hat"], np.minimum(configs["alpha_hat_select"], configs["alpha_hat_verify"])
    )
    # Linear activation: every c_ℓ = 1, so the proof's A is finite.
    assert bool(np.isfinite(configs.loc[configs["activation"] == "linear", "A_proof"]).all())
    curves = tables["curves"]
    assert set(curves.columns) == {"depth", "width", "activation", "step", "loss_ratio"}
    assert bool((curves.groupby(["depth", "activation"])["loss_ratio"].first() == 1.0).all())
    trials = tables["trials"]
    # The chosen A is the first one where both the certificate and GD in the ball succeeded.
    for row in configs.itertuples():
        mine = trials[(trials["depth"] == row.depth) & (trials["activation"] == row.activation)]
        ok = mine[mine["accepted"] & mine["converged"]]
        assert ok["A"].iloc[0] == row.A and len(mine) == row.a_trials
    # A is accepted under (2.2): 4 F(θ0) < (1 − ε)² r² α̂ of the selecting search.
    ratio = 4 * configs["F0"] / (configs["r"] ** 2 * configs["alpha_hat_select"])
    assert bool((ratio < (1 - THM41["epsilon"]) ** 2).all())
    # The ladder table: one chosen rung per configuration, in the ball, with the table's η;
    # every larger rung either diverged, left the ball or ran out of steps.
    ladder = tables["ladder"]
    chosen = ladder[ladder["chosen"]]
    assert len(chosen) == 4 and bool((chosen["outcome"] == "converged in the ball").all())
    merged = chosen.merge(configs, on=["depth", "width", "activation"])
    np.testing.assert_allclose(merged["eta_x"], merged["eta_y"])
    for _, rungs in ladder.groupby(["depth", "width", "activation"]):
        first = int(rungs.loc[rungs["chosen"], "rung"].iloc[0])
        assert "converged in the ball" not in set(rungs.loc[rungs["rung"] < first, "outcome"])
    again = simulate_thm41(THM41, seed=3)["configs"]
    pd.testing.assert_frame_equal(configs, again)  # reproducible


def test_thin_steps_keeps_both_ends():
    steps = thin_steps(10_000, points=50)
    assert steps[0] == 0 and steps[-1] == 10_000 and len(steps) <= 50
    assert thin_steps(3).tolist() == [0, 1, 2, 3]


def test_workload_net_size_is_eq_4_1():
    from sgdconv.chatterjee.workload import cluster_minutes, net_size
    from sgdconv.models.feedforward import FeedForward

    for d, widths in ((20, (8,)), (64, (16, 16)), (7, (5, 3, 2))):
        assert net_size(d, widths) == FeedForward(d, widths).p
    assert cluster_minutes(0) == 10 and cluster_minutes(1e30) == 24 * 60
