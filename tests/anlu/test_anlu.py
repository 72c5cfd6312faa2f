"""An & Lu experiments: the problem setup, small end-to-end simulations of Theorem 4.1 and Lemma
4.2 (table contracts), and their claim functions on hand-made tables, both holding and failing
(Theorem 3.1: test_anlu_thm31.py)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from sgdconv.anlu.bounded import simulate_lem42, simulate_thm41
from sgdconv.anlu.claims import claims_lem42, claims_thm31, claims_thm41
from sgdconv.anlu.setup import build_problem
from sgdconv.claims import evaluate

NET = {
    "d": 4,
    "n": 2,
    "widths": [3],
    "activation": "smooth_leaky_relu",
    "leaky_slope": 0.5,
    "output_weight": 2.5,
    "inputs": "orthonormal",
}
EFFORT = {
    "certificate": {"n_random": 16, "n_starts": 2, "n_steps": 5},
    "smoothness": {"n_points": 4, "n_iter": 10, "n_starts": 1, "n_steps": 3},
}
SEEDS = {"data": 1, "constants": 2, "noise": 3}


CLAIM_FUNCTIONS = {
    "anlu_thm31": claims_thm31,
    "anlu_thm41": claims_thm41,
    "anlu_lem42": claims_lem42,
}


def _verdicts(artifact, tables):
    frame = evaluate(artifact, CLAIM_FUNCTIONS[artifact], tables, {})
    return {row.claim_id: row for row in frame.itertuples(index=False)}


# --- setup ------------------------------------------------------------------------------------


def test_targets_set_f_theta0_exactly_and_theta0_is_chatterjee():
    problem = build_problem(NET, seed=5)
    theta0 = problem.theta0.unsqueeze(0)
    for f0 in (0.01, 1.0, 7.5):
        assert float(problem.loss(f0)(theta0)[0]) == pytest.approx(f0, rel=1e-12)
    rows = problem.loss(torch.tensor([1.0, 4.0]))(theta0.expand(2, -1))
    torch.testing.assert_close(rows, torch.tensor([1.0, 4.0], dtype=torch.float64))
    (w1, b1), (w2, b2) = problem.net.layers(problem.theta0)
    assert float(w1.abs().max()) == 0 and float(b1.abs().max()) == 0 and float(b2.abs()) == 0
    assert bool((w2 == 2.5).all())
    # Depth 2, A > r: Chatterjee's Section-7 bound applies; it must sit below the search value.
    assert 0 < problem.alpha_lower_bound(1.0) < math.inf


def test_only_depth_two_networks_are_accepted():
    with pytest.raises(ValueError, match="depth-2"):
        build_problem({**NET, "widths": [3, 3]}, seed=0)


# --- end to end on tiny settings (table contracts) ------------------------------------------


def test_thm41_and_lem42_tables_share_the_problem():
    settings = {
        "net": NET,
        "f0": 0.01,
        "radius": 0.5,
        "noise_c": 5.0,
        "gamma_alpha": 3.0,
        "n0_factor": 1.0,
        "q": [1.0, 0.75],
        "n_trajectories": 4,
        "n_steps": 300,
        "n_records": 12,
        "fit_from_n0": 2.0,
        **EFFORT,
    }
    thm41 = simulate_thm41({k: v for k, v in settings.items() if k != "fit_from_n0"}, SEEDS)
    lem42 = simulate_lem42(settings, {**SEEDS, "noise": 4})
    c41, c42 = thm41["conditions"], lem42["conditions"]
    assert sorted(c41["noise"].unique()) == ["rotated", "unrotated"]
    assert len(c41) == 4 and len(c42) == 2
    # Same data and constants' seeds: the same α̂, Ĉ_L, hence the same schedules.
    for column in ("alpha_hat", "c_l_hat", "gamma", "n0"):
        np.testing.assert_allclose(
            c41.groupby("q")[column].first(), c42.set_index("q")[column].sort_index()
        )
    assert bool((c41["gamma_alpha"] > 2).all())
    # Σ_{j<k} η_j of the stored table equals the schedule summed by hand.
    row = c41.iloc[0]
    part = thm41["steps"][
        (thm41["steps"]["q"] == row["q"]) & (thm41["steps"]["noise"] == "rotated")
    ]
    last = int(part["step"].max())
    by_hand = sum(row["gamma"] / (k + row["n0"]) ** row["q"] for k in range(last))
    assert float(part["sum_eta"].iloc[-1]) == pytest.approx(by_hand, rel=1e-12)
    steps = lem42["steps"]
    assert {"mean_f_given_stay", "mean_f_in", "p_inside", "bound", "fit_line"} <= set(steps)


# --- claims on hand-made tables ---------------------------------------------------------------


def _thm41_tables(escaped):
    rows = []
    for q, p in escaped.items():
        rows.append(
            {
                "q": q,
                "noise": "rotated",
                "p_escaped": p,
                "exit_step_median": 100.0,
                "n_trajectories": 200,
                "n_steps": 1000,
                "r": 0.5,
            }
        )
        rows.append({**rows[-1], "noise": "unrotated", "p_escaped": 0.0})
    return {"conditions": pd.DataFrame(rows), "steps": pd.DataFrame()}


def test_thm41_claim_holds_and_fails():
    ok = _verdicts("anlu_thm41", _thm41_tables({1.0: 1.0, 0.75: 0.995}))[
        "anlu_bounded_noise_escapes"
    ]
    assert ok.holds is True and ok.value == pytest.approx(0.995)
    bad = _verdicts("anlu_thm41", _thm41_tables({1.0: 0.98, 0.75: 1.0}))[
        "anlu_bounded_noise_escapes"
    ]
    assert bad.holds is False and bad.value == pytest.approx(0.98)


def _lem42_tables(exponents):
    """E F(θ_k) = k^(−exponent) exactly, for each q (key) with n0 = 10."""
    k = np.unique(np.logspace(0, 4, 40).round())
    conditions, steps = [], []
    for q, exponent in exponents.items():
        conditions.append({"q": q, "n0": 10, "fit_from_n0": 10.0, "p_stay": 1.0})
        steps.append(pd.DataFrame({"q": q, "step": k, "mean_f_given_stay": 0.3 * k**-exponent}))
    return {"conditions": pd.DataFrame(conditions), "steps": pd.concat(steps, ignore_index=True)}


def test_lem42_claim_holds_and_fails():
    ok = _verdicts("anlu_lem42", _lem42_tables({1.0: 1.0, 0.75: 0.8}))["anlu_lem42_rate"]
    assert ok.holds is True and ok.value == pytest.approx(0.05)
    k = _lem42_tables({1.0: 1.0})["steps"]["step"]
    first = int(k[k >= 100].min())  # the window starts at fit_from_n0 · n0 = 100
    assert f"k in [{first}," in ok.note
    bad = _verdicts("anlu_lem42", _lem42_tables({1.0: 0.5, 0.75: 0.75}))["anlu_lem42_rate"]
    assert bad.holds is False and bad.value == pytest.approx(0.5)
    # A transient before the window does not count: steep decay below k = 100, then k^(−q).
    tables = _lem42_tables({1.0: 1.0})
    early = tables["steps"]["step"] < 100
    tables["steps"].loc[early, "mean_f_given_stay"] *= (100 / tables["steps"]["step"][early]) ** 3
    assert _verdicts("anlu_lem42", tables)["anlu_lem42_rate"].value == pytest.approx(0.0, abs=1e-9)
