"""An estimate of the smoothness constant C_L of An & Lu (2.3) on a ball.

Assumption 2 asks for |∇F(θ1) − ∇F(θ2)| <= C_L |θ1 − θ2| on a compact set; on a ball (convex)
the best such constant is sup_θ ||∇²F(θ)||₂, the largest |eigenvalue| of the Hessian. We estimate
it as the largest |Hessian eigenvalue| over sampled points of the ball (θ0, points uniform in
B(θ0, r) and uniform on its sphere), refined by projected ascent on that eigenvalue from the best
samples. At each point the extreme eigenvalues come from a Lanczos iteration on Hessian-vector
products (double backward), all points advancing as one batch.

**This is an estimate, and a lower bound on the true constant**: Lanczos' Ritz values lie inside
the spectrum, and the supremum may sit at a point that was not sampled. Quantities that depend
on C_L (the step bound of Theorem 3.1, ρ of (3.2), n0 of (4.10)) inherit that caveat.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from sgdconv.lojasiewicz.certificate import project_to_ball, random_ball_points

#: A batched loss: θ of shape (B, p) -> F(θ) of shape (B,), twice differentiable by autograd.
BatchedLoss = Callable[[Tensor], Tensor]


def hessian_vector_product(loss: BatchedLoss, theta: Tensor, v: Tensor) -> Tensor:
    """∇²F(θ_b) v_b for every row b (shapes (B, p) -> (B, p)), by double backward.

    The rows of a batched loss are independent functions of their own θ_b, so the gradient of
    Σ_b ∇F(θ_b)·v_b with respect to θ is the stack of the per-row products.
    """
    with torch.enable_grad():
        theta = theta.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(loss(theta).sum(), theta, create_graph=True)
        (hv,) = torch.autograd.grad((grad * v).sum(), theta)
    return hv.detach()


def _orthogonalize(w: Tensor, basis: Tensor) -> Tensor:
    """w minus its projection on the rows of ``basis`` (B, j, p); twice, which is enough."""
    for _ in range(2):
        coeff = torch.einsum("bjp,bp->bj", basis, w)
        w = w - torch.einsum("bj,bjp->bp", coeff, basis)
    return w


def lanczos(
    loss: BatchedLoss,
    theta: Tensor,
    n_iter: int,
    *,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """Ritz values (B, m) ascending and Ritz vectors (B, m, p) of ∇²F at every row of θ.

    Lanczos with full reorthogonalization, m = ``min(n_iter, p)`` steps, batched over rows. With
    m = p the tridiagonal matrix is similar to the Hessian, so the values are its eigenvalues up
    to rounding; with fewer they are Ritz values, inside [λ_min, λ_max] and converging to the
    extremes first. A row whose Krylov space closes early (β ≈ 0) continues from a fresh random
    vector orthogonal to its basis, so every Ritz value stays an eigenvalue estimate.
    """
    batch, p = theta.shape
    m = min(int(n_iter), p)
    if m < 1:
        raise ValueError(f"n_iter must be >= 1, got {n_iter}")
    dtype = theta.dtype
    basis = torch.zeros(batch, m, p, dtype=dtype)
    alphas = torch.zeros(batch, m, dtype=dtype)
    betas = torch.zeros(batch, max(m - 1, 0), dtype=dtype)
    v = torch.randn(batch, p, generator=generator, dtype=dtype)
    v = v / v.norm(dim=-1, keepdim=True)
    scale = torch.ones(batch, dtype=dtype)  # running |H| scale for the breakdown test
    for j in range(m):
        basis[:, j] = v
        w = hessian_vector_product(loss, theta, v)
        alphas[:, j] = (w * v).sum(-1)
        scale = torch.maximum(scale, w.norm(dim=-1))
        if j == m - 1:
            break
        w = _orthogonalize(w, basis[:, : j + 1])
        beta = w.norm(dim=-1)
        broke = beta <= 1e-12 * scale
        v = w / beta.clamp_min(torch.finfo(dtype).tiny).unsqueeze(-1)
        if bool(broke.any()):
            fresh = torch.randn(batch, p, generator=generator, dtype=dtype)
            fresh = _orthogonalize(fresh, basis[:, : j + 1])
            fresh = fresh / fresh.norm(dim=-1, keepdim=True)
            v = torch.where(broke.unsqueeze(-1), fresh, v)
            beta = torch.where(broke, torch.zeros_like(beta), beta)
        betas[:, j] = beta
    tri = torch.diag_embed(alphas)
    if m > 1:
        tri = tri + torch.diag_embed(betas, 1) + torch.diag_embed(betas, -1)
    values, vectors = torch.linalg.eigh(tri)
    return values, torch.einsum("bjp,bji->bip", basis, vectors)


def lanczos_extremes(
    loss: BatchedLoss,
    theta: Tensor,
    n_iter: int,
    *,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """Smallest and largest Hessian eigenvalue estimates at every row of θ (each (B,)),
    from :func:`lanczos`."""
    values, _ = lanczos(loss, theta, n_iter, generator=generator)
    return values[:, 0], values[:, -1]


def _spectral(
    loss: BatchedLoss, theta: Tensor, n_iter: int, generator: torch.Generator | None
) -> tuple[Tensor, Tensor, Tensor]:
    """max |λ(∇²F)| per row, its (signed) eigenvalue's Ritz vector, and the smallest λ."""
    values, vectors = lanczos(loss, theta, n_iter, generator=generator)
    low, high = values[:, 0], values[:, -1]
    top_is_high = high.abs() >= low.abs()
    vector = torch.where(top_is_high.unsqueeze(-1), vectors[:, -1], vectors[:, 0])
    return torch.maximum(low.abs(), high.abs()), vector, low


def _curvature_ascent_direction(loss: BatchedLoss, theta: Tensor, v: Tensor) -> Tensor:
    """Unit direction of steepest ascent of |vᵀ∇²F(θ)v| with v fixed (by the eigenvalue
    perturbation formula this is the gradient of the extreme eigenvalue whose vector v is),
    by triple backward."""
    with torch.enable_grad():
        theta = theta.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(loss(theta).sum(), theta, create_graph=True)
        (hv,) = torch.autograd.grad((grad * v).sum(), theta, create_graph=True)
        curvature = (hv * v).sum(-1)
        if not curvature.requires_grad:  # constant Hessian (a quadratic): nothing to ascend
            return torch.zeros_like(theta)
        (ascent,) = torch.autograd.grad(
            (curvature.sign().detach() * curvature).sum(), theta, allow_unused=True
        )
        if ascent is None:
            return torch.zeros_like(theta)
    norm = ascent.norm(dim=-1, keepdim=True)
    ok = torch.isfinite(norm) & (norm > 0)
    return torch.where(ok, ascent / norm.clamp_min(torch.finfo(theta.dtype).tiny), 0.0)


@dataclass(frozen=True)
class SmoothnessEstimate:
    """Ĉ_L = max over the sampled points of max |Hessian eigenvalue| (a lower bound on the
    Lipschitz constant of ∇F on the ball), with where it was found."""

    c_l_hat: float
    r: float
    #: Points where the Hessian spectrum was computed (samples and ascent proposals).
    n_points: int
    #: max |eigenvalue| at θ0 alone.
    c_l_center: float
    #: |θ_argmax − θ0| / r (1 = on the sphere).
    argmax_radius: float
    #: The most negative eigenvalue seen (curvature is not only positive away from θ0).
    lambda_min: float

    def summary(self) -> dict[str, float | int]:
        return {
            "c_l_hat": self.c_l_hat,
            "c_l_center": self.c_l_center,
            "c_l_argmax_radius": self.argmax_radius,
            "hessian_lambda_min": self.lambda_min,
            "c_l_points": self.n_points,
        }


def estimate_smoothness(
    loss: BatchedLoss,
    theta0: Tensor,
    r: float,
    *,
    n_points: int = 64,
    n_iter: int = 30,
    n_starts: int = 4,
    n_steps: int = 20,
    batch_size: int = 64,
    generator: torch.Generator | None = None,
) -> SmoothnessEstimate:
    """Estimate C_L of (2.3) on B(θ0, r): the largest |Hessian eigenvalue| found.

    Sampled points: θ0 and ``n_points`` random points (half uniform in the ball, half on its
    sphere), Lanczos with ``n_iter`` steps at each. Then, from the ``n_starts`` points with the
    largest value, ``n_steps`` of projected ascent on the extreme eigenvalue (normalized steps
    along its gradient, accept/reject step control as in the α search of
    :mod:`sgdconv.lojasiewicz.certificate`): random points of a high-dimensional ball rarely point
    where the curvature is largest (e.g. along the output weights), and the ascent finds it.
    Every evaluated point lies in the ball, so Ĉ_L stays a lower bound on the true constant.
    """
    if r <= 0:
        raise ValueError(f"radius r must be > 0, got {r}")
    theta0 = theta0.detach().reshape(-1)
    half = n_points // 2
    points = torch.cat(
        [
            theta0.unsqueeze(0),
            random_ball_points(theta0, r, half, on_sphere=False, generator=generator),
            random_ball_points(theta0, r, n_points - half, on_sphere=True, generator=generator),
        ]
    )
    values, lows = [], []
    for start in range(0, len(points), batch_size):
        value, _, low = _spectral(loss, points[start : start + batch_size], n_iter, generator)
        values.append(value)
        lows.append(low)
    value, low = torch.cat(values), torch.cat(lows)
    best = int(torch.argmax(value))
    best_value, best_point, lambda_min = float(value[best]), points[best], float(low.min())
    n_evals = len(points)

    if n_starts > 0 and n_steps > 0:
        order = torch.argsort(value, descending=True)[: min(n_starts, len(points))]
        theta = points[order].clone()
        current, vector, _ = _spectral(loss, theta, n_iter, generator)
        step = torch.full((len(theta), 1), 0.1 * r, dtype=theta.dtype)
        for _ in range(n_steps):
            direction = _curvature_ascent_direction(loss, theta, vector)
            proposal = project_to_ball(theta + step * direction, theta0, r)
            new, new_vector, new_low = _spectral(loss, proposal, n_iter, generator)
            n_evals += len(theta)
            lambda_min = min(lambda_min, float(new_low.min()))
            accept = new > current
            theta = torch.where(accept.unsqueeze(-1), proposal, theta)
            current = torch.where(accept, new, current)
            vector = torch.where(accept.unsqueeze(-1), new_vector, vector)
            step = torch.where(accept.unsqueeze(-1), torch.clamp(step * 1.5, max=2 * r), step / 2)
        row = int(torch.argmax(current))
        if float(current[row]) > best_value:
            best_value, best_point = float(current[row]), theta[row]

    return SmoothnessEstimate(
        c_l_hat=best_value,
        r=float(r),
        n_points=n_evals,
        c_l_center=float(value[0]),
        argmax_radius=float((best_point - theta0).norm()) / float(r),
        lambda_min=lambda_min,
    )
