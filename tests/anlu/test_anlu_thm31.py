"""anlu_thm31: the noiseless crossover, a small run of the three parts (table contracts), paired
standard errors, and the claims on hand-made tables where Theorem 3.1's statements are false:
a stay probability that falls as F(θ0) decreases, one that does not depend on σ where it should,
a decay slower than ρ inside the step bound."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from sgdconv.anlu.claims import claims_thm31
from sgdconv.anlu.crossover import noiseless_crossover, noiseless_reach
from sgdconv.anlu.setup import build_problem
from sgdconv.anlu.stay import difference, stay_curve
from sgdconv.anlu.thm31 import simulate_thm31

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
SETTINGS = {
    "net": NET,
    **EFFORT,
    "radius": 1.5,
    "f0": [0.5, 50.0],
    "sigma": [0.0, 10.0],
    "refine_points": 3,
    "refine_low": -0.01,
    "refine_high": 0.002,
    "sweep_f0_fraction": 0.9,
    "sweep_sigma": [0.0, 500.0],
    "bounded": True,
    "eta_factor": 1.0,
    "n_trajectories": 3,
    "n_steps": 60,
    "n_records": 5,
    "converge_tol": 1e-8,
}


def _by_id(claims):
    return {claim.claim_id: claim for claim in claims}


# --- the crossover and the run -------------------------------------------------------------


def test_noiseless_crossover_brackets_the_f0_where_the_path_reaches_the_radius():
    problem = build_problem(NET, seed=5)
    low, high = noiseless_crossover(problem, 0.01, 0.5, 200, 0.1, 100.0, points=8, rounds=3)
    assert low < high and high / low - 1 < 0.05  # (1000^(1/7) − 1) / 7² ≈ 3.4%
    reach = noiseless_reach(problem, torch.tensor([low, high]), 0.01, 200)
    assert float(reach[0]) <= 0.5 < float(reach[1])
    with pytest.raises(ValueError, match="widen the F"):
        noiseless_crossover(problem, 0.01, 0.5, 200, 1e-3, 1e-2, points=4)


def test_thm31_tables():
    tables = simulate_thm31(SETTINGS, SEEDS)
    conditions, steps, runs = tables["conditions"], tables["steps"], tables["trajectories"]
    f0_star = float(conditions["f0_star"].iloc[0])
    assert conditions["eta"].nunique() == 1
    parts = conditions.groupby("part").size().to_dict()
    # grid: (2 coarse + 3 refined) F(θ0) × 2 σ; sweep: 2 σ; bounded: the σ > 0 of the sweep.
    assert parts == {"grid": 10, "sweep": 2, "bounded": 1}
    grid = conditions[conditions["part"] == "grid"]
    refined = np.sort(grid.loc[grid["refined"], "f0"].unique())
    np.testing.assert_allclose(refined, f0_star * (1 + np.array([-0.01, -0.004, 0.002])))
    # Inside the bound on the grid (η is set by its largest σ); the bounded noise never is.
    assert bool(grid["within_step_bound"].all())
    bounded = conditions[conditions["part"] == "bounded"].iloc[0]
    assert bounded["noise"] == "bounded" and not bounded["within_step_bound"]
    assert bounded["c"] ** 2 == pytest.approx(500.0 * bounded["f0"])
    assert math.isnan(bounded["rho"])
    # Noiseless conditions are one deterministic path, with an exact interval.
    quiet = conditions[conditions["sigma"] == 0]
    assert bool(quiet["deterministic"].all()) and bool((quiet["n_trajectories"] == 1).all())
    assert bool((quiet["ci_low"] == quiet["p_stay_converge"]).all())
    # The noiseless path stays below the crossover F0* and leaves above it (the bracket
    # [F0*, F_out] is far narrower than the refined grid's 0.2% above F0*).
    noiseless = grid[(grid["sigma"] == 0) & grid["refined"]].sort_values("f0")
    assert noiseless["p_stay"].tolist() == [1.0, 1.0, 0.0]
    assert f0_star < float(conditions["f0_star_out"].iloc[0]) < f0_star * 1.002
    # Per-trajectory outcomes of every noisy condition, consistent with the probabilities.
    noisy = conditions[~conditions["deterministic"]]
    assert len(runs) == 3 * len(noisy)
    joined = runs.groupby(["part", "noise", "f0", "sigma"])["stay"].mean().rename("p")
    merged = noisy.set_index(["part", "noise", "f0", "sigma"]).join(joined)
    np.testing.assert_allclose(merged["p"], merged["p_stay"])
    # At k = 0 everyone is inside, E[F 1_E] = F(θ0).
    first = steps[steps["step"] == 0]
    np.testing.assert_allclose(first["mean_f_in"], first["f0"])
    assert bool((first["p_inside"] == 1).all())
    again = simulate_thm31(SETTINGS, SEEDS)["conditions"]
    pd.testing.assert_frame_equal(conditions, again)  # reproducible


# --- paired differences ------------------------------------------------------------------


def _row(part, f0, sigma, outcomes, *, deterministic=False, noise="machine learning"):
    outcomes = np.asarray(outcomes, dtype=bool)
    return {
        "part": part,
        "noise": noise,
        "f0": f0,
        "sigma": sigma,
        "p_stay_converge": float(outcomes.mean()),
        "p_stay": float(outcomes.mean()),
        "p_converge": 1.0,
        "n_trajectories": 1 if deterministic else len(outcomes),
        "deterministic": deterministic,
    }


def _runs(part, f0, sigma, outcomes, noise="machine learning"):
    return pd.DataFrame(
        {
            "part": part,
            "noise": noise,
            "f0": f0,
            "sigma": sigma,
            "trajectory": np.arange(len(outcomes)),
            "stay": np.asarray(outcomes, dtype=bool),
            "converge": True,
        }
    )


def test_paired_differences_use_the_common_random_numbers():
    # 100 trajectories; b differs from a in 10 of them (a stays, b leaves): p(a) − p(b) = 0.1
    # with paired SE = sd(d)/√n = √(0.1·0.9·100/99)/10, far below the independent one.
    a_out = np.r_[np.ones(60), np.zeros(40)]
    b_out = np.r_[np.ones(50), np.zeros(50)]
    a, b = _row("grid", 2.0, 1.0, a_out), _row("grid", 1.0, 1.0, b_out)
    runs = pd.concat([_runs("grid", 2.0, 1.0, a_out), _runs("grid", 1.0, 1.0, b_out)])
    paired = difference(pd.Series(a), pd.Series(b), runs)
    assert paired.value == pytest.approx(0.1) and paired.n == 100
    assert paired.se == pytest.approx(math.sqrt(0.1 * 0.9 * 100 / 99) / 10)
    independent = difference(pd.Series(a), pd.Series(b), None)
    assert independent.se == pytest.approx(math.sqrt(0.6 * 0.4 / 100 + 0.5 * 0.5 / 100))
    # A deterministic condition pairs as a constant; all outcomes flipping: SE floored at 1/n.
    c = _row("grid", 3.0, 0.0, [True], deterministic=True)
    flipped = difference(pd.Series(c), pd.Series(_row("grid", 3.0, 1.0, np.zeros(50))), None)
    assert flipped.value == 1.0 and flipped.z() == pytest.approx(50.0)


# --- claims on hand-made tables --------------------------------------------------------------


def thm31_tables(grid, sweep, *, n=100, rates=None, rho=0.95, outside_rate=None):
    """grid: {σ: {F(θ0): number of trajectories (of n) that stay and converge}}; sweep: the same
    at one F(θ0) by σ. Outcomes are nested (trajectory i stays iff i < count), as common random
    numbers make them; steps decay at ``rates`` ((F, σ) -> factor, default 0.9)."""
    rows, runs, steps = [], [], []
    k = np.arange(0, 101, 10)

    def add(part, f0, sigma, count, within, noise="machine learning"):
        det = sigma == 0 and noise != "bounded"
        outcomes = np.arange(1 if det else n) < (count if not det else int(count > 0))
        row = _row(part, f0, sigma, outcomes, deterministic=det, noise=noise)
        rate = (rates or {}).get((f0, sigma), 0.9)
        row.update(within_step_bound=within, rho=rho, f0_star=2.0, eta=1e-3, refined=False)
        rows.append(row)
        if not det:
            runs.append(_runs(part, f0, sigma, outcomes, noise))
        steps.append(
            pd.DataFrame(
                {
                    "part": part,
                    "noise": noise,
                    "f0": f0,
                    "sigma": sigma,
                    "step": k,
                    "mean_f_in": f0 * rate**k,
                }
            )
        )

    for sigma, curve in grid.items():
        for f0, count in curve.items():
            add("grid", f0, sigma, count, True)
    for sigma, count in sweep.items():
        add("sweep", 1.9, sigma, count, sigma <= 10)
    add("bounded", 1.9, max(sweep), 0, False, noise="bounded")
    if outside_rate is not None:  # a condition outside the bound that decays too slowly
        add("grid", 0.5, 1e4, n, False)
        steps[-1]["mean_f_in"] = 0.5 * outside_rate**k
    return {
        "conditions": pd.DataFrame(rows),
        "steps": pd.concat(steps, ignore_index=True),
        "trajectories": pd.concat(runs, ignore_index=True),
    }


GRID = {0.0: {1.0: 1, 2.0: 1, 2.02: 0, 4.0: 0}, 10.0: {1.0: 100, 2.0: 60, 2.02: 10, 4.0: 0}}
SWEEP = {0.0: 100, 10.0: 100, 100.0: 40, 1000.0: 0}


def test_thm31_claims_hold_when_they_should():
    claims = _by_id(claims_thm31(thm31_tables(GRID, SWEEP), {}))
    stay = claims["anlu_stay_probability_rises"]
    assert stay.holds and stay.value == pytest.approx(1.0)
    assert "σ=10: max 1, 2 F(θ0) strictly in (0, 1)" in stay.note
    noise = claims["anlu_noise_lowers_stay_probability"]
    assert noise.holds and noise.value == pytest.approx(100.0)  # 1 − 0, SE floored at 1/100
    assert "σ=100 (outside the bound): 0.4" in noise.note and "Bounded noise" in noise.note
    rate = claims["anlu_rate_within_bound"]
    assert rate.holds and rate.value == pytest.approx(0.9) and rate.threshold == 0.95


def test_stay_claim_fails_when_the_probability_falls_as_f0_decreases():
    # σ = 10: 60 of 100 stay at F = 2 but only 30 at F = 1: a paired drop of 0.3, SE ≈ 0.046.
    grid = {**GRID, 10.0: {1.0: 30, 2.0: 60, 2.02: 10, 4.0: 0}}
    stay = _by_id(claims_thm31(thm31_tables(grid, SWEEP), {}))["anlu_stay_probability_rises"]
    assert not stay.holds and stay.value == 0.0
    assert "a decrease of 0.3" in stay.note and "at F(θ0)=1" in stay.note
    # A dip of 2 trajectories in 100 (0.02, SE 0.014) is within 2 SE: not counted.
    grid = {**GRID, 10.0: {1.0: 98, 2.0: 100, 2.02: 10, 4.0: 0}}
    stay = _by_id(claims_thm31(thm31_tables(grid, SWEEP), {}))["anlu_stay_probability_rises"]
    assert stay.holds and "an unresolved dip of 0.02" in stay.note
    # Monotone but never reaching 0.9.
    low = {10.0: {1.0: 85, 2.0: 60, 4.0: 0}}
    stay = _by_id(claims_thm31(thm31_tables(low, SWEEP), {}))["anlu_stay_probability_rises"]
    assert not stay.holds and stay.value == pytest.approx(0.85)


def test_noise_claim_fails_when_the_probability_does_not_depend_on_sigma():
    flat = {0.0: 100, 10.0: 70, 100.0: 70, 1000.0: 70}  # σ changes nothing past 10
    noise = _by_id(claims_thm31(thm31_tables(GRID, flat), {}))["anlu_noise_lowers_stay_probability"]
    # σ_min = 0 is noiseless (stays), σ_max loses 30 of 100: resolved; make σ_min noisy too.
    assert noise.holds
    flat = {10.0: 70, 100.0: 70, 1000.0: 70}
    noise = _by_id(claims_thm31(thm31_tables(GRID, flat), {}))["anlu_noise_lowers_stay_probability"]
    assert not noise.holds and noise.value == 0.0
    # A drop of 2 of 100 between the smallest and the largest σ is within 2 SE.
    small = {10.0: 70, 100.0: 69, 1000.0: 68}
    noise = _by_id(claims_thm31(thm31_tables(GRID, small), {}))[
        "anlu_noise_lowers_stay_probability"
    ]
    assert not noise.holds and 0 < noise.value < 2


def test_rate_claim_counts_only_conditions_inside_the_step_bound():
    # A condition outside the bound decaying at 0.99 > ρ does not enter the claim ...
    tables = thm31_tables(GRID, SWEEP, outside_rate=0.99)
    assert _by_id(claims_thm31(tables, {}))["anlu_rate_within_bound"].holds
    # ... but one inside it does.
    tables = thm31_tables(GRID, SWEEP, rates={(2.0, 10.0): 0.97})
    rate = _by_id(claims_thm31(tables, {}))["anlu_rate_within_bound"]
    assert not rate.holds and rate.value == pytest.approx(0.97) and "F(θ0)=2" in rate.note


def test_stay_curve_counts_values_strictly_between_0_and_1():
    tables = thm31_tables(GRID, SWEEP)
    grid = tables["conditions"][tables["conditions"]["part"] == "grid"]
    curve = stay_curve(grid[grid["sigma"] == 10.0], tables["trajectories"])
    assert curve.between == 2 and curve.largest == 1.0 and not curve.resolved_decrease
