"""The largest algebraic eigenvalue of a symmetric operator given only by products v -> Av.

Both solvers work on flat float64 vectors on any device and stop on the *true* relative
residual |Av − λv| / |λ| <= tol of the returned unit vector v and its Rayleigh quotient
λ = vᵀAv, within ``max_matvec`` products (every product counted).

* :func:`lanczos_top`: Lanczos with full re-orthogonalisation (classical Gram-Schmidt applied
  twice, "twice is enough") and thick restart (Wu & Simon 2000, SIAM J. Matrix Anal. Appl.
  22:602) once the basis holds ``ncv`` vectors, keeping the ``ncv // 2`` largest Ritz pairs, so
  memory is (ncv + 1) vectors. The Ritz estimate β |s_j| of the residual decides when to stop;
  one extra product then computes the true residual (and the returned Rayleigh quotient).
* :func:`power_top`: power iteration, the method of Wu, Ma & E (2018) used by Zhang et al.
  (App. A.2). Plain power iteration converges to the eigenvalue of largest *magnitude*; when
  that is negative it is λ_min, and a second phase runs power iteration on A − λ_min I, whose
  dominant eigenvalue is λ_max − λ_min, so both solvers return the largest algebraic one.

Power iteration needs O(log(1/tol) / log(λ_1/λ_2)) products, Lanczos about the square root of
that ratio's inverse gap (Saad, *Numerical Methods for Large Eigenvalue Problems*, §6.6).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

Operator = Callable[[Tensor], Tensor]


@dataclass(frozen=True)
class EigenPair:
    """λ, unit v, |Av − λv| / |λ|, products used, and whether the residual met ``tol``."""

    value: float
    vector: Tensor
    residual: float
    n_matvec: int
    converged: bool


def relative_residual(av: Tensor, v: Tensor, value: float) -> float:
    """|Av − λv| / |λ| (0 if Av = λv exactly, inf if λ = 0 otherwise)."""
    r = float(torch.linalg.vector_norm(av - value * v))
    if value == 0.0:
        return 0.0 if r == 0.0 else float("inf")
    return r / abs(value)


def _unit(v0: Tensor) -> Tensor:
    v = v0.detach().reshape(-1).to(torch.float64)
    norm = torch.linalg.vector_norm(v)
    if not torch.isfinite(norm) or norm == 0:
        raise ValueError("the start vector must be finite and non-zero")
    return v / norm


def _check(tol: float, max_matvec: int, least: int) -> None:
    if not tol > 0:
        raise ValueError(f"tol must be > 0, got {tol}")
    if max_matvec < least:
        raise ValueError(f"max_matvec must be >= {least}, got {max_matvec}")


def lanczos_top(
    op: Operator, v0: Tensor, *, tol: float = 1e-3, max_matvec: int = 200, ncv: int = 20
) -> EigenPair:
    """λ_max of the symmetric operator ``op`` by thick-restart Lanczos (see module doc)."""
    _check(tol, max_matvec, 2)
    v = _unit(v0)
    p = v.numel()
    ncv = max(1, min(ncv, p))  # a Krylov space of R^p has at most p dimensions
    keep = max(1, ncv // 2)
    basis = torch.zeros(ncv + 1, p, dtype=torch.float64, device=v.device)
    proj = torch.zeros(ncv + 1, ncv + 1, dtype=torch.float64)  # T = Vᵀ A V, on the host
    basis[0] = v
    j, n = 0, 0  # j: columns of T computed so far; n: products used
    while True:
        w = op(basis[j]).reshape(-1).to(torch.float64)
        n += 1
        active = basis[: j + 1]
        h = active @ w
        w = w - active.T @ h
        h2 = active @ w  # second pass restores orthogonality lost to cancellation
        w = w - active.T @ h2
        h = (h + h2).cpu()
        proj[: j + 1, j] = h
        proj[j, : j + 1] = h
        beta = float(torch.linalg.vector_norm(w))
        j += 1
        theta, s = torch.linalg.eigh(proj[:j, :j])
        estimate = beta * abs(float(s[j - 1, -1]))
        scale = float(theta.abs().max())
        # β ≈ 0: the Krylov space is invariant, its Ritz values are exact eigenvalues.
        breakdown = beta <= 1e-12 * max(scale, 1e-300)
        if estimate <= tol * abs(float(theta[-1])) or breakdown or n >= max_matvec - 1:
            y = basis[:j].T @ s[:, -1].to(basis.device)
            y = y / torch.linalg.vector_norm(y)
            ay = op(y).reshape(-1).to(torch.float64)
            n += 1
            value = float(y @ ay)
            residual = relative_residual(ay, y, value)
            if residual <= tol or breakdown or n >= max_matvec:
                return EigenPair(value, y, residual, n, residual <= tol)
            # The Ritz estimate was optimistic (rounding in the products): keep iterating.
        if j == ncv:  # thick restart: keep the top Ritz pairs and the residual direction
            top = s[:, -keep:].to(basis.device)
            basis[:keep] = top.T @ basis[:j]
            proj.zero_()
            proj[:keep, :keep] = torch.diag(theta[-keep:])
            # The arrow entries T[keep, i] = β s_{j,i} coupling each kept Ritz vector to the
            # residual direction are the projections h of the next step, which fills them in.
            j = keep
        basis[j] = w / beta


def power_top(op: Operator, v0: Tensor, *, tol: float = 1e-3, max_matvec: int = 200) -> EigenPair:
    """λ_max of the symmetric operator ``op`` by (shifted) power iteration (see module doc)."""
    _check(tol, max_matvec, 1)
    start = _unit(v0)
    v, shift, shifted, n = start, 0.0, False, 0
    value, residual = float("nan"), float("inf")
    while n < max_matvec:
        av = op(v).reshape(-1).to(torch.float64)
        n += 1
        value = float(v @ av)
        residual = relative_residual(av, v, value)
        if residual <= tol:
            if value < 0 and not shifted:
                # Converged to λ_min (dominant in magnitude); λ_max − λ_min >= 0 is dominant
                # for A − λ_min I, so restart phase two from the start vector.
                shift, shifted, v = value, True, start
                continue
            return EigenPair(value, v, residual, n, True)
        u = av - shift * v
        norm = torch.linalg.vector_norm(u)
        if norm == 0:
            break
        v = u / norm
    return EigenPair(value, v, residual, n, residual <= tol)
