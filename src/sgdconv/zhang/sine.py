"""Zhang et al. (2022), Section 3.4 and Fig. 4: gradient descent on f = A sin θ1 sin θ2.

With A = 100 the function is L_f = 100 smooth, so GD with η < 2/L_f = 0.02 converges to a
stationary point, while η = 0.04 > 2/L_f keeps oscillating among a few points: the loss and the
gradient norm never settle, but their *time averages* (averages over iterations) converge.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from sgdconv.claims import Claim

COLUMNS = [
    "lr",
    "step",
    "theta1",
    "theta2",
    "loss",
    "grad_norm",
    "loss_running_avg",
    "grad_norm_running_avg",
]


def sine_loss(theta: np.ndarray, amplitude: float = 100.0) -> np.ndarray:
    """f(θ) = A sin θ1 sin θ2, for θ of shape (..., 2)."""
    theta = np.asarray(theta, dtype=float)
    return amplitude * np.sin(theta[..., 0]) * np.sin(theta[..., 1])


def sine_grad(theta: np.ndarray, amplitude: float = 100.0) -> np.ndarray:
    """∇f(θ) = A (cos θ1 sin θ2, sin θ1 cos θ2), for θ of shape (..., 2)."""
    theta = np.asarray(theta, dtype=float)
    return amplitude * np.stack(
        [
            np.cos(theta[..., 0]) * np.sin(theta[..., 1]),
            np.sin(theta[..., 0]) * np.cos(theta[..., 1]),
        ],
        axis=-1,
    )


def running_average(values: np.ndarray) -> np.ndarray:
    """Average over iterations 0..k at every k (the time average of Fig. 4, columns III-IV)."""
    values = np.asarray(values, dtype=float)
    return np.cumsum(values) / np.arange(1, len(values) + 1)


def gradient_descent(
    theta0: Sequence[float], lr: float, steps: int, amplitude: float = 100.0
) -> pd.DataFrame:
    """Run ``steps`` GD steps θ_{k+1} = θ_k − η ∇f(θ_k) and return the tidy trajectory.

    One row per iterate k = 0..steps with the columns of :data:`COLUMNS`.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if lr <= 0:
        raise ValueError(f"lr must be > 0, got {lr}")
    thetas = np.empty((steps + 1, 2))
    thetas[0] = theta0
    for k in range(steps):
        thetas[k + 1] = thetas[k] - lr * sine_grad(thetas[k], amplitude)
    loss = sine_loss(thetas, amplitude)
    grad_norm = np.linalg.norm(sine_grad(thetas, amplitude), axis=-1)
    return pd.DataFrame(
        {
            "lr": float(lr),
            "step": np.arange(steps + 1),
            "theta1": thetas[:, 0],
            "theta2": thetas[:, 1],
            "loss": loss,
            "grad_norm": grad_norm,
            "loss_running_avg": running_average(loss),
            "grad_norm_running_avg": running_average(grad_norm),
        },
        columns=COLUMNS,
    )


def simulate(
    theta0: Sequence[float], lrs: Sequence[float], steps: int, amplitude: float = 100.0
) -> pd.DataFrame:
    """The table behind Fig. 4: one trajectory per learning rate, stacked."""
    return pd.concat(
        [gradient_descent(theta0, lr, steps, amplitude) for lr in lrs], ignore_index=True
    )


# Thresholds of ARTIFACTS.md.
CONVERGED_GRAD_NORM = 1e-6
OSCILLATING_MIN_GRAD_NORM = 1.0
TIME_AVERAGE_REL_CHANGE = 0.01


def claims(tables: Mapping[str, pd.DataFrame], params: Mapping[str, Any]) -> list[Claim]:
    """Claims of ``zhang_fig4`` from the trajectory table.

    ``params``: ``lr_converging``, ``lr_oscillating`` (which rows to use), ``window`` (the last
    iterations examined, 500 in the paper).
    """
    table = tables["trajectories"]
    window = int(params["window"])
    small = table[np.isclose(table["lr"], params["lr_converging"])].sort_values("step")
    large = table[np.isclose(table["lr"], params["lr_oscillating"])].sort_values("step")
    last_step = int(large["step"].max())
    start = last_step - window
    tail = large[large["step"] >= start]
    avg = large.set_index("step")["loss_running_avg"]
    loss_range = float(tail["loss"].max() - tail["loss"].min())
    change = abs(float(avg.loc[last_step] - avg.loc[start]))
    rel_change = change / loss_range if loss_range > 0 else float("nan")
    eta_s, eta_l = small["lr"].iloc[0], large["lr"].iloc[0]
    return [
        Claim(
            "zhang_fig4_converges",
            "zhang",
            "zhang_fig4",
            f"At η = {eta_s:g}, GD reaches a stationary point: |∇f| at the last step "
            f"(step {int(small['step'].max())}) < 1e-6.",
            "|∇f(θ_last)|",
            float(small["grad_norm"].iloc[-1]),
            "<",
            CONVERGED_GRAD_NORM,
        ),
        Claim(
            "zhang_fig4_oscillates",
            "zhang",
            "zhang_fig4",
            f"At η = {eta_l:g} > 2/L_f, GD keeps away from stationary points: the minimum of "
            f"|∇f| over the last {window} steps > 1.",
            f"min |∇f| over last {window} steps",
            float(tail["grad_norm"].min()),
            ">",
            OSCILLATING_MIN_GRAD_NORM,
        ),
        Claim(
            "zhang_fig4_time_average",
            "zhang",
            "zhang_fig4",
            f"At η = {eta_l:g}, the running average of the loss changes between steps {start} "
            f"and {last_step} by < 1% of the loss range over the last {window} steps.",
            "|Δ running-avg loss| / loss range",
            rel_change,
            "<",
            TIME_AVERAGE_REL_CHANGE,
            note=f"start θ0 = ({table['theta1'].iloc[0]:g}, {table['theta2'].iloc[0]:g}) "
            "(a config value; the paper does not give it)",
        ),
    ]
