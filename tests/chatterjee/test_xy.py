"""The (xy − 1)² example of Chatterjee (2022), Section 3, against independent ground truth:
finite differences, hand computation, brute force over balls, invariants of the flow (3.1)
and its closed form on y = −x."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from sgdconv.chatterjee.xy import (
    EPSILON_SHRINK,
    alpha_exact,
    first_derivative_bound,
    gd_trajectory,
    gd_until,
    in_region,
    region_margin,
    second_derivative_bound,
    theorem22_constants,
    xy_grad,
    xy_hessian,
    xy_loss,
)
from sgdconv.chatterjee.xy_flow import flow_entry, flow_on_antidiagonal, flow_rhs
from sgdconv.chatterjee.xy_tables import prop31_table, symmetric_grid, thm22_tables

RNG = np.random.default_rng(20220701)


def ball_samples(center: np.ndarray, radius: float, n: int = 200_000) -> np.ndarray:
    """Dense samples of the closed disc B(center, radius): uniform inside plus its boundary
    circle (where the extrema of the quantities tested here lie)."""
    u = RNG.uniform(size=n)
    angle = RNG.uniform(0, 2 * np.pi, size=n)
    inner = radius * np.sqrt(u)[:, None] * np.column_stack([np.cos(angle), np.sin(angle)])
    circle = np.linspace(0, 2 * np.pi, n, endpoint=False)
    rim = radius * np.column_stack([np.cos(circle), np.sin(circle)])
    return center + np.vstack([inner, rim])


def random_inside_starts(n: int) -> np.ndarray:
    z = RNG.uniform(-4, 4, size=(20 * n, 2))
    return z[in_region(z)][:n]


# --- f, ∇f, ∇²f ------------------------------------------------------------------------------


def test_gradient_and_hessian_match_central_differences():
    h = 1e-6
    for z in RNG.uniform(-3, 3, size=(20, 2)):
        grad = [(xy_loss(z + h * e) - xy_loss(z - h * e)) / (2 * h) for e in np.eye(2)]
        np.testing.assert_allclose(xy_grad(z), grad, rtol=1e-6, atol=1e-6)
        hess = [(xy_grad(z + h * e) - xy_grad(z - h * e)) / (2 * h) for e in np.eye(2)]
        np.testing.assert_allclose(xy_hessian(z), np.array(hess).T, rtol=1e-5, atol=1e-5)


def test_gradient_ratio_is_four_times_squared_norm():
    # Section 3: |∇f|²/f = 4(x² + y²) wherever f != 0.
    z = RNG.uniform(-3, 3, size=(1000, 2))
    ratio = np.sum(xy_grad(z) ** 2, axis=-1) / xy_loss(z)
    np.testing.assert_allclose(ratio, 4 * np.sum(z**2, axis=-1), rtol=1e-10)


def test_flow_rhs_is_minus_gradient():
    for z in RNG.uniform(-3, 3, size=(10, 2)):
        np.testing.assert_allclose(flow_rhs(0.0, z), -xy_grad(z))


# --- the region (3.2) ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("point", "inside"),
    [
        ((1.0, 1.0), True),  # on xy = 1: 0 < 1/2
        ((0.0, 0.0), False),  # the saddle: 1 < 0 fails
        ((2.0, 0.0), False),  # on the boundary: |−1| = 4/4, and (3.2) is strict
        ((2.0, 0.01), True),
        ((10.0, -0.1), True),  # any fixed y0 with x0 large enough (Section 3)
        ((0.5, 0.5), False),  # |0.25 − 1| = 0.75 > 0.125
    ],
)
def test_region_by_hand(point, inside):
    assert bool(in_region(point)) is inside


def test_no_point_of_the_antidiagonal_is_in_the_region():
    # On y = −x: |−x² − 1| = x² + 1 > x²/2.
    x = np.linspace(-50, 50, 10_001)
    assert not in_region(np.column_stack([x, -x])).any()


def test_region_is_where_the_best_condition_2_1_holds():
    # (3.2) <=> 4 f(x0) < sup_{0<r<=a} r² α(x0, r) = a⁴/4 (Section 3), with α by brute force
    # over a grid of radii.
    for z0 in RNG.uniform(-3, 3, size=(200, 2)):
        a = np.linalg.norm(z0)
        radii = np.linspace(0, a, 2001)
        best = np.max(radii**2 * alpha_exact(z0, radii))
        if abs(4 * xy_loss(z0) - a**4 / 4) > 1e-3:  # away from the boundary, where grids blur
            assert bool(in_region(z0)) == bool(4 * xy_loss(z0) < best)


# --- α(x0, r) of (2.1) and the bounds L1, L2 ------------------------------------------------


@pytest.mark.parametrize(
    ("z0", "r"),
    [((1.5, 1.0), 0.9), ((2.0, -0.5), 0.3), ((-1.0, 3.0), 2.5), ((0.5, 0.2), 1.0)],
)
def test_alpha_exact_matches_brute_force_over_the_ball(z0, r):
    z0 = np.asarray(z0)
    z = ball_samples(z0, r)
    f = xy_loss(z)
    keep = f > 0
    brute = np.min(np.sum(xy_grad(z[keep]) ** 2, axis=-1) / f[keep])
    exact = alpha_exact(z0, r)
    assert exact <= brute + 1e-12
    # abs: the samples nearest the origin are ~r/√n away when the ball holds it.
    assert brute == pytest.approx(exact, rel=1e-3, abs=1e-4)


def test_alpha_is_zero_when_the_ball_holds_the_origin():
    assert alpha_exact([1.0, 1.0], 2.0) == 0.0
    assert alpha_exact([[3.0, 4.0]], [5.0])[0] == 0.0


@pytest.mark.parametrize("trial", range(6))
def test_derivative_bounds_are_rigorous_on_the_theorems_balls(trial):
    z0 = RNG.uniform(-3, 3, size=2)
    a = np.linalg.norm(z0)
    r = a / 2
    first = np.abs(xy_grad(ball_samples(z0, r, 50_000))).max()
    second = np.abs(xy_hessian(ball_samples(z0, 2 * r, 50_000))).max()
    assert first <= first_derivative_bound(a + r)
    assert second <= second_derivative_bound(a + 2 * r)


@pytest.mark.parametrize("rho", [0.5, 1.0, 3.0])
def test_derivative_bounds_are_not_loose_on_the_disc_they_cover(rho):
    # The closed forms bound the disc |z| <= ρ; on that disc they are tight within a factor 2.
    z = ball_samples(np.zeros(2), rho, 50_000)
    assert np.abs(xy_grad(z)).max() >= first_derivative_bound(rho) / 2
    assert np.abs(xy_hessian(z)).max() >= second_derivative_bound(rho) / 2


# --- Theorem 2.2's constants ----------------------------------------------------------------


def test_theorem22_constants_by_hand():
    # x0 = (2, 1): a = √5, r = √5/2, α = 4(a/2)² = 5, f(x0) = 1, q = 2·1/(r√α) = 0.8.
    a = math.sqrt(5)
    r = a / 2
    L1 = (a + r) ** 3 + 2 * (a + r)
    L2 = 2 * (a + 2 * r) ** 2 + 2  # = 42
    cap, per_eps = r / (L1 * math.sqrt(2)), 6 / (L2 * 2)
    epsilon = min(0.5, cap / per_eps, 0.99 * (1 - 0.8))
    eta = min(cap, per_eps * epsilon)
    row = theorem22_constants([2.0, 1.0]).iloc[0]
    assert row["r"] == pytest.approx(r)
    assert row["alpha"] == pytest.approx(5.0)
    assert row["q"] == pytest.approx(0.8)
    assert row["L1"] == pytest.approx(L1)
    assert row["L2"] == pytest.approx(42.0)
    assert row["epsilon"] == pytest.approx(epsilon)
    assert row["eta"] == pytest.approx(eta)
    assert row["delta"] == pytest.approx((1 - epsilon) * 5.0 * eta)


def test_theorem22_constants_satisfy_the_theorems_conditions():
    z0 = random_inside_starts(300)
    c = theorem22_constants(z0)
    assert ((c["epsilon"] > 0) & (c["epsilon"] < 1)).all()
    # (2.2), strictly.
    assert (4 * c["f0"] < (1 - c["epsilon"]) ** 2 * c["r"] ** 2 * c["alpha"]).all()
    cap = np.minimum(c["r"] / (c["L1"] * np.sqrt(2)), 6 * c["epsilon"] / (c["L2"] * 2))
    assert (c["eta"] <= cap * (1 + 1e-12)).all()
    assert ((c["delta"] > 0) & (c["delta"] <= 1)).all()


def test_epsilon_maximizes_the_guaranteed_rate():
    # Scan the admissible ε on a fine grid: the chosen one is as good as the best of them (up
    # to the 1% by which ε is kept below its supremum when (2.2) binds), and not better than
    # the grid's best by more than the grid's resolution (it is admissible and uses the
    # theorem's formulas).
    for _, c in theorem22_constants(random_inside_starts(50)).iterrows():
        eps = np.linspace(1e-6, 1 - c["q"], 20_001)[:-1]
        eta = np.minimum(c["r"] / (c["L1"] * np.sqrt(2)), 6 * eps / (c["L2"] * 2))
        best = np.max((1 - eps) * c["alpha"] * eta)
        assert c["delta"] >= EPSILON_SHRINK * best * (1 - 1e-9)
        assert c["delta"] <= best * (1 + 1e-3)


def test_starts_outside_the_region_get_no_step():
    c = theorem22_constants([[0.0, 0.0], [2.0, 2.0], [1.0, -1.0]])
    assert c[["epsilon", "eta", "delta"]].isna().all().all()


# --- gradient descent -----------------------------------------------------------------------


def test_one_gd_step_by_hand():
    z0 = np.array([1.5, -0.5])
    g = 2 * (1.5 * -0.5 - 1) * np.array([-0.5, 1.5])
    path = gd_trajectory(z0, 0.01, 1)
    np.testing.assert_allclose(path[1], z0 - 0.01 * g)


def test_gd_until_matches_a_plain_loop_per_start():
    z0 = random_inside_starts(40)
    eta = theorem22_constants(z0)["eta"].to_numpy()
    final, f_final, steps = gd_until(z0, eta, 1e-10, 100_000)
    for z, e, zf, ff, k in zip(z0, eta, final, f_final, steps, strict=True):
        path = gd_trajectory(z, e, 100_000, f_tol=1e-10)
        assert len(path) - 1 == k
        np.testing.assert_array_equal(path[-1], zf)
        assert xy_loss(path[-1]) == ff < 1e-10
        assert (xy_loss(path[:-1]) >= 1e-10).all()  # it stopped at the first one


def test_gd_until_reports_starts_that_do_not_converge():
    # On y = −x GD goes to the saddle, where f = 1: it never reaches the tolerance.
    _, f_final, steps = gd_until([[1.0, -1.0]], 0.01, 1e-10, 500)
    assert steps[0] == 500
    assert f_final[0] == pytest.approx(1.0, abs=1e-3)


def test_theorem22_conclusions_hold_along_gd():
    constants, traj = thm22_tables(random_inside_starts(20), 20_000, 1e-20)
    traj = traj.join(constants.set_index("start")[["r", "f0", "delta"]], on="start")
    assert (traj["f"] <= (1 - traj["delta"]) ** traj["step"] * traj["f0"] * (1 + 1e-12)).all()
    assert (traj["dist"] <= traj["r"]).all()
    assert (traj["bound"].groupby(traj["start"]).min() >= 1e-20 * (1 - 0.1)).all()


def test_thm22_tables_refuse_starts_outside_the_region():
    with pytest.raises(ValueError, match="inside the region"):
        thm22_tables([[1.5, 1.0], [2.0, 2.0]], 100, 1e-20)


# --- the gradient flow (3.1) and Proposition 3.1 -------------------------------------------


def test_closed_form_on_the_antidiagonal_solves_the_flow():
    # x(t) of the closed form satisfies x' = −2x(1 + x²) (checked by central differences).
    t = np.linspace(0, 3, 301)
    h = 1e-6
    for x0 in (-2.0, 0.3, 1.5):
        x = flow_on_antidiagonal(x0, t)
        assert x[0] == pytest.approx(x0)
        dx = (flow_on_antidiagonal(x0, t + h) - flow_on_antidiagonal(x0, t - h)) / (2 * h)
        np.testing.assert_allclose(dx, -2 * x * (1 + x**2), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("x0", [-3.0, -0.7, 0.25, 2.0])
def test_flow_from_the_antidiagonal_stays_on_it_and_goes_to_the_saddle(x0):
    row = flow_entry([x0, -x0], t_max=20.0)
    assert not row["entered"]
    assert row["on_antidiagonal"]
    assert row["x_end"] + row["y_end"] == 0.0  # exactly: the solver preserves the symmetry
    assert row["x_end"] == pytest.approx(flow_on_antidiagonal(x0, 20.0), abs=1e-13)
    assert row["norm_end"] < 1e-12


def test_flow_conserves_x2_minus_y2_and_ends_on_xy_equal_1():
    # d/dt (x² − y²) = 2x·2(1 − xy)y − 2y·2(1 − xy)x = 0 along (3.1).
    for z0 in ([2.0, 2.5], [-0.5, 0.3], [0.3, -3.5], [3.0, -2.9]):
        sol = solve_ivp(flow_rhs, (0, 40), z0, method="DOP853", rtol=1e-11, atol=1e-13)
        x, y = sol.y
        np.testing.assert_allclose(x**2 - y**2, z0[0] ** 2 - z0[1] ** 2, atol=1e-8)
        assert x[-1] * y[-1] == pytest.approx(1.0, abs=1e-8)


@pytest.mark.parametrize("z0", [[2.5, 2.5], [-0.5, 0.3], [3.0, -2.9], [-3.0, -3.5]])
def test_flow_entry_is_the_first_crossing_into_the_region(z0):
    row = flow_entry(z0, t_max=40.0)
    assert row["entered"] and row["t_enter"] > 0
    entry = np.array([row["x_enter"], row["y_enter"]])
    assert region_margin(entry) == pytest.approx(0.0, abs=1e-9)
    # An independent dense integration: outside up to the entry time, inside just after.
    t = np.linspace(0, row["t_enter"], 2001)
    sol = solve_ivp(
        flow_rhs, (0, row["t_enter"] * 1.01), z0, rtol=1e-11, atol=1e-13, dense_output=True
    )
    assert (region_margin(sol.sol(t[:-1]).T) < 0).all()
    assert region_margin(sol.sol(row["t_enter"] * 1.01)) > 0


def test_start_inside_the_region_enters_at_time_zero():
    row = flow_entry([1.5, 1.0], t_max=10.0)
    assert row["inside_at_start"] and row["entered"] and row["t_enter"] == 0.0


def test_entry_time_grows_like_half_log_of_the_distance_to_the_line():
    # Section 9, (9.1): near y = −x, x + y grows like e^{2t}; so t_enter − ½ log(1/s) tends
    # to a constant as s -> 0 (and the time doubles over the first decades: no plateau).
    offsets = [1e-3, 1e-6, 1e-9]
    table = prop31_table(1.0, 1, [1.0], offsets, t_max=40.0)
    near = table[table["set"] == "near_line"].set_index(np.log(offsets))
    assert near["entered"].all()
    excess = near["t_enter"] - 0.5 * np.log(1 / np.array(offsets))
    assert abs(excess.iloc[2] - excess.iloc[1]) < 1e-3
    assert abs(excess.iloc[1] - excess.iloc[0]) < 0.05


def test_symmetric_grid_holds_the_antidiagonal_exactly():
    m = 7
    z = symmetric_grid(3.3, m)
    assert len(z) == (2 * m + 1) ** 2
    on_line = z[:, 0] + z[:, 1] == 0
    assert on_line.sum() == 2 * m + 1
    assert {tuple(p) for p in z} == {(-y, -x) for x, y in z}
    assert z.min() == -3.3 and z.max() == 3.3


def test_proposition_31_on_a_small_grid():
    table = prop31_table(3.0, 6, [0.5], [1e-4], t_max=30.0)
    off = table[~table["on_antidiagonal"]]
    on = table[table["on_antidiagonal"]]
    assert off["entered"].all()
    assert (~on["entered"]).all() and (on["norm_end"] < 1e-10).all()
    assert len(on) == 2 * 6 + 1
