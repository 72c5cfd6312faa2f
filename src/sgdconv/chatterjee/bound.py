"""The rigorous lower bound on α(θ0, δ/2) from the proof of Chatterjee's Theorem 4.1 (Section 7).

For the Theorem-4.1 initialization (W_1 = 0, all biases 0, the entries of W_2..W_{L−1} in
[δ, K], every entry of W_L >= A > δ/2), Section 7 shows that for every θ' in B(θ0, δ/2) with
S(θ') ≠ 0

    |∇S(θ')|² / S(θ') >= 4 α_X d_1 [ (A − δ/2) (δ/2)^{L−2} d_{L−1} ··· d_2 · c_{L−1} ··· c_1 ]²,

from (7.3)–(7.4) and the bound on q_r of (7.2), where α_X is the minimum eigenvalue of XᵀX/n,
c_ℓ = min_{|u| <= a_ℓ} σ'_ℓ(u), and a_ℓ bounds the pre-activations g_ℓ(x_i, θ') on the ball:

    a_1 = M δ d + δ,      a_ℓ = γ_{ℓ−1}(a_{ℓ−1}) K' d_{ℓ−1} + δ   (ℓ >= 2),

with M = max |entries of the x_i|, K' = K + δ/2 and γ_ℓ(x) = max{σ_ℓ(x), |σ_ℓ(−x)|}. (The
paper's a_ℓ are looser than necessary — the perturbations are at most δ/2, not δ — which only
makes the bound smaller, so it stays valid; we keep the paper's constants.)

So α_lb <= α(θ0, δ/2) <= α̂ (the search of :mod:`sgdconv.lojasiewicz.certificate`), and
4 S(θ0) < (δ/2)² α_lb is a *proof-backed* certificate of (2.1). For L = 2 there are no middle
layers; δ is then a free radius parameter (the ball is B(θ0, δ/2)) and the bound reads
4 α_X d_1 (A − δ/2)² c_1².
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from sgdconv.models.feedforward import (
    FeedForward,
    activation_derivative,
    activation_fn,
    gram_eigenvalues,
)

#: Points per unit-free grid on [−a, a] where c_ℓ = min σ' is evaluated (endpoints included).
_GRID = 2001


@dataclass(frozen=True)
class Theorem41Bound:
    """The constants of the Section-7 argument and the resulting α_lb <= α(θ0, r), r = δ/2.

    α_lb = κ · max(A − δ/2, 0)², where κ = 4 α_X d_1 [(δ/2)^{L−2} d_{L−1}···d_2 c_{L−1}···c_1]²
    does not depend on A (the a_ℓ and c_ℓ, ℓ <= L − 1, do not involve W_L).
    """

    alpha_lb: float
    kappa: float
    delta: float
    r: float
    A: float
    K: float
    M: float
    alpha_x: float
    a: tuple[float, ...]
    c: tuple[float, ...]

    def output_weight_needed(self, f0: float) -> float:
        """The smallest A for which the proof-backed certificate 4 F(θ0) < r² α_lb holds:
        4 F(θ0) < r² κ (A − δ/2)² ⟺ A > δ/2 + 2 √F(θ0) / (r √κ). Infinite when κ underflows
        to 0 (slope floors c_ℓ below the double range)."""
        if self.kappa <= 0:
            return math.inf
        return self.r + 2.0 * math.sqrt(f0) / (self.r * math.sqrt(self.kappa))


def slope_floor(activation: str, a: float, leaky_slope: float = 0.5) -> float:
    """c = min_{|u| <= a} σ'(u), Section 7.

    σ' is evaluated on a grid of [−a, a] that includes both endpoints. For every activation of
    :data:`~sgdconv.models.feedforward.ACTIVATIONS` σ' is monotone on each side of its maximum,
    so the minimum sits at an endpoint and the grid value is exact.
    """
    u = torch.linspace(-a, a, _GRID, dtype=torch.float64)
    return float(activation_derivative(activation, leaky_slope)(u).min())


def gamma(activation: str, x: float, leaky_slope: float = 0.5) -> float:
    """γ(x) = max{σ(x), |σ(−x)|}: the largest |σ(u)| over |u| <= x (σ increasing, σ(0) = 0)."""
    sigma = activation_fn(activation, leaky_slope)
    t = torch.tensor([x, -x], dtype=torch.float64)
    values = sigma(t)
    return max(float(values[0]), abs(float(values[1])))


def theorem41_lower_bound(
    net: FeedForward, theta0: Tensor, x: Tensor, *, delta: float | None = None
) -> Theorem41Bound:
    """α_lb for the Theorem-4.1 point θ0 on B(θ0, δ/2) (Section 7), with its constants.

    ``delta`` is read from θ0 (the minimum entry of W_2..W_{L−1}) for L >= 3 and must be given
    for L = 2, where it only sets the radius δ/2. Raises if θ0 is not a Theorem-4.1
    initialization (W_1 = 0, biases 0, positive middle weights). For A <= δ/2 the argument
    gives nothing and α_lb is the trivial bound 0.
    """
    theta0 = theta0.detach().reshape(-1).to(torch.float64)
    layers = net.layers(theta0)
    if bool(layers[0][0].abs().max() > 0) or any(bool(b.abs().max() > 0) for _, b in layers):
        raise ValueError("Theorem 4.1 needs W_1 = 0 and all biases 0 at θ0")
    middle = [w for w, _ in layers[1:-1]]
    if middle:
        if any(bool(w.min() <= 0) for w in middle):
            raise ValueError("Theorem 4.1 needs strictly positive entries in W_2..W_{L-1}")
        delta_theta = min(float(w.min()) for w in middle)
        if delta is not None and not math.isclose(delta, delta_theta, rel_tol=1e-12):
            raise ValueError(
                f"δ = {delta} given, but θ0's middle weights have minimum {delta_theta}"
            )
        delta = delta_theta
        big_k = max(float(w.max()) for w in middle)
    elif delta is None or delta <= 0:
        raise ValueError("for L = 2 give the radius parameter delta > 0 (the ball is B(θ0, δ/2))")
    else:
        big_k = 0.0  # unused: no middle layer
    A = float(layers[-1][0].min())
    half = delta / 2.0

    x64 = x.to(torch.float64)
    M = float(x64.abs().max())
    alpha_x = float(gram_eigenvalues(x64)[0])
    widths = net.widths  # (d_1, ..., d_{L-1})
    k_prime = big_k + half
    act, slope = net.activation, net.leaky_slope

    a = [M * delta * net.d + delta]  # a_1
    for ell in range(2, net.depth):  # a_2, ..., a_{L-1}
        a.append(gamma(act, a[-1], slope) * k_prime * widths[ell - 2] + delta)
    c = [slope_floor(act, a_l, slope) for a_l in a]

    # Every q_r(x_i, θ') of (7.2) is >= (A − δ/2)(δ/2)^{L−2} d_{L−1}···d_2 c_{L−1}···c_1, so
    # by (7.3)-(7.4) |∇S|²/S >= 4 α_X d_1 q_min² = κ (A − δ/2)².
    path = half ** (net.depth - 2) * math.prod(widths[1:]) * math.prod(c)
    kappa = 4.0 * alpha_x * widths[0] * path**2
    return Theorem41Bound(
        alpha_lb=kappa * max(A - half, 0.0) ** 2,
        kappa=kappa,
        delta=delta,
        r=half,
        A=A,
        K=big_k,
        M=M,
        alpha_x=alpha_x,
        a=tuple(a),
        c=tuple(c),
    )
