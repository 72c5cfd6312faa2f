"""The derived quantities of the vision track against hand computations and simulations:
windows and the 2-SE rule, eq. (2) stability, Fig. 5 smoothness, Thm. 4.3's time average and
its slope interval, and the balances of eq. (10) against a simulated heavy-ball SGD on a
quadratic (where the momentum-consistent balance is exact)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from sgdconv.zhang.analysis import phase_stability, phase_windows, plugin_bias, smoothness
from sgdconv.zhang.eq10 import eq10_ratio, eq10_terms
from sgdconv.zhang.thm43 import loglog_slope, slope_interval, time_average_change
from sgdconv.zhang.windows import (
    below_decision,
    centred_window,
    combine,
    final_window,
    order_decision,
    window,
)


def train_log(epoch_losses, steps_per_epoch=4):
    rows, step = [], 0
    for epoch, value in enumerate(epoch_losses):
        for _ in range(steps_per_epoch):
            step += 1
            rows.append((step, epoch, 0.1, value))
    return pd.DataFrame(rows, columns=["step", "epoch", "lr", "minibatch_loss"])


def test_windows_are_half_open_and_their_se_includes_the_spread():
    stats = pd.DataFrame({"epoch": np.arange(11.0), "x": [0.0] * 9 + [1.0, 3.0], "x_se": 0.1})
    single = window(stats, "x", 9, 10)  # epochs (9, 10]: only epoch 10, no spread
    assert (single.n, single.value) == (1, 3.0) and math.isnan(single.se)
    w = final_window(stats, "x", 10)  # 10% is one checkpoint: widened to two
    assert (w.n, w.value) == (2, 2.0) and w.lo == pytest.approx(8.5)
    sparse = stats.iloc[::4]  # epochs 0, 4, 8: 10% of 8 epochs widened to 1.5 spacings
    assert final_window(sparse, "x", 8).n == 2
    w = window(stats, "x", 8, 10, se_column="x_se")  # epochs 9 and 10
    assert w.value == 2.0 and w.se == pytest.approx(np.std([1.0, 3.0], ddof=1) / math.sqrt(2))
    flat = window(stats, "x", 0, 8, se_column="x_se")  # no spread: the estimation SE counts
    assert flat.se == pytest.approx(0.1 / math.sqrt(8))
    centred = centred_window(stats, "x", 1.0, 2.0)  # (0, 2]
    assert centred.n == 2
    median = window(stats, "x", 7, 10, how="median")
    assert median.value == 1.0 and median.se > 0


def test_decisions_follow_the_two_se_rule():
    assert order_decision(0.3, 0.1) == "holds" and order_decision(-0.3, 0.1) == "fails"
    assert (
        order_decision(0.1, 0.1) == "unresolved" and order_decision(1.0, math.nan) == "unresolved"
    )
    assert below_decision(0.01, 0.004, 0.02) == "holds"
    assert below_decision(0.05, 0.01, 0.02) == "fails"
    assert below_decision(0.015, 0.004, 0.02) == "unresolved"
    assert combine(["holds", "unresolved"]) == "unresolved"
    assert combine(["holds", "fails", "unresolved"]) == "fails"
    assert combine(["holds", "holds"]) == "holds" and combine([]) == "unresolved"


def test_phase_stability_compares_adjacent_windows():
    losses = [2.0, 1.0] * 5 + [1.0] * 6 + [1.1, 1.2, 1.3, 1.4]  # phase 2 rises at its end
    table = phase_stability(train_log(losses), [(0, 10), (10, 20)], fraction=0.1)
    assert table["window"].tolist() == [2, 2]
    phase1, phase2 = table.iloc[0], table.iloc[1]
    assert phase1["rel_change"] == pytest.approx(0.0)  # 1.5 vs 1.5, but a large spread
    assert phase1["decision"] == "unresolved"
    assert phase2["rel_change"] == pytest.approx((1.35 - 1.15) / 1.15)
    assert phase2["decision"] == "fails"


def test_smoothness_by_hand():
    stats = pd.DataFrame(
        {
            "epoch": [0, 1, 2, 3, 4],
            "loss_moving_avg": [np.nan, 1.0, 1.1, 1.0, 1.1],
            "loss_last": [2, 1, 1.4, 1, 1.5],
        }
    )
    s = smoothness(stats, after_epoch=0)
    assert s["eq2"] == pytest.approx(0.1) and s["eq3"] == pytest.approx(1.3 / 3)
    assert s["ratio"] == pytest.approx(0.3 / 1.3) and s["pairs"] == 3
    se3 = np.std([0.4, 0.4, 0.5], ddof=1) / math.sqrt(3)
    assert s["ratio_se"] == pytest.approx(s["ratio"] * se3 / (1.3 / 3), rel=1e-6)


def test_phase_windows_and_plugin_bias():
    assert phase_windows([30, 60], 90) == [(0.0, 30.0), (30.0, 60.0), (60.0, 90.0)]
    stats = pd.DataFrame(
        {
            "epoch": np.arange(11.0),
            "n_samples": 1000,
            "population_size": 4000.0,
            "noise_norm_sq": 100.0,
            "grad_norm_plugin": 0.5,
        }
    )
    b = plugin_bias(stats, 10)
    assert b["f"] == pytest.approx(0.75) and b["bias"] == pytest.approx(0.075)
    assert b["share"] == pytest.approx(0.075 / 0.25)
    stats["population_size"] = 1000.0  # the sample is the training set: no bias
    assert plugin_bias(stats, 10)["share"] == 0.0


def test_time_average_change_and_its_slope():
    steps = np.array([0, 10, 20, 40, 80])
    stats = pd.DataFrame(
        {
            "step": steps,
            "epoch": steps / 10,
            "loss": [3.0, 2.0, 1.5, 1.2, 1.0],
            "one_step_change": [0.2, 0.1, np.nan, -0.1, np.nan],
            "one_step_change_se": [0.0, 0.1, np.nan, 0.2, np.nan],
        }
    )
    curve = time_average_change(stats)
    np.testing.assert_allclose(
        curve["realized"], (3.0 - np.array([2.0, 1.5, 1.2, 1.0])) / steps[1:]
    )
    np.testing.assert_allclose(curve["independent"], [0.1, 0.1, 0.0, 0.0])
    np.testing.assert_allclose(
        curve["independent_se"], [0.1, 0.1, math.sqrt(0.05) / 2] * 1 + [math.sqrt(0.05) / 2]
    )
    n = np.array([10.0, 100.0, 1000.0])
    slope, intercept = loglog_slope(n, -3.0 * n**-0.5)
    assert slope == pytest.approx(-0.5) and math.exp(intercept) == pytest.approx(3.0)


def test_slope_interval_covers_the_power_law_and_widens_with_noise():
    n = np.arange(1, 41) * 100.0
    d = np.diff(np.concatenate([[0.0], n**0.5]))  # running mean = n^0.5 / count ∝ n^-0.5
    curve = pd.DataFrame({"n": n, "change": d, "change_se": 1e-3})
    counts = np.arange(1, 41)
    curve["independent"] = np.cumsum(d) / counts
    exact = slope_interval(curve)
    assert exact.slope == pytest.approx(-0.5, abs=1e-6)
    assert exact.lo < -0.5 < exact.hi and exact.hi - exact.lo < 0.01
    curve["change_se"] = 5.0
    wide = slope_interval(curve)
    assert wide.hi - wide.lo > 0.5


def simulate_heavy_ball(h, s, eta, beta, chains=2000, steps=3000, seed=0):
    """Heavy-ball SGD on L = ½ Σ h_i θ_i² with gradient noise N(0, s_i²), ``chains``
    independent chains at once: the averages of |∇L|² and ∇LᵀH∇L over the last half."""
    rng = np.random.default_rng(seed)
    theta, v = np.zeros((chains, len(h))), np.zeros((chains, len(h)))
    g2 = gh = 0.0
    for t in range(steps):
        grad = h * theta
        v = beta * v + grad + s * rng.standard_normal(theta.shape)
        theta = theta - eta * v
        if t >= steps // 2:
            g2 += float((grad**2).sum(1).mean())
            gh += float((h * grad**2).sum(1).mean())
    count = steps - steps // 2
    return g2 / count, gh / count


@pytest.mark.parametrize("beta", [0.0, 0.9])
def test_the_momentum_balance_is_exact_on_a_quadratic(beta):
    h, s, eta = np.array([1.0, 4.0]), np.array([1.0, 0.5]), 0.02
    g2, gh = simulate_heavy_ball(h, s, eta, beta)
    noise_curv = float(h @ s**2)  # tr(HΣ)
    stats = pd.DataFrame(
        {
            "step": [1],
            "epoch": [1.0],
            "lr": eta,
            "momentum": beta,
            "grad_norm_sq": g2,
            "noise_norm_sq": float(s @ s),
            "batch_size": 1,
            "sharpness": h.max(),
            "sgd_curvature": gh + noise_curv,
            "mean_curvature": gh,
            "noise_curvature": noise_curv,
        }
    )
    r = eq10_ratio(eq10_terms(stats), from_fraction=0.0)
    assert r["ratio_momentum"] == pytest.approx(1.0, abs=0.05)
    # The paper's eq. (10) as written: 1/2 for plain SGD, about 1/(2(1 − β)) with momentum
    # when the noise term dominates.
    expected = 0.5 * (noise_curv / (1 - beta) + gh / (1 + beta)) / (noise_curv + gh)
    assert r["ratio_directional"] == pytest.approx(expected, rel=0.05)
    assert r["ratio_directional"] == pytest.approx(0.5 if beta == 0 else 4.0, rel=0.1)
