"""The certificate search against the closed form of Chatterjee's Section 3, and the Section-7
lower bound against direct computations."""

from __future__ import annotations

import math

import pytest
import torch

from sgdconv.chatterjee.bound import slope_floor, theorem41_lower_bound
from sgdconv.lojasiewicz.certificate import (
    certificate_margin,
    lojasiewicz_ratio,
    project_to_ball,
    random_ball_points,
    search_alpha,
)
from sgdconv.models.feedforward import (
    FeedForward,
    activation_derivative,
    chatterjee_init,
    independent_inputs,
)


def xy_loss(theta: torch.Tensor) -> torch.Tensor:
    """f(x, y) = (xy − 1)², batched (written here, independent of sgdconv.chatterjee.xy)."""
    return (theta[:, 0] * theta[:, 1] - 1.0) ** 2


def xy_alpha(x0: float, y0: float, r: float) -> float:
    """Section 3: |∇f|²/f = 4(x² + y²), so α((x0, y0), r) = 4 max(a − r, 0)², a = |(x0, y0)|."""
    return 4.0 * max(math.hypot(x0, y0) - r, 0.0) ** 2


@pytest.mark.parametrize(
    ("x0", "y0", "r"),
    [(2.0, 0.3, 0.5), (1.5, 1.0, 1.0), (-3.0, 2.0, 0.1), (3.0, 3.0, 2.9), (0.7, -2.2, 1.3)],
)
def test_search_matches_the_closed_form_of_section_3(x0, y0, r):
    theta0 = torch.tensor([x0, y0], dtype=torch.float64)
    result = search_alpha(xy_loss, theta0, r, generator=torch.Generator().manual_seed(0))
    exact = xy_alpha(x0, y0, r)
    # α̂ is attained at a point of the ball, so it can only be above the infimum ...
    assert result.alpha_hat >= exact * (1 - 1e-12)
    # ... and the search gets there.
    assert result.alpha_hat == pytest.approx(exact, rel=1e-6)
    # The infimum sits on the sphere, at the point nearest the origin.
    nearest = theta0 * (1 - r / math.hypot(x0, y0))
    torch.testing.assert_close(result.theta_argmin, nearest, atol=1e-3, rtol=0)
    assert result.f0 == pytest.approx((x0 * y0 - 1) ** 2)
    assert result.margin == pytest.approx(r * r * result.alpha_hat - 4 * result.f0)
    assert result.holds == (4 * result.f0 < r * r * result.alpha_hat)


def test_search_finds_zero_when_the_ball_contains_the_saddle():
    # r > a: the ball contains the origin, where f = 1 and the ratio 4(x² + y²) vanishes.
    theta0 = torch.tensor([0.5, 0.2], dtype=torch.float64)
    result = search_alpha(xy_loss, theta0, 1.0, generator=torch.Generator().manual_seed(1))
    assert result.alpha_hat < 1e-6
    assert not result.holds


def test_certificate_verdict_matches_region_3_2():
    # Inside region (3.2), |x0 y0 − 1| < (x0² + y0²)/4, the best radius r = a/2 certifies.
    g = torch.Generator().manual_seed(2)
    for x0, y0, inside in [(2.0, 0.6, True), (2.5, -0.3, False), (1.0, 1.0, True)]:
        a = math.hypot(x0, y0)
        assert (abs(x0 * y0 - 1) < a * a / 4) == inside
        result = search_alpha(
            xy_loss, torch.tensor([x0, y0], dtype=torch.float64), a / 2, generator=g
        )
        assert result.holds == inside


def test_random_points_lie_in_the_ball_and_on_the_sphere():
    g = torch.Generator().manual_seed(3)
    theta0 = torch.randn(50, dtype=torch.float64, generator=g)
    inside = random_ball_points(theta0, 0.7, 400, on_sphere=False, generator=g)
    sphere = random_ball_points(theta0, 0.7, 400, on_sphere=True, generator=g)
    assert float((inside - theta0).norm(dim=1).max()) <= 0.7 + 1e-12
    torch.testing.assert_close(
        (sphere - theta0).norm(dim=1), torch.full((400,), 0.7, dtype=torch.float64)
    )
    # Uniform in a 50-dimensional ball: P(|θ − θ0| <= 0.9 r) = 0.9^50 ≈ 0.5%.
    assert float(((inside - theta0).norm(dim=1) < 0.9 * 0.7).double().mean()) < 0.05


def test_projection_onto_the_ball():
    theta0 = torch.zeros(3, dtype=torch.float64)
    points = torch.tensor([[3.0, 4.0, 0.0], [0.1, 0.0, 0.0]], dtype=torch.float64)
    projected = project_to_ball(points, theta0, 1.0)
    torch.testing.assert_close(
        projected, torch.tensor([[0.6, 0.8, 0.0], [0.1, 0.0, 0.0]], dtype=torch.float64)
    )


def test_ratio_is_infinite_at_zeros_of_f_and_matches_the_gradient():
    theta = torch.tensor([[2.0, 0.5], [1.0, 3.0]], dtype=torch.float64)
    ratio, f = lojasiewicz_ratio(xy_loss, theta)
    assert math.isinf(float(ratio[0])) and float(f[0]) == 0.0
    assert float(ratio[1]) == pytest.approx(4 * (1.0 + 9.0))


def test_stop_below_refutes_early_and_never_hides_a_holding_certificate():
    theta0 = torch.tensor([2.0, 0.3], dtype=torch.float64)
    full = search_alpha(xy_loss, theta0, 0.5, generator=torch.Generator().manual_seed(4))
    early = search_alpha(
        xy_loss, theta0, 0.5, generator=torch.Generator().manual_seed(4), stop_below=1e6
    )
    assert early.n_evals < full.n_evals
    assert early.alpha_hat < 1e6
    assert early.alpha_hat >= full.alpha_hat
    kept = search_alpha(
        xy_loss, theta0, 0.5, generator=torch.Generator().manual_seed(4), stop_below=1.0
    )
    assert kept.alpha_hat == full.alpha_hat


def test_certificate_margin():
    assert certificate_margin(1.0, 2.0, 3.0) == pytest.approx(8.0)
    assert certificate_margin(1.0, 2.0, math.inf) == math.inf


# --- the Section-7 lower bound ------------------------------------------------------------


def _setup(depth: int, width: int, activation: str, seed: int, A: float = 3.0):
    g = torch.Generator().manual_seed(seed)
    n, d = 4, 6
    x = independent_inputs(n, d, generator=g)
    y = torch.randn(n, generator=g, dtype=torch.float64)
    net = FeedForward(d, (width,) * (depth - 1), activation, 0.3)
    theta0 = chatterjee_init(
        net, middle_low=0.4 / width, middle_high=0.8 / width, output_weight=A, generator=g
    )
    return net, x, y, theta0


def test_linear_bound_matches_the_formula_by_hand():
    # Linear activation: c_ℓ = 1, so α_lb = 4 α_X d_1 [(A − δ/2)(δ/2)^{L−2} d_{L−1}···d_2]².
    net, x, _, theta0 = _setup(depth=4, width=3, activation="linear", seed=5)
    bound = theorem41_lower_bound(net, theta0, x)
    middle = [w for w, _ in net.layers(theta0)[1:-1]]
    delta = min(float(w.min()) for w in middle)
    alpha_x = float(torch.linalg.eigvalsh(x @ x.T / x.shape[0])[0])
    expected = 4 * alpha_x * 3 * ((3.0 - delta / 2) * (delta / 2) ** 2 * 3 * 3) ** 2
    assert bound.c == (1.0, 1.0, 1.0)
    assert bound.delta == delta and bound.r == delta / 2
    assert bound.alpha_lb == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("activation", ["linear", "tanh", "smooth_leaky_relu", "bipolar_sigmoid"])
@pytest.mark.parametrize("depth", [2, 3])
def test_bound_is_below_the_ratio_everywhere_in_the_ball(activation, depth):
    # α_lb <= |∇S|²/S at every point of B(θ0, δ/2): random points and the search's α̂.
    net, x, y, theta0 = _setup(depth=depth, width=3, activation=activation, seed=6 + depth)
    delta = 0.4 if depth == 2 else None
    bound = theorem41_lower_bound(net, theta0, x, delta=delta)
    g = torch.Generator().manual_seed(7)
    points = random_ball_points(theta0, bound.r, 500, on_sphere=False, generator=g)
    ratio, _ = lojasiewicz_ratio(lambda th: net.loss(th, x, y), points)
    assert float(ratio.min()) >= bound.alpha_lb
    result = search_alpha(lambda th: net.loss(th, x, y), theta0, bound.r, n_steps=50, generator=g)
    assert bound.alpha_lb <= result.alpha_hat


def test_linear_two_layer_search_and_bound_against_the_exact_infimum():
    # L = 2, linear, n = 1: f = W_2 (W_1 x + b_1) + b_2 and S = (y − f)², so
    # |∇S|²/S = 4 |∇f|² = 4 (|W_2|² (|x|² + 1) + |W_1 x + b_1|² + 1). On B(θ0, r) around
    # W_1 = 0, b = 0, W_2 = A·1 it is smallest when the whole radius shrinks W_2:
    # α = 4 ((A √d_1 − r)² (|x|² + 1) + 1). Section 7 keeps only the W_1 block and a
    # coordinatewise bound: α_lb = 4 α_X d_1 (A − δ/2)² with α_X = |x|².
    net = FeedForward(3, (2,), "linear")
    x = torch.tensor([[1.0, 2.0, -1.0]], dtype=torch.float64)
    y = torch.tensor([1.5], dtype=torch.float64)
    A, delta = 2.0, 1.0
    theta0 = chatterjee_init(net, middle_low=1.0, middle_high=1.0, output_weight=A)
    bound = theorem41_lower_bound(net, theta0, x, delta=delta)
    r = delta / 2
    exact = 4 * ((A * math.sqrt(2) - r) ** 2 * (6.0 + 1) + 1)
    assert bound.alpha_x == pytest.approx(6.0)
    assert bound.alpha_lb == pytest.approx(4 * 6.0 * 2 * (A - r) ** 2)
    result = search_alpha(
        lambda th: net.loss(th, x, y), theta0, r, generator=torch.Generator().manual_seed(8)
    )
    assert result.alpha_hat == pytest.approx(exact, rel=1e-6)
    assert bound.alpha_lb <= exact


def test_slope_floor_is_the_minimum_of_the_derivative():
    for name in ("tanh", "bipolar_sigmoid", "smooth_leaky_relu", "linear"):
        u = torch.linspace(-2.5, 2.5, 100_001, dtype=torch.float64)
        dense = float(activation_derivative(name, 0.3)(u).min())
        assert slope_floor(name, 2.5, 0.3) == pytest.approx(dense, rel=1e-12)
    # Far out, tanh's slope is tiny but not zero (sech², not 1 − tanh²).
    assert 0 < slope_floor("tanh", 30.0) == pytest.approx(4 * math.exp(-60), rel=1e-9)


def test_output_weight_needed_makes_the_proof_backed_certificate_hold():
    net, x, y, theta0 = _setup(depth=3, width=3, activation="smooth_leaky_relu", seed=9)
    bound = theorem41_lower_bound(net, theta0, x)
    f0 = float((y**2).mean())
    A_needed = bound.output_weight_needed(f0)
    for factor, holds in ((1.01, True), (0.99, False)):
        theta = theta0.clone()
        theta[net.slices()[-1][0]] = A_needed * factor
        b = theorem41_lower_bound(net, theta, x)
        assert (4 * f0 < b.r**2 * b.alpha_lb) == holds


def test_bound_rejects_points_that_are_not_theorem_41_initializations():
    net, x, _, theta0 = _setup(depth=3, width=2, activation="tanh", seed=10)
    moved = theta0.clone()
    moved[0] = 0.1  # W_1 != 0
    with pytest.raises(ValueError, match="W_1 = 0"):
        theorem41_lower_bound(net, moved, x)
    two_layer = FeedForward(6, (2,))
    with pytest.raises(ValueError, match="delta"):
        theorem41_lower_bound(
            two_layer, chatterjee_init(two_layer, middle_low=1, middle_high=1, output_weight=1), x
        )
    # A <= δ/2: the argument gives nothing, and α_lb is the trivial bound 0.
    weak = theorem41_lower_bound(
        two_layer,
        chatterjee_init(two_layer, middle_low=1, middle_high=1, output_weight=0.4),
        x,
        delta=1.0,
    )
    assert weak.alpha_lb == 0.0 and weak.kappa > 0
