"""The networks, data and starting points of the An & Lu Monte-Carlo experiments.

Theorem 3.1 needs a starting point θ0 and a radius R > 1 with the local Łojasiewicz condition
(2.2) on B(θ0, R); An & Lu's Appendix A takes them from Chatterjee's Theorem 4.1. We do the same:
a depth-2 network f(x) = W_2 σ(W_1 x + b_1) + b_2 (:class:`~sgdconv.models.feedforward.FeedForward`)
with Chatterjee's initialization W_1 = 0, b = 0, W_2 = A (:func:`chatterjee_init`) on n
linearly independent inputs in R^d, d >= n.

Why depth 2: for L >= 3 the proof's radius is tied to the middle weights (r = δ/2), while for
L = 2 the radius is free, so R > 1 can be chosen with A > R keeping W_2 positive on the whole
ball — the lower bound of Chatterjee's Section 7 then gives α(θ0, R) >= 4 λ_0 d_1 (A − R)² c_1²
(:mod:`sgdconv.chatterjee.bound`). Why orthonormal inputs (XᵀX/n = I) and an activation
with slope bounded below (the smooth leaky ReLU, or linear): at θ0 the ratio α/C_L is about
2 λ_min/λ_max of the tangent-kernel Gram matrix, which well-conditioned inputs keep near 1, and
Theorem 3.1's step min{1/α, α/(4C_L(2C_L + σ))} is only useful when α/C_L is not tiny.

At θ0 the network outputs 0, so F(θ0) = (1/n) Σ y_i² (Chatterjee (7.5)): scaling the targets
y = √F0 · y_unit with (1/n) Σ y_unit,i² = 1 sets F(θ0) = F0 exactly, leaving the network and θ0
unchanged. That is how the experiments vary F(θ0).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from sgdconv.anlu.settings import NetSettings
from sgdconv.chatterjee.bound import theorem41_lower_bound
from sgdconv.chatterjee.settings import from_mapping
from sgdconv.models.feedforward import FeedForward, chatterjee_init, independent_inputs


@dataclass(frozen=True)
class Problem:
    """A Chatterjee-initialized network with its data: F(θ) = (1/n) Σ (y_i − f(x_i, θ))²
    (An & Lu (A.1)) with targets y = √F0 · ``y_unit``."""

    net: FeedForward
    x: Tensor
    y_unit: Tensor
    theta0: Tensor

    def targets(self, f0: float | Tensor) -> Tensor:
        """y with (1/n) Σ y_i² = F0: shape (n,) for a scalar, (B, n) for a (B,) tensor."""
        scale = torch.as_tensor(f0, dtype=torch.float64).sqrt()
        return (scale.unsqueeze(-1) if scale.dim() else scale) * self.y_unit

    def loss(self, f0: float | Tensor):
        """The batched loss θ (B, p) -> F(θ) (B,) at F(θ0) = F0 (one F0 per row for a tensor)."""
        y = self.targets(f0)
        return lambda theta: self.net.loss(theta, self.x, y)

    def loss_and_grad(self, f0: float | Tensor):
        """θ (B, p) -> (F(θ), ∇F(θ)) at F(θ0) = F0 (one F0 per row for a tensor)."""
        y = self.targets(f0)
        return lambda theta: self.net.loss_and_grad(theta, self.x, y)

    def alpha_lower_bound(self, r: float) -> float:
        """The proof-backed α_lb <= α(θ0, r) of Chatterjee's Section 7 (depth 2: δ = 2r)."""
        if self.net.depth != 2:
            return float("nan")
        try:
            return theorem41_lower_bound(self.net, self.theta0, self.x, delta=2.0 * r).alpha_lb
        except ValueError:  # A <= r: the argument gives nothing
            return float("nan")


def build_problem(settings: NetSettings | Mapping[str, Any], seed: int) -> Problem:
    """The network of ``settings`` (d, n, widths, activation, leaky_slope, output_weight,
    inputs), its inputs and unit targets drawn from ``seed``, and Chatterjee's θ0."""
    net_settings = from_mapping(NetSettings, settings, "anlu.net")
    net = FeedForward(
        net_settings.d, net_settings.widths, net_settings.activation, net_settings.leaky_slope
    )
    if net.depth != 2:
        raise ValueError("the An & Lu experiments use depth-2 networks (a free radius R)")
    generator = torch.Generator().manual_seed(int(seed))
    n = net_settings.n
    x = independent_inputs(n, net.d, kind=net_settings.inputs, generator=generator)
    y = torch.randn(n, generator=generator, dtype=torch.float64)
    y_unit = y / y.pow(2).mean().sqrt()
    # Depth 2 has no middle layer; the middle-weight range of chatterjee_init is then unused.
    theta0 = chatterjee_init(
        net, middle_low=1.0, middle_high=1.0, output_weight=net_settings.output_weight
    )
    return Problem(net, x, y_unit, theta0)
