"""Chatterjee (2022), Section 3: the toy objective f(x, y) = (xy − 1)² of Figure 1.

The global minimum 0 is attained on the two branches of xy = 1; the origin is a saddle.
Everything here is exact or closed form:

* |∇f|²/f = 4(x² + y²) (Section 3), hence the exact α(x0, r) of (2.1) on a ball;
* the constants r, ε, L1, L2, η, δ of Theorem 2.2 per start, and gradient descent with that
  step (Section 6 proves the theorem).

The gradient flow of Proposition 3.1 is :mod:`sgdconv.chatterjee.xy_flow`; the tables of the
three artifacts, :mod:`sgdconv.chatterjee.xy_tables`.

Points are arrays of shape (..., 2) holding (x, y); functions broadcast over leading axes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

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
