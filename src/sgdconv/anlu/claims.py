"""Claims of anlu_thm31, anlu_thm41 and anlu_lem42 (ARTIFACTS.md), from their tidy tables.

Thresholds are the constants of ARTIFACTS.md. Rates are recomputed here from the stored step
tables with the same fits the simulations use (:mod:`sgdconv.montecarlo.fits`), so a claim can be
checked from the tables alone.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from sgdconv.anlu.bounded import fit_window
from sgdconv.anlu.thm31 import RATE_FIT_FLOOR
from sgdconv.claims import Claim
from sgdconv.montecarlo.fits import geometric_fit, loglog_fit

#: anlu_stay_probability_rises: the largest probability must reach this.
STAY_PROBABILITY_MIN = 0.9
#: anlu_bounded_noise_escapes: fraction of rotated-noise trajectories that leave B(θ0, r).
ESCAPE_FRACTION_MIN = 0.99
#: anlu_lem42_rate: |fitted slope + q| must not exceed this.
LEM42_SLOPE_TOLERANCE = 0.15


def _g(value: float) -> str:
    return f"{value:.4g}"


def stay_curves(conditions: pd.DataFrame) -> list[dict[str, Any]]:
    """Per σ: the P(stay ∧ converge) curve ordered by decreasing F(θ0), whether it never
    decreases along that order, and its largest value."""
    out = []
    for sigma, group in conditions.groupby("sigma", sort=True):
        curve = group.sort_values("f0", ascending=False)["p_stay_converge"].to_numpy(float)
        drops = np.flatnonzero(np.diff(curve) < 0)
        out.append(
            {
                "sigma": float(sigma),
                "monotone": drops.size == 0,
                "largest": float(curve.max()),
                "first_drop_f0": float(
                    group.sort_values("f0", ascending=False)["f0"].iloc[drops[0] + 1]
                )
                if drops.size
                else math.nan,
            }
        )
    return out


def rate_fits(conditions: pd.DataFrame, steps: pd.DataFrame) -> pd.DataFrame:
    """Per condition: the least-squares decay factor of E[F(θ_k) 1_{E_k(R−1)}] (all record
    steps with E[F 1_E] > RATE_FIT_FLOOR · F(θ0)) and the ρ of (3.2) it is compared with."""
    rows = []
    for cond in conditions.itertuples(index=False):
        part = steps[(steps["f0"] == cond.f0) & (steps["sigma"] == cond.sigma)]
        fit = geometric_fit(
            part["step"].to_numpy(), part["mean_f_in"].to_numpy(), RATE_FIT_FLOOR * cond.f0
        )
        rows.append({"f0": cond.f0, "sigma": cond.sigma, "rate": fit.rate, "rho": cond.rho})
    return pd.DataFrame(rows, columns=["f0", "sigma", "rate", "rho"])


def claims_thm31(tables: Mapping[str, pd.DataFrame], params: Mapping[str, Any]) -> list[Claim]:
    """``anlu_stay_probability_rises`` and ``anlu_rate_within_bound``.

    Tables: ``conditions`` and ``steps`` of :func:`sgdconv.anlu.thm31.simulate_thm31`.
    """
    conditions, steps = tables["conditions"], tables["steps"]
    curves = stay_curves(conditions)
    bad = [c for c in curves if not c["monotone"]]
    # One number for a two-part claim: the smallest over σ of the largest probability, where a
    # σ whose curve decreases somewhere as F(θ0) decreases counts as 0 (so the claim fails).
    value = min((c["largest"] if c["monotone"] else 0.0) for c in curves) if curves else math.nan
    detail = "; ".join(
        f"σ={_g(c['sigma'])}: max {_g(c['largest'])}"
        + ("" if c["monotone"] else f", decreases at F(θ0)={_g(c['first_drop_f0'])}")
        for c in curves
    )
    n_traj = int(conditions["n_trajectories"].iloc[0]) if len(conditions) else 0
    stay_note = (
        f"{detail}. {n_traj} trajectories per condition with common random numbers (the same "
        "noise streams in every condition); step η within Theorem 3.1's bound for every "
        "condition, from estimated α̂ (search: upper bound) and Ĉ_L (sampling: lower bound)."
    )
    if {"max_dist_q10", "max_dist_q90", "max_dist_median"} <= set(conditions.columns):
        spread = (
            (conditions["max_dist_q90"] - conditions["max_dist_q10"])
            / conditions["max_dist_median"]
        ).max()
        stay_note += (
            f" The 10–90% spread of max_k |θ_k − θ0| over trajectories is at most "
            f"{100 * spread:.2g}% of its median: within the theorem's step the noise barely moves "
            "the path, so leaving B(θ0, R − 1) is decided by F(θ0)."
        )
    if bad:
        stay_note = "curve not monotone: " + stay_note

    fits = rate_fits(conditions, steps)
    usable = fits.dropna(subset=["rate"])
    if len(usable):
        worst = usable.loc[(usable["rate"] - usable["rho"]).idxmax()]
        rate_value, rate_threshold = float(worst["rate"]), float(worst["rho"])
        rate_note = (
            f"worst of {len(usable)} conditions (largest fitted rate − ρ): F(θ0)="
            f"{_g(worst['f0'])}, σ={_g(worst['sigma'])}; all conditions: "
            f"max(rate − ρ) = {_g(float((usable['rate'] - usable['rho']).max()))}. "
            "ρ from α̂ (an upper bound on α) and Ĉ_L (a lower bound on C_L) is smaller than the "
            "true ρ, so the test is stricter than (3.9)."
        )
        if len(usable) < len(fits):
            rate_note += f" {len(fits) - len(usable)} conditions had < 3 positive points."
    else:
        rate_value, rate_threshold, rate_note = math.nan, 0.0, "no condition could be fitted"
    return [
        Claim(
            "anlu_stay_probability_rises",
            "anlu",
            "anlu_thm31",
            "The Monte-Carlo probability that an SGD trajectory with machine-learning noise "
            "stays in B(θ0, R − 1) and converges is non-decreasing as F(θ0) decreases (for "
            "every σ), and its largest value is >= 0.9.",
            "min over σ of max P(stay ∧ converge) (0 if a curve decreases as F(θ0) decreases)",
            value,
            ">=",
            STAY_PROBABILITY_MIN,
            note=stay_note,
        ),
        Claim(
            "anlu_rate_within_bound",
            "anlu",
            "anlu_thm31",
            "The fitted per-step decay factor of E[F(θ_k) 1_{E_k(R−1)}] is <= ρ of (3.2) "
            "(checked for every (F(θ0), σ); the row shows the worst condition).",
            "fitted decay factor of E[F(θ_k) 1_E] (worst condition)",
            rate_value,
            "<=",
            rate_threshold,
            note=rate_note,
        ),
    ]


def claims_thm41(tables: Mapping[str, pd.DataFrame], params: Mapping[str, Any]) -> list[Claim]:
    """``anlu_bounded_noise_escapes``: the fraction of rotated-noise trajectories that left
    B(θ0, r) by the last step, for every q (the row shows the smallest)."""
    conditions = tables["conditions"]
    rotated = conditions[conditions["noise"] == "rotated"]
    if len(rotated):
        worst = rotated.loc[rotated["p_escaped"].idxmin()]
        value = float(worst["p_escaped"])
        per_q = ", ".join(
            f"q={_g(row.q)}: {_g(row.p_escaped)} (median exit step {_g(row.exit_step_median)})"
            for row in rotated.itertuples(index=False)
        )
        reference = conditions[conditions["noise"] == "unrotated"]
        note = (
            f"{per_q}; {int(worst['n_trajectories'])} trajectories, {int(worst['n_steps'])} "
            f"steps, r = {_g(float(worst['r']))}. Same noise without the rotation (mean zero): "
            + ", ".join(f"q={_g(row.q)}: {_g(row.p_escaped)}" for row in reference.itertuples())
            + " escaped."
        )
    else:
        value, note = math.nan, "no rotated-noise condition in the table"
    return [
        Claim(
            "anlu_bounded_noise_escapes",
            "anlu",
            "anlu_thm41",
            "With bounded noise rotated onto one direction (Theorem 4.1's construction) and "
            "Robbins–Monro steps γ/(k + n0)^q, >= 99% of trajectories leave B(θ0, r) by the "
            "last step (for every q).",
            "fraction of trajectories that left B(θ0, r) (smallest over q)",
            value,
            ">=",
            ESCAPE_FRACTION_MIN,
            note=note,
        )
    ]


def lem42_slopes(conditions: pd.DataFrame, steps: pd.DataFrame) -> pd.DataFrame:
    """Per q: the least-squares slope of log E[F(θ_k) | stayed] against log k over
    k >= fit_from_n0 · n0 (:func:`sgdconv.anlu.bounded.fit_window`)."""
    rows = []
    for cond in conditions.itertuples(index=False):
        part = steps[steps["q"] == cond.q]
        k_lo = fit_window(cond.n0, cond.fit_from_n0)
        fit = loglog_fit(part["step"].to_numpy(), part["mean_f_given_stay"].to_numpy(), k_lo)
        rows.append({"q": cond.q, "slope": fit.slope, "k_lo": fit.k_lo, "k_hi": fit.k_hi})
    return pd.DataFrame(rows, columns=["q", "slope", "k_lo", "k_hi"])


def claims_lem42(tables: Mapping[str, pd.DataFrame], params: Mapping[str, Any]) -> list[Claim]:
    """``anlu_lem42_rate``: max over q of |fitted slope + q| <= 0.15."""
    conditions, steps = tables["conditions"], tables["steps"]
    slopes = lem42_slopes(conditions, steps)
    errors = (slopes["slope"] + slopes["q"]).abs()
    value = float(errors.max()) if len(slopes) and errors.notna().all() else math.nan
    p_stay = ", ".join(
        f"q={_g(row.q)}: P(stay)={_g(row.p_stay)}" for row in conditions.itertuples(index=False)
    )
    note = (
        "; ".join(
            f"q={_g(row.q)}: slope {_g(row.slope)} over k in [{_g(row.k_lo)}, {_g(row.k_hi)}]"
            for row in slopes.itertuples(index=False)
        )
        + f". Window k >= {_g(float(conditions['fit_from_n0'].iloc[0]))}·n0: there the slope of "
        "(k + n0)^(−q) against log k is within 10% of −q and the transient from F(θ0) is gone. "
        f"E F conditioned on staying in B(θ0, r) through the last step ({p_stay})."
        if len(slopes)
        else "no condition in the table"
    )
    return [
        Claim(
            "anlu_lem42_rate",
            "anlu",
            "anlu_lem42",
            "Under bounded noise and Robbins–Monro steps, the fitted slope of log E F(θ_k) "
            "against log k is within 0.15 of −q (Lemma 4.2, (4.5); every q).",
            "max over q of |fitted slope + q|",
            value,
            "<=",
            LEM42_SLOPE_TOLERANCE,
            note=note,
        )
    ]
