"""Claims of ``chatterjee_thm41`` and ``chatterjee_thm45`` (ARTIFACTS.md), computed from the
tidy tables of :mod:`sgdconv.chatterjee.nets`."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from sgdconv.claims import Claim

# Thresholds of ARTIFACTS.md.
#: chatterjee_thm41_converges: every configuration reaches F < 1e-8 · F(θ0).
THM41_LOSS_RATIO = 1e-8
#: chatterjee_thm45_bounded_below: fraction at the largest n >= 0.5 × fraction at the smallest.
THM45_RELATIVE_FRACTION = 0.5


def claims_thm41(tables: Mapping[str, pd.DataFrame], params: Mapping[str, Any]) -> list[Claim]:
    """``chatterjee_thm41_converges`` from the ``configs`` table.

    The metric is the worst case over configurations of 4 F(θ0) / (r² α̂) — below 1 exactly when
    the searched certificate 4 F(θ0) < r² α̂ holds (α̂ an upper bound on α(θ0, r): numerical
    evidence for (2.1), not a proof) — taken as +inf for a configuration whose GD did not reach
    F < 1e-8 · F(θ0). So the claim holds iff every configuration converged and certified.
    """
    configs = tables["configs"]
    if configs.empty:
        return [_thm41_claim(math.nan, "no configurations")]
    converged = configs["F_final"] < THM41_LOSS_RATIO * configs["F0"]  # False for NaN
    certificate = 4.0 * configs["F0"] / (configs["r"] ** 2 * configs["alpha_hat"])
    per_config = certificate.where(converged, math.inf)
    label = configs.apply(
        lambda row: f"L={row['depth']} w={row['width']} {row['activation']}", axis=1
    )
    worst = int(per_config.to_numpy().argmax())
    note = (
        f"{len(configs)} configurations, {int(converged.sum())} reached F < 1e-8·F0 "
        f"(worst F_final/F0 = {float((configs['F_final'] / configs['F0']).max()):.3g}); "
        f"worst 4F0/(r²α̂) = {float(certificate.max()):.3g} ({label.iloc[worst]}); "
        f"proof-backed certificate (α_lb of Section 7) holds in "
        f"{int(configs['certificate_lb_holds'].sum())}/{len(configs)}"
    )
    failing = [
        f"{label[i]}: "
        + " and ".join(
            reason
            for reason, bad in (
                ("not converged", not converged[i]),
                ("certificate fails", certificate[i] >= 1),
            )
            if bad
        )
        for i in configs.index
        if not converged[i] or certificate[i] >= 1
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
        "F < 1e-8 · F(θ0) under GD, and its certificate 4F(θ0) < r²α̂(θ0, r), r = δ/2, holds "
        "(α̂ from a search: an upper bound on α, so this is evidence for (2.1), not a proof).",
        "max over configurations of 4F0/(r²α̂) (+inf if F_final >= 1e-8·F0)",
        value,
        "<",
        1.0,
        note=note,
    )


def claims_thm45(tables: Mapping[str, pd.DataFrame], params: Mapping[str, Any]) -> list[Claim]:
    """``chatterjee_thm45_bounded_below`` from the ``fractions`` table.

    The metric is fraction(n_max) / fraction(n_min), set to 0 when fraction(n_max) = 0 (so the
    "> 0" half of the claim fails too) and to +inf when only fraction(n_min) is 0. ``params``:
    ``tol`` and ``max_steps`` (what "converged" means, for the note).
    """
    fractions = tables["fractions"].sort_values("n")
    if fractions.empty:
        value, note = math.nan, "no data"
    else:
        small, large = fractions.iloc[0], fractions.iloc[-1]
        f_small, f_large = float(small["fraction"]), float(large["fraction"])
        if f_large == 0:
            value = 0.0
        elif f_small == 0:
            value = math.inf
        else:
            value = f_large / f_small
        note = (
            f"n = {int(small['n'])}: {int(small['converged'])}/{int(small['seeds'])} converged "
            f"(CI [{small['ci_low']:.2f}, {small['ci_high']:.2f}]); n = {int(large['n'])}: "
            f"{int(large['converged'])}/{int(large['seeds'])} "
            f"(CI [{large['ci_low']:.2f}, {large['ci_high']:.2f}]), "
            f"{large['ci_level']:.0%} {large['ci_method']} intervals. A seed converges when GD "
            f"with some step of the trial-and-error ladder (Remark 4.7) reaches "
            f"F < {params.get('tol', 'tol')}·F(θ0) within {params.get('max_steps', '?')} steps."
        )
    return [
        Claim(
            "chatterjee_thm45_bounded_below",
            "chatterjee",
            "chatterjee_thm45",
            "Under LeCun initialization with the smooth leaky ReLU, the fraction of seeds whose "
            "GD converges to zero loss at the largest n is > 0 and >= 0.5 × the fraction at the "
            "smallest n (d/n and the hidden widths fixed, Remark 4.8).",
            "fraction(n_max) / fraction(n_min) (0 if fraction(n_max) = 0)",
            value,
            ">=",
            THM45_RELATIVE_FRACTION,
            note=note,
        )
    ]
