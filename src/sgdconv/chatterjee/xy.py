"""Chatterjee (2022), Section 3: the toy objective f(x, y) = (xy − 1)² of Figure 1.

The global minimum 0 is attained on the two branches of xy = 1; the origin is a saddle.
Everything here is exact or closed form:

* the gradient flow (3.1) and its entry time into the region (3.2) (Proposition 3.1, proved
  in Section 9), integrated with an adaptive ODE solver and event detection;
* |∇f|²/f = 4(x² + y²) (Section 3), hence the exact α(x0, r) of (2.1) on a ball;
* the constants r, ε, L1, L2, η, δ of Theorem 2.2 per start, and gradient descent with that
  step (Section 6 proves the theorem).

Points are arrays of shape (..., 2) holding (x, y); functions broadcast over leading axes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy.integrate import solve_ivp

#: p of Theorem 2.2: f is a function on R².
P = 2

# ---------------------------------------------------------------------------------------------
# f, ∇f, ∇²f and the region (3.2)


def xy_loss(z: ArrayLike) -> np.ndarray:
    """f(x, y) = (xy − 1)² (Section 3)."""
    z = np.asarray(z, dtype=float)
    return (z[..., 0] * z[..., 1] - 1.0) ** 2


def xy_grad(z: ArrayLike) -> np.ndarray:
    """∇f(x, y) = 2(xy − 1)(y, x); minus the right-hand side of the flow (3.1)."""
    z = np.asarray(z, dtype=float)
    residual = 2.0 * (z[..., 0] * z[..., 1] - 1.0)
    return np.stack([residual * z[..., 1], residual * z[..., 0]], axis=-1)


def xy_hessian(z: ArrayLike) -> np.ndarray:
    """∇²f(x, y) = [[2y², 2(2xy − 1)], [2(2xy − 1), 2x²]], shape (..., 2, 2)."""
    z = np.asarray(z, dtype=float)
    x, y = z[..., 0], z[..., 1]
    off = 2.0 * (2.0 * x * y - 1.0)
    return np.stack([np.stack([2 * y**2, off], -1), np.stack([off, 2 * x**2], -1)], -2)


def region_margin(z: ArrayLike) -> np.ndarray:
    """(x² + y²)/4 − |xy − 1|: positive exactly on the region (3.2) of Figure 1.

    (3.2) is 4 f(x0) < a⁴/4 with a = |(x0, y0)|, the best (2.1) obtainable from the lower
    bound α(x0, r) >= 4(a − r)² (maximized at r = a/2).
    """
    z = np.asarray(z, dtype=float)
    x, y = z[..., 0], z[..., 1]
    return (x**2 + y**2) / 4.0 - np.abs(x * y - 1.0)


def in_region(z: ArrayLike) -> np.ndarray:
    """Whether (x0, y0) satisfies (3.2): |x0 y0 − 1| < (x0² + y0²)/4 (strict)."""
    return region_margin(z) > 0


# ---------------------------------------------------------------------------------------------
# Theorem 2.2: α(x0, r), L1, L2 and the step η


def alpha_exact(z0: ArrayLike, r: ArrayLike) -> np.ndarray:
    """The exact α(x0, r) of (2.1) for f = (xy − 1)²: 4 max(a − r, 0)² with a = |x0|.

    Off the zero set |∇f|²/f = 4|z|² (Section 3), whose infimum over the closed ball
    B(x0, r) is 4 dist(0, B)² = 4 max(a − r, 0)². Excluding the zeros of f (the curve
    xy = 1, which has empty interior) does not change the infimum, by continuity of 4|z|².
    """
    a = np.linalg.norm(np.asarray(z0, dtype=float), axis=-1)
    return 4.0 * np.maximum(a - np.asarray(r, dtype=float), 0.0) ** 2


def first_derivative_bound(rho: ArrayLike) -> np.ndarray:
    """A uniform bound on |∂f/∂x|, |∂f/∂y| over the disc |z| <= ρ: ρ³ + 2ρ.

    |∂f/∂x| = 2|xy − 1||y| with |xy| <= (x² + y²)/2 <= ρ²/2 and |y| <= ρ, so it is at most
    2(ρ²/2 + 1)ρ; the same for ∂f/∂y. Rigorous (not sampled), and tight up to a factor < 2.
    """
    rho = np.asarray(rho, dtype=float)
    return rho**3 + 2.0 * rho


def second_derivative_bound(rho: ArrayLike) -> np.ndarray:
    """A uniform bound on the entries of ∇²f over the disc |z| <= ρ: 2ρ² + 2.

    |2y²|, |2x²| <= 2ρ² and |2(2xy − 1)| <= 2(ρ² + 1) since |2xy| <= x² + y² <= ρ².
    """
    rho = np.asarray(rho, dtype=float)
    return 2.0 * rho**2 + 2.0


#: ε is kept this fraction of its supremum 1 − q when (2.2) is what limits it: (2.2) is strict.
EPSILON_SHRINK = 0.99

THM22_COLUMNS = ["a", "f0", "r", "q", "epsilon", "alpha", "L1", "L2", "eta", "delta"]


def theorem22_constants(z0: ArrayLike) -> pd.DataFrame:
    """The constants of Theorem 2.2 for each start x0 (rows of ``z0``, shape (n, 2)).

    * r = a/2 with a = |x0|: it maximizes r² α(x0, r) = 4r²(a − r)² (Section 3), so it is
      the radius for which (2.1) holds on the largest set, the region (3.2). Then α = a².
    * ε: (2.2) reads 1 − ε > q := 2√f(x0) / (r√α) (q < 1 is (2.1)). Among the admissible ε
      we take the one maximizing the guaranteed rate δ = (1 − ε) α η, with
      η = min(A, Bε), A = r/(L1√p), B = 6/(L2 p): (1 − ε) min(A, Bε) increases up to
      ε = min(1/2, A/B) and decreases after, so ε = min(1/2, A/B, 0.99 (1 − q)).
    * L1 bounds the first derivatives on B(x0, r) ⊂ {|z| <= a + r}; L2 the second
      derivatives on B(x0, 2r) ⊂ {|z| <= a + 2r}: rigorous closed forms, see
      :func:`first_derivative_bound` and :func:`second_derivative_bound`.
    * η = min(r/(L1√p), 6ε/(L2 p)), the largest step the theorem allows, and
      δ = min(1, (1 − ε) α η).

    Starts outside the region (3.2) (q >= 1) have no admissible ε: their ε, η and δ are NaN.
    """
    z0 = np.atleast_2d(np.asarray(z0, dtype=float))
    a = np.linalg.norm(z0, axis=-1)
    f0 = xy_loss(z0)
    r = a / 2.0
    alpha = alpha_exact(z0, r)
    L1 = first_derivative_bound(a + r)
    L2 = second_derivative_bound(a + 2.0 * r)
    # The origin (a = 0) gives 0/0 below; it is outside (3.2) and gets NaN like every such start.
    with np.errstate(divide="ignore", invalid="ignore"):
        q = 2.0 * np.sqrt(f0) / (r * np.sqrt(alpha))
        step_cap = r / (L1 * np.sqrt(P))  # A: one step stays inside B(x0, 2r) (Lemma 6.2)
    step_per_eps = 6.0 / (L2 * P)  # B: Lemma 6.2's Taylor remainder <= ε η |∇f|²
    best_for_rate = np.minimum(0.5, step_cap / step_per_eps)
    epsilon = np.where(q < 1.0, np.minimum(best_for_rate, EPSILON_SHRINK * (1.0 - q)), np.nan)
    eta = np.minimum(step_cap, step_per_eps * epsilon)
    delta = np.minimum(1.0, (1.0 - epsilon) * alpha * eta)
    return pd.DataFrame(
        {
            "a": a,
            "f0": f0,
            "r": r,
            "q": q,
            "epsilon": epsilon,
            "alpha": alpha,
            "L1": L1,
            "L2": L2,
            "eta": eta,
            "delta": delta,
        },
        columns=THM22_COLUMNS,
    )


# ---------------------------------------------------------------------------------------------
# Gradient descent x_{k+1} = x_k − η ∇f(x_k)


def gd_trajectory(z0: ArrayLike, eta: float, steps: int, f_tol: float = 0.0) -> np.ndarray:
    """Iterates x_0, x_1, ... of GD x_{k+1} = x_k − η ∇f(x_k) from one start, shape (k + 1, 2).

    Runs ``steps`` steps, or stops at the first iterate with f < ``f_tol`` (never, by default).
    """
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    if not eta > 0:
        raise ValueError(f"eta must be > 0, got {eta}")
    path = np.empty((steps + 1, 2))
    path[0] = z0
    k = 0
    while k < steps and not xy_loss(path[k]) < f_tol:
        path[k + 1] = path[k] - eta * xy_grad(path[k])
        k += 1
    return path[: k + 1]


def gd_until(
    z0: ArrayLike, eta: ArrayLike, f_tol: float, max_steps: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """GD from many starts at once, each with its own step η, until f < ``f_tol``.

    Returns (final points (n, 2), final f (n,), steps taken (n,)). A start stops at the first
    iterate with f < f_tol or after ``max_steps`` steps. Only the starts still running are
    updated, so a few slow starts do not make every start pay for their steps.
    """
    z = np.array(np.atleast_2d(z0), dtype=float)
    eta = np.broadcast_to(np.asarray(eta, dtype=float), z.shape[:1])
    steps = np.zeros(len(z), dtype=np.int64)
    idx = np.flatnonzero(~(xy_loss(z) < f_tol))
    za, ea = z[idx], eta[idx, None]
    k = 0
    while idx.size and k < max_steps:
        za = za - ea * xy_grad(za)
        k += 1
        # NaN (divergence) stops a start too: it can only be reported, not rescued.
        done = ~(xy_loss(za) >= f_tol)
        if done.any():
            z[idx[done]], steps[idx[done]] = za[done], k
            keep = ~done
            idx, za, ea = idx[keep], za[keep], ea[keep]
    z[idx], steps[idx] = za, k
    return z, xy_loss(z), steps


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
