"""Claims of ``chatterjee_thm41`` and ``chatterjee_thm45`` (ARTIFACTS.md), computed from the
tidy tables of :mod:`sgdconv.chatterjee.nets` and :mod:`sgdconv.chatterjee.lecun`."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from sgdconv.claims import Claim

# Thresholds of ARTIFACTS.md.
#: chatterjee_thm41_converges: every configuration reaches F < 1e-8 · F(θ0) ...
THM41_LOSS_RATIO = 1e-8
#: ... with every iterate in B(θ0, r) and 4F(θ0)/(r²α̂) below this.
THM41_BALL = 1.0
#: chatterjee_thm45_bounded_below: fraction at the largest n >= 0.5 × fraction at the smallest.
THM45_RELATIVE_FRACTION = 0.5
#: Theorem 4.5's hypothesis (linearly independent inputs) needs d/n >= 1.
THM45_MIN_RATIO = 1.0


def thm41_reasons(row: Any) -> list[str]:
    """Why one ``configs`` row fails the claim (empty when it passes)."""
    reasons = []
    if not row["F_final"] < THM41_LOSS_RATIO * row["F0"]:  # NaN: GD never ran
        reasons.append("no step of the ladder converged in the ball")
    elif not row["max_dist_over_r"] < THM41_BALL:
        reasons.append(f"left the ball (max_k |θ_k − θ0|/r = {row['max_dist_over_r']:.3g})")
    ratio = 4.0 * row["F0"] / (row["r"] ** 2 * row["alpha_hat"])
    if not ratio < THM41_BALL:
        reasons.append(f"certificate refuted by the search (4F0/(r²α̂) = {ratio:.3g})")
    return reasons


def claims_thm41(tables: Mapping[str, pd.DataFrame], params: Mapping[str, Any]) -> list[Claim]:
    """``chatterjee_thm41_converges`` from the ``configs`` table.

    Per configuration the metric is max(4 F(θ0)/(r² α̂), max_k |θ_k − θ0| / r), taken as +inf
    when GD did not reach F < 1e-8 · F(θ0): below 1 exactly when the run converged inside
    B(θ0, r) (Theorem 2.2: |x_k − x_0| < r for every k) and the certificate 4 F(θ0) < r² α̂ is
    not refuted by the search (α̂ an upper bound on α(θ0, r): evidence for (2.1), not a proof).
    The row's value is the worst configuration, so the claim holds iff every one passes.
    """
    configs = tables["configs"]
    if configs.empty:
        return [_thm41_claim(math.nan, "no configurations")]
    converged = configs["F_final"] < THM41_LOSS_RATIO * configs["F0"]  # False for NaN
    certificate = 4.0 * configs["F0"] / (configs["r"] ** 2 * configs["alpha_hat"])
    per_config = np.maximum(certificate, configs["max_dist_over_r"]).where(converged, math.inf)
    label = configs.apply(
        lambda row: f"L={row['depth']} w={row['width']} {row['activation']}", axis=1
    )
    inside = converged & (configs["max_dist_over_r"] < THM41_BALL)
    note = (
        f"{len(configs)} configurations: {int(converged.sum())} reached F < 1e-8·F0, "
        f"{int(inside.sum())} of them without leaving B(θ0, r) (largest max_k |θ_k − θ0|/r = "
        f"{float(configs['max_dist_over_r'].max()):.3g}); worst 4F0/(r²α̂) = "
        f"{float(certificate.max()):.3g} ({label.iloc[int(certificate.to_numpy().argmax())]}), "
        "α̂ the smaller of the search that chose A and an independent search at that A (not "
        "refuted by a search: evidence, not a proof). The proof-backed certificate (α_lb of "
        f"Section 7) holds in {int(configs['certificate_lb_holds'].sum())}/{len(configs)}"
    )
    if "rungs_left_ball" in configs:
        note += (
            f"; larger steps of the ladder left the ball in "
            f"{int((configs['rungs_left_ball'] > 0).sum())}/{len(configs)} configurations"
        )
    failing = [
        f"{label[i]}: " + " and ".join(reasons)
        for i in configs.index
        if (reasons := thm41_reasons(configs.loc[i]))
    ]
    if failing:
        note += "; failing: " + "; ".join(failing)
    return [_thm41_claim(float(per_config.max()), note)]


def _thm41_claim(value: float, note: str) -> Claim:
    return Claim(
        "chatterjee_thm41_converges",
        "chatterjee",
        "chatterjee_thm41",
        "Every configuration (depth, width, activation) started at the Theorem-4.1 "
        "initialization with A and η found by trial and error (Remark 4.4) reaches "
        "F < 1e-8 · F(θ0) under GD with every iterate inside B(θ0, r), r = δ/2 "
        "(max_k |θ_k − θ0| < r, as Theorems 2.1/2.2 imply), and its certificate "
        "4F(θ0) < r²α̂(θ0, r) is not refuted by the search.",
        "max over configurations of max(4F0/(r²α̂), max_k |θ_k − θ0|/r) "
        "(+inf if F_final >= 1e-8·F0)",
        value,
        "<",
        THM41_BALL,
        note=note,
    )


def _ratio(small: float, large: float) -> float:
    """fraction(n_max)/fraction(n_min): 0 if fraction(n_max) = 0, +inf if only n_min's is 0."""
    if large == 0:
        return 0.0
    return math.inf if small == 0 else large / small


def _describe(row: Any) -> str:
    return (
        f"n={int(row['n'])}: {int(row['converged'])}/{int(row['seeds'])} "
        f"[{row['ci_low']:.2f}, {row['ci_high']:.2f}]"
    )


def claims_thm45(tables: Mapping[str, pd.DataFrame], params: Mapping[str, Any]) -> list[Claim]:
    """``chatterjee_thm45_bounded_below`` and ``chatterjee_thm45_cost`` from ``fractions``.

    bounded_below: for every d/n >= 1 (Theorem 4.5's hypothesis), fraction(n_max) /
    fraction(n_min), 0 when fraction(n_max) = 0 (so the "> 0" half fails too) and +inf when only
    fraction(n_min) is 0; the row's value is the smallest over those d/n. Ratios below 1 are
    reported in the note and do not enter the claim. cost: one reported row per d/n, the
    least-squares slope of log(median iterations of the converging seeds) against log n.
    """
    fractions = tables["fractions"]
    ratios = sorted(fractions["d_over_n"].unique(), reverse=True) if len(fractions) else []
    inside = [q for q in ratios if q >= THM45_MIN_RATIO]
    per_ratio, parts = {}, []
    for q in ratios:
        rows = fractions[fractions["d_over_n"] == q].sort_values("n")
        small, large = rows.iloc[0], rows.iloc[-1]
        per_ratio[q] = _ratio(float(small["fraction"]), float(large["fraction"]))
        tag = "" if q >= THM45_MIN_RATIO else " (outside the hypothesis, not in the claim)"
        parts.append(f"d/n={q:g}{tag}: {_describe(small)}, {_describe(large)}")
    value = min((per_ratio[q] for q in inside), default=math.nan)
    budget = int(fractions["max_steps"].iloc[0]) if "max_steps" in fractions else "?"
    level = (
        f"{fractions['ci_level'].iloc[0]:.0%} {fractions['ci_method'].iloc[0]}" if ratios else ""
    )
    note = (
        "; ".join(parts) + f" ({level} intervals). A seed converges when GD with some step of the "
        f"trial-and-error ladder (Remark 4.7) reaches F < {params.get('tol', 'tol')}·F(θ0) "
        f"within {budget} steps."
    )
    if any(f == 0 for q, f in per_ratio.items() if q in inside):
        note += " A fraction of 0 at the largest n fails the '> 0' half."
    claims = [
        Claim(
            "chatterjee_thm45_bounded_below",
            "chatterjee",
            "chatterjee_thm45",
            "Under LeCun initialization with the smooth leaky ReLU, for every d/n >= 1 the "
            "fraction of seeds whose GD converges to zero loss at the largest n is > 0 and "
            ">= 0.5 × the fraction at the smallest n (hidden widths fixed, Remark 4.8).",
            "min over d/n >= 1 of fraction(n_max) / fraction(n_min) (0 if fraction(n_max) = 0)",
            value,
            ">=",
            THM45_RELATIVE_FRACTION,
            note=note,
        )
    ]
    claims += [_cost_claim(fractions[fractions["d_over_n"] == q], q) for q in ratios]
    return claims


def cost_slope(rows: pd.DataFrame) -> tuple[float, float, int]:
    """Least-squares slope of log(median iterations) on log n over the n with a converging
    seed, its standard error (NaN with fewer than 3 points) and the number of points."""
    ok = rows[np.isfinite(rows["median_iterations"]) & (rows["median_iterations"] > 0)]
    if len(ok) < 2:
        return math.nan, math.nan, len(ok)
    t, v = np.log(ok["n"].to_numpy(float)), np.log(ok["median_iterations"].to_numpy(float))
    slope, intercept = np.polyfit(t, v, 1)
    if len(ok) < 3:
        return float(slope), math.nan, len(ok)
    resid = v - (slope * t + intercept)
    se = math.sqrt(float(resid @ resid) / (len(ok) - 2) / float(((t - t.mean()) ** 2).sum()))
    return float(slope), se, len(ok)


def _cost_claim(rows: pd.DataFrame, ratio: float) -> Claim:
    slope, se, points = cost_slope(rows)
    medians = ", ".join(
        f"n={int(r.n)}: {r.median_iterations:.0f}"
        if math.isfinite(r.median_iterations)
        else f"n={int(r.n)}: none converged"
        for r in rows.sort_values("n").itertuples()
    )
    return Claim(
        "chatterjee_thm45_cost",
        "chatterjee",
        "chatterjee_thm45",
        "Reported: how the cost of convergence grows with n at fixed d/n — the fitted slope "
        "of log(median GD iterations of the converging seeds) against log n.",
        f"slope of log(median iterations) vs log n, d/n = {ratio:g} ({points} points)",
        slope,
        "report",
        None,
        note=f"median iterations {medians}; slope standard error {se:.2g}",
    )
