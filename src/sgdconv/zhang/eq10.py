"""Eq. (10) of Zhang et al.: (∇)² = η 𝓛 G², the balance of an invariant measure.

The paper's derivation (eq. (15), App. G). If θ follows an invariant measure of the update
F(θ) = θ − η g(θ), the loss does not change in expectation, and a second-order expansion
along the step gives, for plain SGD (no momentum),

    E|∇L|² = (η/2) E[gᵀ H g] = (η/2) (∇LᵀH∇L + tr(H Σ_B)),                          (a)

with g = ∇L + ξ_B the stochastic gradient of an SGD batch B, Σ_B its covariance and H = ∇²L.
This is exact for a quadratic loss (stationary variance of the AR(1) iterate). The paper's
eq. (15) writes the Taylor remainder as η² ∫∫ gᵀ H g dt dτ without the factor 1/2 of
∫₀¹ (1 − s) ds, and eq. (10) then reads |∇L|² = η 𝓛 G² with 𝓛 = E[gᵀHg] / E|g|² "the
sharpness in the update direction" and G² = E|g|². We report the paper's eq. (10) as written,
so a ratio |∇L|² / (η 𝓛 G²) of 1/2 is what (a) predicts for plain SGD at stationarity.

Momentum-consistent balance. The runs use heavy-ball momentum β (PyTorch's v ← βv + g,
θ ← θ − η v). For a quadratic loss, in each eigendirection of H (eigenvalue h, noise variance
s²) the iterate is the AR(2) process θ_{t+1} = (1 + β − ηh) θ_t − β θ_{t−1} − η ξ_t, whose
stationary variance is V = η s² (1 + β) / (h (1 − β)(2(1 + β) − ηh)). With |∇L|² = h² V,
rearranging 2(1 + β)(1 − β) |∇L|² = η(1 + β) h s² + η(1 − β) h |∇L|² and summing over
eigendirections (E|∇L|² = Σ h_i² V_i, tr(HΣ) = Σ h_i s_i², ∇LᵀH∇L = Σ h_i |∇L|_i²):

    E|∇L|² = (η/2) [ tr(H Σ_B) / (1 − β) + E[∇LᵀH∇L] / (1 + β) ],                      (b)

which reduces to (a) at β = 0. Momentum scales the noise term by 1/(1 − β) (10 for β = 0.9):
the paper's eq. (10) with the plain step η then under-predicts |∇L|² by about that factor.
Weight decay is neglected (it adds γθ to g; |γθ| is small next to |∇L| in these runs).

Inputs per checkpoint (``stats.parquet``): ``grad_norm_sq`` (unbiased |∇L|²), ``noise_norm_sq``
(per-sample σ²), ``batch_size`` (the SGD batch: G² = |∇L|² + σ²/B, *not* the micro-batch of the
statistics, which is smaller than B under data parallelism), ``sharpness`` (λ_max),
``sgd_curvature`` = E[g_BᵀHg_B], ``mean_curvature`` = ∇LᵀH∇L and ``noise_curvature`` =
tr(HΣ_B) (:mod:`sgdconv.stats.directional`), ``lr`` and ``momentum``.
"""

from __future__ import annotations

import math

import pandas as pd

#: The three balances reported: column of the right-hand side, and a label.
BALANCES = {
    "directional": ("rhs_directional", "paper's eq. (10), 𝓛 along the stochastic gradient"),
    "lambda_max": ("rhs_lambda_max", "paper's eq. (10) with 𝓛 = λ_max"),
    "momentum": ("rhs_momentum", "momentum-consistent balance (b)"),
}


def eq10_terms(stats: pd.DataFrame) -> pd.DataFrame:
    """Both sides of eq. (10) at every checkpoint (module docstring): ``grad_norm_sq``,
    ``second_moment`` G², ``directional_sharpness`` 𝓛 = E[gᵀHg]/G², and the right-hand sides
    ``rhs_directional`` = η 𝓛 G² = η E[gᵀHg], ``rhs_lambda_max`` = η λ_max G² and
    ``rhs_momentum`` = (η/2)(tr(HΣ_B)/(1 − β) + ∇LᵀH∇L/(1 + β)), with their ratios
    ``ratio_<name>`` = |∇L|² / rhs."""
    beta = stats["momentum"].astype(float) if "momentum" in stats else 0.0
    g2 = stats["grad_norm_sq"] + stats["noise_norm_sq"] / stats["batch_size"]
    out = pd.DataFrame(
        {
            "step": stats["step"],
            "epoch": stats["epoch"],
            "lr": stats["lr"],
            "grad_norm_sq": stats["grad_norm_sq"],
            "second_moment": g2,
            "sharpness": stats["sharpness"],
            "directional_sharpness": stats["sgd_curvature"] / g2,
        }
    )
    lr = out["lr"]
    out["rhs_directional"] = lr * stats["sgd_curvature"]
    out["rhs_lambda_max"] = lr * out["sharpness"] * g2
    out["rhs_momentum"] = (lr / 2) * (
        stats["noise_curvature"] / (1 - beta) + stats["mean_curvature"] / (1 + beta)
    )
    for name, (column, _) in BALANCES.items():
        out[f"ratio_{name}"] = out["grad_norm_sq"] / out[column]
    return out


def eq10_ratio(terms: pd.DataFrame, from_fraction: float = 0.5) -> dict[str, float]:
    """Eq. (10) "in expectation" over the run's later part (epochs >= ``from_fraction`` of the
    last): mean |∇L|² / mean rhs for each balance (keys ``ratio_<name>``, ``rhs_<name>``),
    with ``lhs``, the mean directional sharpness and λ_max, and the number of checkpoints."""
    late = terms[terms["epoch"] >= from_fraction * terms["epoch"].max()]
    lhs = float(late["grad_norm_sq"].mean())
    out: dict[str, float] = {"lhs": lhs, "n": len(late)}
    for name, (column, _) in BALANCES.items():
        rhs = float(late[column].mean())
        out[f"rhs_{name}"] = rhs
        out[f"ratio_{name}"] = lhs / rhs if rhs > 0 else math.nan
    out["directional_sharpness"] = float(late["directional_sharpness"].mean())
    out["sharpness"] = float(late["sharpness"].mean())
    out["from_epoch"] = float(late["epoch"].min()) if len(late) else math.nan
    return out
