"""The constants of An & Lu's Theorem 3.1, Lemma 4.2 and Theorem 4.1, as functions of α and C_L.

α := α(θ0, R) is the local Łojasiewicz constant (2.1) and C_L the smoothness constant (2.3).
Neither is known in closed form for a network; :func:`estimate_constants` estimates α by the
certificate search of :mod:`sgdconv.lojasiewicz.certificate` (an upper bound on the infimum) and C_L
by :mod:`sgdconv.lojasiewicz.smoothness` (a lower bound on the supremum). Both errors make the ρ of
(3.2) *smaller* (dρ/dα = −η < 0 and dρ/dC_L > 0), so a decay rate compared against ρ̂ is held
to a stricter standard than the true ρ.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from sgdconv.lojasiewicz.certificate import search_alpha
from sgdconv.lojasiewicz.effort import SearchEffort, SmoothnessEffort
from sgdconv.lojasiewicz.smoothness import estimate_smoothness


def rho(eta: float, alpha: float, c_l: float, sigma: float) -> float:
    """ρ = 1 − ηα + (η²/2) C_L (2 C_L + σ), the contraction factor of (3.2)/(3.8)."""
    return 1.0 - eta * alpha + 0.5 * eta**2 * c_l * (2.0 * c_l + sigma)


def theorem31_step_bound(alpha: float, c_l: float, sigma: float) -> float:
    """The largest step Theorem 3.1 allows: min{1/α, α / (4 C_L (2 C_L + σ))}.

    With it ρ <= 1 − αη/2 (the display after (3.8)).
    """
    if not (alpha > 0 and c_l > 0 and sigma >= 0):
        raise ValueError(f"need α > 0, C_L > 0, σ >= 0, got {alpha}, {c_l}, {sigma}")
    return min(1.0 / alpha, alpha / (4.0 * c_l * (2.0 * c_l + sigma)))


def lemma42_n0(gamma: float, alpha: float, c_l: float, q: float) -> float:
    """The smallest n0 of (4.10), (2 C_L² γ / α)^{1/q}: then 1 − αη_k + η_k² C_L² <= 1 − αη_k/2
    (4.11) for every k."""
    if not (gamma > 0 and alpha > 0 and c_l > 0 and 0 < q <= 1):
        raise ValueError(f"need γ, α, C_L > 0 and q in (0, 1], got {gamma}, {alpha}, {c_l}, {q}")
    return (2.0 * c_l**2 * gamma / alpha) ** (1.0 / q)


def lemma42_constant(gamma: float, c: float, alpha: float, c_l: float, q: float) -> float:
    """The constant of the leading term of (4.5): E F(θ_k) <= K / k^q + o(k^{−q}) with
    K = γ² c² C_L / (αγ − 2) for q = 1 (needs γ > 2/α) and γ² c² C_L / (αγ) for q < 1."""
    if q == 1.0:
        if not alpha * gamma > 2.0:
            raise ValueError(f"(4.13) needs γ > 2/α, got αγ = {alpha * gamma}")
        return gamma**2 * c**2 * c_l / (alpha * gamma - 2.0)
    return gamma**2 * c**2 * c_l / (alpha * gamma)


@dataclass(frozen=True)
class LocalConstants:
    """α̂(θ0, r), Ĉ_L on B(θ0, r) and the certificate (2.2) at one starting point."""

    r: float
    f0: float
    alpha_hat: float
    margin: float
    certificate_holds: bool
    c_l_hat: float
    alpha_center: float
    c_l_center: float

    def row(self) -> dict[str, Any]:
        return {
            "r": self.r,
            "f0": self.f0,
            "alpha_hat": self.alpha_hat,
            "margin": self.margin,
            "certificate_holds": self.certificate_holds,
            "c_l_hat": self.c_l_hat,
            "alpha_center": self.alpha_center,
            "c_l_center": self.c_l_center,
        }


def estimate_constants(
    loss: Callable[[Tensor], Tensor],
    theta0: Tensor,
    r: float,
    *,
    certificate: SearchEffort,
    smoothness: SmoothnessEffort,
    seed: int,
) -> LocalConstants:
    """α̂ by :func:`~sgdconv.lojasiewicz.certificate.search_alpha` with the ``certificate``
    effort and Ĉ_L by :func:`~sgdconv.lojasiewicz.smoothness.estimate_smoothness` with the
    ``smoothness`` effort, on B(θ0, r)."""
    cert = search_alpha(
        loss, theta0, r, generator=torch.Generator().manual_seed(seed), **certificate.kwargs()
    )
    smooth = estimate_smoothness(
        loss, theta0, r, generator=torch.Generator().manual_seed(seed + 1), **smoothness.kwargs()
    )
    return LocalConstants(
        r=float(r),
        f0=cert.f0,
        alpha_hat=cert.alpha_hat,
        margin=cert.margin,
        certificate_holds=cert.holds,
        c_l_hat=smooth.c_l_hat,
        alpha_center=cert.alpha_center,
        c_l_center=smooth.c_l_center,
    )


def geometric_bound(f0: float, rho_value: float, steps: Tensor) -> Tensor:
    """ρ^k F(θ0), the right side of (3.9), at the given steps."""
    return f0 * torch.exp(steps.to(torch.float64) * math.log(rho_value))
