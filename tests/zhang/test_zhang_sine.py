"""zhang_fig4's toy problem against closed forms: the gradient, one GD step, the time average."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sgdconv.zhang.sine import (
    claims,
    gradient_descent,
    running_average,
    simulate,
    sine_grad,
    sine_loss,
)


def test_gradient_matches_central_differences():
    rng = np.random.default_rng(0)
    h = 1e-6
    for theta in rng.uniform(-5, 5, size=(20, 2)):
        numeric = [
            (sine_loss(theta + h * e) - sine_loss(theta - h * e)) / (2 * h) for e in np.eye(2)
        ]
        np.testing.assert_allclose(sine_grad(theta), numeric, rtol=1e-6, atol=1e-6)


def test_one_step_by_hand():
    theta0 = np.array([0.3, -1.2])
    g = 100 * np.array([np.cos(0.3) * np.sin(-1.2), np.sin(0.3) * np.cos(-1.2)])
    run = gradient_descent(theta0, lr=0.01, steps=1)
    np.testing.assert_allclose(run[["theta1", "theta2"]].iloc[1], theta0 - 0.01 * g)
    assert run["loss"].iloc[0] == pytest.approx(100 * np.sin(0.3) * np.sin(-1.2))
    assert run["grad_norm"].iloc[0] == pytest.approx(np.linalg.norm(g))


def test_running_average_is_mean_of_prefix():
    x = np.array([3.0, -1.0, 4.0, 1.0])
    np.testing.assert_allclose(running_average(x), [3.0, 1.0, 2.0, 1.75])


def test_small_step_converges_to_a_minimum_of_value_minus_a():
    # Below 2/L_f the iterates reach a minimum f = -100 where the Hessian is 100 I.
    run = gradient_descent([1.0, 0.5], lr=0.01, steps=2000)
    assert run["loss"].iloc[-1] == pytest.approx(-100.0)
    assert run["grad_norm"].iloc[-1] < 1e-10


def test_large_step_is_unstable_at_every_minimum():
    # Around a minimum GD multiplies the error by 1 - 0.04 * 100 = -3: it cannot stay there.
    minimum = np.array([np.pi / 2, -np.pi / 2])
    run = gradient_descent(minimum + 1e-6, lr=0.04, steps=30)
    assert run["grad_norm"].iloc[-1] > 1.0


def test_claims_hold_for_the_papers_setting_and_fail_when_they_should():
    table = simulate([1.0, 0.5], [0.01, 0.04], 2000)
    params = {"lr_converging": 0.01, "lr_oscillating": 0.04, "window": 500}
    rows = {c.claim_id: c for c in claims({"trajectories": table}, params)}
    assert all(c.holds for c in rows.values())
    # Swap the roles: the large step does not converge and the small one does not oscillate.
    swapped = {"lr_converging": 0.04, "lr_oscillating": 0.01, "window": 500}
    rows = {c.claim_id: c for c in claims({"trajectories": table}, swapped)}
    assert rows["zhang_fig4_converges"].holds is False
    assert rows["zhang_fig4_oscillates"].holds is False


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="steps"):
        gradient_descent([0, 0], 0.01, 0)
    with pytest.raises(ValueError, match="lr"):
        gradient_descent([0, 0], -0.01, 10)


def test_table_columns():
    assert isinstance(simulate([1, 0.5], [0.01], 3), pd.DataFrame)
