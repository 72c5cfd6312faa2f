"""Chatterjee (2022), Proposition 3.1 (proved in Section 9): the gradient flow (3.1) of
f(x, y) = (xy − 1)², integrated with an adaptive ODE solver and event detection, its entry time
into the region (3.2), and its closed form on the antidiagonal y = −x."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike
from scipy.integrate import solve_ivp

from sgdconv.chatterjee.xy import in_region, region_margin

# ---------------------------------------------------------------------------------------------
# Gradient flow (3.1) and Proposition 3.1


def flow_rhs(t: float, z: np.ndarray) -> np.ndarray:
    """Right-hand side of the gradient flow (3.1): (2(1 − xy)y, 2(1 − xy)x)."""
    s = 2.0 * (1.0 - z[0] * z[1])
    return np.array([s * z[1], s * z[0]])


def _enters_region(t: float, z: np.ndarray) -> float:
    return (z[0] ** 2 + z[1] ** 2) / 4.0 - abs(z[0] * z[1] - 1.0)


_enters_region.terminal = True  # type: ignore[attr-defined]
_enters_region.direction = 1.0  # type: ignore[attr-defined]


def flow_on_antidiagonal(x0: float, t: ArrayLike) -> np.ndarray:
    """Closed form of (3.1) from (x0, −x0) (Section 9): the flow stays on y = −x and
    x' = −2x(1 + x²), so u = x² solves u' = −4u(1 + u): u/(1 + u) = c e^{−4t},
    c = x0²/(1 + x0²). Returns x(t) (and y(t) = −x(t)); it tends to 0, the saddle."""
    t = np.asarray(t, dtype=float)
    c = x0**2 / (1.0 + x0**2)
    ce = c * np.exp(-4.0 * t)
    return np.sign(x0) * np.sqrt(ce / (1.0 - ce))


PROP31_COLUMNS = [
    "x0",
    "y0",
    "on_antidiagonal",
    "margin",
    "inside_at_start",
    "entered",
    "t_enter",
    "x_enter",
    "y_enter",
    "t_end",
    "x_end",
    "y_end",
    "norm_end",
    "nfev",
]


def flow_entry(
    z0: Sequence[float],
    t_max: float,
    method: str = "DOP853",
    rtol: float = 1e-10,
    atol: float = 1e-14,
) -> dict[str, float | bool]:
    """Integrate (3.1) from ``z0`` until it enters the region (3.2), or until ``t_max``.

    Entering is an event of ``solve_ivp``: the margin (x² + y²)/4 − |xy − 1| crossing 0
    upwards. A start already inside enters at t = 0. Returns one row of
    :data:`PROP31_COLUMNS` (the entry point is NaN if the flow has not entered by t_max;
    the end point is where the integration stopped: the entry point or φ(t_max)).
    """
    x0, y0 = float(z0[0]), float(z0[1])
    row: dict[str, float | bool] = {
        "x0": x0,
        "y0": y0,
        "on_antidiagonal": x0 + y0 == 0.0,
        "margin": float(region_margin([x0, y0])),
        "inside_at_start": bool(in_region([x0, y0])),
    }
    if row["inside_at_start"]:
        t_enter, enter, end, t_end, nfev = 0.0, (x0, y0), (x0, y0), 0.0, 0
    else:
        sol = solve_ivp(
            flow_rhs,
            (0.0, t_max),
            [x0, y0],
            method=method,
            rtol=rtol,
            atol=atol,
            events=_enters_region,
        )
        if not sol.success:
            raise RuntimeError(f"solve_ivp failed from {z0}: {sol.message}")
        hit = len(sol.t_events[0]) > 0
        t_enter = float(sol.t_events[0][0]) if hit else np.nan
        enter = tuple(sol.y_events[0][0]) if hit else (np.nan, np.nan)
        end, t_end, nfev = tuple(sol.y[:, -1]), float(sol.t[-1]), int(sol.nfev)
    row.update(
        entered=bool(np.isfinite(t_enter)),
        t_enter=t_enter,
        x_enter=float(enter[0]),
        y_enter=float(enter[1]),
        t_end=t_end,
        x_end=float(end[0]),
        y_end=float(end[1]),
        norm_end=float(np.hypot(*end)),
        nfev=nfev,
    )
    return row
