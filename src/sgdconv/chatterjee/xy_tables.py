"""The tidy tables behind ``chatterjee_fig1``, ``chatterjee_prop31`` and ``chatterjee_thm22``:
GD and gradient-flow runs of f(x, y) = (xy − 1)² from a symmetric grid of starts (Chatterjee
2022, Sections 3 and 6)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.integrate import solve_ivp

from sgdconv.chatterjee.xy import (
    gd_trajectory,
    gd_until,
    in_region,
    region_margin,
    theorem22_constants,
    xy_grad,
    xy_loss,
)
from sgdconv.chatterjee.xy_flow import PROP31_COLUMNS, flow_entry, flow_rhs


def symmetric_grid(limit: float, half_points: int) -> np.ndarray:
    """The (2m + 1)² grid h·{−m..m}² with h = limit/m, shape (n, 2).

    Built from integers so that it is exactly symmetric: for every (x, y) it holds (−y, −x)
    bit for bit, in particular the points with x + y == 0 exactly (on y = −x).
    """
    if half_points < 1:
        raise ValueError(f"half_points must be >= 1, got {half_points}")
    axis = np.arange(-half_points, half_points + 1) * (limit / half_points)
    x, y = np.meshgrid(axis, axis, indexing="xy")
    return np.column_stack([x.ravel(), y.ravel()])


# ---------------------------------------------------------------------------------------------
# Tidy tables behind the three figures


def fig1_grid_table(limit: float, half_points: int, f_tol: float, max_steps: int) -> pd.DataFrame:
    """chatterjee_fig1, grid: GD from every grid start inside (3.2) with Theorem 2.2's step.

    One row per start of :func:`symmetric_grid`: its margin in (3.2), the constants of
    :func:`theorem22_constants`, the step ``lr`` actually used (the theorem's η, the largest
    it allows) and where GD stopped (first f < ``f_tol``, or ``max_steps``). GD is not run from
    starts outside the region (the theorem gives them no step): their ``lr``, ``f_final``,
    ``x_final``, ``y_final`` are NaN and ``steps`` is 0.
    """
    z0 = symmetric_grid(limit, half_points)
    table = pd.DataFrame({"x0": z0[:, 0], "y0": z0[:, 1]})
    table["inside"] = in_region(z0)
    table["margin"] = region_margin(z0)
    table = pd.concat([table, theorem22_constants(z0)], axis=1)
    inside = table["inside"].to_numpy()
    table["lr"] = np.where(inside, table["eta"], np.nan)
    final = np.full_like(z0, np.nan)
    f_final = np.full(len(z0), np.nan)
    steps = np.zeros(len(z0), dtype=np.int64)
    final[inside], f_final[inside], steps[inside] = gd_until(
        z0[inside], table["lr"].to_numpy()[inside], f_tol, max_steps
    )
    table["steps"] = steps
    table["f_final"] = f_final
    table["x_final"] = final[:, 0]
    table["y_final"] = final[:, 1]
    return table


def fig1_paths_table(
    starts: Sequence[Sequence[float]], outside_lr: float, f_tol: float, max_steps: int
) -> pd.DataFrame:
    """chatterjee_fig1, paths: whole GD trajectories from a few starts, for the figure.

    A start inside (3.2) uses Theorem 2.2's step η; one outside (where the theorem says
    nothing) uses ``outside_lr``. Each path stops at the first f < ``f_tol`` or after
    ``max_steps`` steps (a start on y = −x never gets there: GD follows the line to the
    saddle). One row per iterate: ``path, x0, y0, inside, lr, step, x, y, f``.
    """
    frames = []
    for i, z0 in enumerate(np.asarray(starts, dtype=float).reshape(-1, 2)):
        inside = bool(in_region(z0))
        lr = float(theorem22_constants(z0)["eta"].iloc[0]) if inside else float(outside_lr)
        path = gd_trajectory(z0, lr, max_steps, f_tol)
        frames.append(
            pd.DataFrame(
                {
                    "path": i,
                    "x0": z0[0],
                    "y0": z0[1],
                    "inside": inside,
                    "lr": lr,
                    "step": np.arange(len(path)),
                    "x": path[:, 0],
                    "y": path[:, 1],
                    "f": xy_loss(path),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def prop31_table(
    limit: float,
    half_points: int,
    near_line_x0: Sequence[float],
    near_line_offsets: Sequence[float],
    t_max: float,
    method: str = "DOP853",
    rtol: float = 1e-10,
    atol: float = 1e-14,
) -> pd.DataFrame:
    """chatterjee_prop31, starts: entry time of the flow (3.1) into (3.2) (Proposition 3.1).

    Two sets of starts (column ``set``): ``grid``, the exactly symmetric grid of
    :func:`symmetric_grid` (it holds points exactly on y = −x), and ``near_line``, the starts
    (x0, −x0 + s) for each x0 and offset s, whose entry time grows like ½ log(1/s): near the
    line, d(x + y)/dt = 2(1 − xy)(x + y) (9.1) with 1 − xy >= 1, so x + y grows like e^{2t}
    from s. One row per start with the columns of :func:`flow_entry`.
    """
    grid = symmetric_grid(limit, half_points)
    near = np.array([[x0, -x0 + s] for x0 in near_line_x0 for s in near_line_offsets]).reshape(
        -1, 2
    )
    rows = [
        {"set": name, **flow_entry(z0, t_max, method, rtol, atol)}
        for name, starts in (("grid", grid), ("near_line", near))
        for z0 in starts
    ]
    return pd.DataFrame(rows, columns=["set", *PROP31_COLUMNS])


def prop31_paths_table(
    starts: Sequence[Sequence[float]],
    t_max: float,
    points: int,
    method: str = "DOP853",
    rtol: float = 1e-10,
    atol: float = 1e-14,
) -> pd.DataFrame:
    """chatterjee_prop31, paths: the flow (3.1) from a few starts on [0, t_max], sampled at
    ``points`` equally spaced times and not stopped at the region, so that it shows where the
    flow goes (a branch of xy = 1, or the saddle from y = −x). One row per sample:
    ``path, x0, y0, t, x, y, f, inside``.
    """
    frames = []
    t_eval = np.linspace(0.0, t_max, points)
    for i, z0 in enumerate(np.asarray(starts, dtype=float).reshape(-1, 2)):
        sol = solve_ivp(
            flow_rhs, (0.0, t_max), z0, method=method, rtol=rtol, atol=atol, t_eval=t_eval
        )
        if not sol.success:
            raise RuntimeError(f"solve_ivp failed from {z0}: {sol.message}")
        frames.append(
            pd.DataFrame(
                {
                    "path": i,
                    "x0": z0[0],
                    "y0": z0[1],
                    "t": sol.t,
                    "x": sol.y[0],
                    "y": sol.y[1],
                    "f": xy_loss(sol.y.T),
                    "inside": in_region(sol.y.T),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def thm22_tables(
    starts: Sequence[Sequence[float]], max_steps: int, bound_floor: float
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """chatterjee_thm22: Theorem 2.2's constants per start, and GD with its step η.

    Returns (constants, trajectories). ``constants``: one row per start, ``start, x0, y0``,
    the columns of :func:`theorem22_constants` and ``steps``. ``trajectories``: one row per
    iterate, ``start, step, x, y, f, bound, dist, remainder_ratio`` with
    bound = (1 − δ)^k f(x0) and dist = |x_k − x0|.

    Each start runs until its bound falls below ``bound_floor`` (at most ``max_steps``): past
    that, f(x_k) is at the level of floating-point round-off of (xy − 1)² and comparing it
    with a smaller bound would test the arithmetic, not the theorem.

    ``remainder_ratio`` is |R_k| / (ε η |∇f(x_k)|²) with R_k of (6.1), which Lemma 6.2 bounds
    by 1 (NaN at the last iterate and where f < 1e-16, where R_k is round-off). Lemma 6.2's
    Taylor expansion writes η²/6 for the remainder, where the second-order Lagrange form gives
    η²/2, so its bound, and η <= 6ε/(L2 p), are a factor 3 optimistic in general; the column
    shows whether it holds anyway for these starts and bounds.
    """
    z0 = np.asarray(starts, dtype=float).reshape(-1, 2)
    constants = theorem22_constants(z0)
    if not in_region(z0).all():
        bad = z0[~in_region(z0)].tolist()
        raise ValueError(f"Theorem 2.2 needs starts inside the region (3.2); not inside: {bad}")
    with np.errstate(divide="ignore"):
        needed = np.ceil(np.log(bound_floor / constants["f0"]) / np.log1p(-constants["delta"]))
    steps = np.clip(np.nan_to_num(needed, posinf=max_steps), 0, max_steps).astype(np.int64)
    constants.insert(0, "y0", z0[:, 1])
    constants.insert(0, "x0", z0[:, 0])
    constants.insert(0, "start", np.arange(len(z0)))
    constants["steps"] = steps
    frames = []
    for row, start in zip(constants.itertuples(index=False), z0, strict=True):
        path = gd_trajectory(start, row.eta, int(row.steps))
        f = xy_loss(path)
        grad_sq = np.sum(xy_grad(path) ** 2, axis=-1)
        remainder = np.full(len(path), np.nan)
        remainder[:-1] = f[1:] - f[:-1] + row.eta * grad_sq[:-1]
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.abs(remainder) / (row.epsilon * row.eta * grad_sq)
        ratio[f < 1e-16] = np.nan
        k = np.arange(len(path))
        frames.append(
            pd.DataFrame(
                {
                    "start": row.start,
                    "step": k,
                    "x": path[:, 0],
                    "y": path[:, 1],
                    "f": f,
                    "bound": (1.0 - row.delta) ** k * row.f0,
                    "dist": np.linalg.norm(path - start, axis=-1),
                    "remainder_ratio": ratio,
                }
            )
        )
    return constants, pd.concat(frames, ignore_index=True)
