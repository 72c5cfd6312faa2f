"""The local Łojasiewicz certificate of Chatterjee (2022), criterion (2.1), by numerical search.

For a nonnegative C² loss F and a ball B(θ0, r), Chatterjee's Section 2 defines

    α(θ0, r) = inf { |∇F(θ)|² / F(θ) : θ ∈ B(θ0, r), F(θ) ≠ 0 }          (Chatterjee (2.1);
                                                                        An & Lu (2.1))

and proves (Theorems 2.1 and 2.2) that gradient flow and small-step gradient descent from θ0
converge to a zero of F inside the ball whenever 4 F(θ0) < r² α(θ0, r).

:func:`search_alpha` estimates that infimum for ANY differentiable batched loss
``F(theta: (B, p)) -> (B,)`` by combining random points of the ball (uniform in the ball and
uniform on its sphere) with projected descent on the ratio |∇F|²/F (its gradient by double
backward) from many starts, all evaluated as batched tensors.

**A search gives an upper bound, not a proof.** The value it returns, α̂, is the smallest ratio
found at points that really lie in the ball, so α(θ0, r) <= α̂: the true infimum may be smaller
than anything the search visited. "The certificate holds" (4 F(θ0) < r² α̂) is therefore
numerical evidence for (2.1), not a verification of it. A rigorous *lower* bound α_lb <= α is
available only where a proof provides one (for the Theorem-4.1 networks see
:mod:`sgdconv.chatterjee.bound`); a certificate with α_lb in place of α̂ is proof-backed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

#: A batched loss: θ of shape (B, p) -> F(θ) of shape (B,), differentiable twice by autograd.
BatchedLoss = Callable[[Tensor], Tensor]


@dataclass(frozen=True)
class CertificateResult:
    """Outcome of :func:`search_alpha`.

    ``alpha_hat`` is the smallest |∇F|²/F found in B(θ0, r) (an UPPER bound on α(θ0, r), since
    the infimum may lie where the search did not look), attained at ``theta_argmin``.
    ``margin`` = r² α̂ − 4 F(θ0) is the slack of (2.1) and ``holds`` says whether
    4 F(θ0) < r² α̂. ``n_evals`` counts evaluations of the ratio (points, not batches).
    """

    alpha_hat: float
    theta_argmin: Tensor
    f0: float
    r: float
    margin: float
    holds: bool
    n_evals: int
    #: |∇F(θ0)|² / F(θ0), the ratio at the centre (a first, usually poor, upper bound).
    alpha_center: float
    #: |θ_argmin − θ0| / r: where in the ball the smallest ratio was found (1 = on the sphere).
    argmin_radius: float
    #: Which stage found α̂: "center", "random" or "descent".
    found_by: str

    def summary(self) -> dict[str, Any]:
        """The scalar fields, for a table row."""
        return {
            "alpha_hat": self.alpha_hat,
            "f0": self.f0,
            "r": self.r,
            "margin": self.margin,
            "holds": self.holds,
            "n_evals": self.n_evals,
            "alpha_center": self.alpha_center,
            "argmin_radius": self.argmin_radius,
            "found_by": self.found_by,
        }


def certificate_margin(f0: float, r: float, alpha: float) -> float:
    """r² α − 4 F(θ0): positive exactly when criterion (2.1) holds with this α."""
    if math.isinf(alpha):
        return math.inf
    return r * r * alpha - 4.0 * f0


def lojasiewicz_ratio(
    loss: BatchedLoss, theta: Tensor, *, create_graph: bool = False
) -> tuple[Tensor, Tensor]:
    """|∇F(θ)|² / F(θ) and F(θ) for each row of θ (shape (B, p) -> (B,), (B,)).

    Rows where F = 0 (or F or ∇F is not finite) get ratio +inf: (2.1) takes the infimum over
    F ≠ 0 only. With ``create_graph`` the ratio stays differentiable in θ (double backward), as
    the projected descent of :func:`search_alpha` needs; θ must then require grad.
    """
    with torch.enable_grad():
        if not theta.requires_grad:
            theta = theta.detach().requires_grad_(True)
        f = loss(theta)
        (grad,) = torch.autograd.grad(f.sum(), theta, create_graph=create_graph)
        ratio = grad.pow(2).sum(dim=-1) / f
    bad = ~torch.isfinite(ratio) | (f <= 0)
    ratio = torch.where(bad, torch.full_like(ratio, math.inf), ratio)
    if not create_graph:
        ratio, f = ratio.detach(), f.detach()
    return ratio, f


def project_to_ball(theta: Tensor, theta0: Tensor, r: float) -> Tensor:
    """Euclidean projection of each row of θ onto the closed ball B(θ0, r)."""
    delta = theta - theta0
    norm = delta.norm(dim=-1, keepdim=True)
    scale = torch.clamp(r / norm.clamp_min(torch.finfo(theta.dtype).tiny), max=1.0)
    return theta0 + delta * scale


def random_ball_points(
    theta0: Tensor, r: float, count: int, *, on_sphere: bool, generator: torch.Generator | None
) -> Tensor:
    """``count`` points uniform in B(θ0, r) (or uniform on its sphere), shape (count, p).

    Direction: a normalized Gaussian; radius r U^{1/p} for the ball (uniform volume), r for the
    sphere.
    """
    p = theta0.shape[-1]
    z = torch.randn(count, p, generator=generator, dtype=theta0.dtype)
    z = z / z.norm(dim=-1, keepdim=True)
    if on_sphere:
        radius = torch.full((count, 1), float(r), dtype=theta0.dtype)
    else:
        u = torch.rand(count, 1, generator=generator, dtype=theta0.dtype)
        radius = r * u.pow(1.0 / p)
    return theta0 + radius * z


def _candidate_pool(
    loss: BatchedLoss,
    theta0: Tensor,
    r: float,
    ratio0: Tensor,
    *,
    n_random: int,
    batch_size: int,
    generator: torch.Generator | None,
) -> tuple[Tensor, Tensor, Tensor]:
    """The centre and ``n_random`` random points of B(θ0, r) (half inside, half on the sphere)
    with their ratios |∇F|²/F and stage labels (0: centre, 1: random)."""
    points = [theta0.unsqueeze(0)]
    ratios = [ratio0]
    stages = [torch.zeros(1, dtype=torch.long)]
    n_ball = n_random // 2
    for count, on_sphere in ((n_ball, False), (n_random - n_ball, True)):
        for start in range(0, count, batch_size):
            chunk = random_ball_points(
                theta0, r, min(batch_size, count - start), on_sphere=on_sphere, generator=generator
            )
            points.append(chunk)
            ratios.append(lojasiewicz_ratio(loss, chunk)[0])
            stages.append(torch.ones(len(chunk), dtype=torch.long))
    return torch.cat(points), torch.cat(ratios), torch.cat(stages)


def search_alpha(
    loss: BatchedLoss,
    theta0: Tensor,
    r: float,
    *,
    n_random: int = 256,
    n_starts: int = 16,
    n_steps: int = 200,
    step0: float = 0.1,
    batch_size: int = 256,
    generator: torch.Generator | None = None,
    stop_below: float | None = None,
) -> CertificateResult:
    """Estimate α(θ0, r) of Chatterjee (2.1) by search; an UPPER bound on the infimum.

    Parameters
    ----------
    loss
        Batched loss F: (B, p) -> (B,), nonnegative and twice differentiable by autograd,
        e.g. ``lambda th: net.loss(th, x, y)`` for a
        :class:`~sgdconv.models.feedforward.FeedForward` ``net``.
    theta0, r
        Centre (shape (p,)) and radius of the closed ball B(θ0, r).
    n_random
        Random points: half uniform in the ball, half uniform on its sphere (where the
        infimum often sits, e.g. for (xy − 1)² it is the point of the sphere nearest the origin).
    n_starts
        Starts of the projected descent: the ``n_starts`` points with the smallest ratio among
        the centre and the random points.
    n_steps
        Iterations of the projected descent, all starts advancing together as one batch.
    step0
        Initial step length of the descent, as a fraction of r.
    batch_size
        Rows per evaluation of the random points (memory bound only).
    generator
        Source of randomness (results are reproducible for a seeded generator).
    stop_below
        Stop as soon as a ratio below this value is found. With ``stop_below = 4 F(θ0)/r²``
        this refutes (2.1) early — α(θ0, r) <= α̂ < 4 F(θ0)/r² whatever a longer search would
        find — so only a certificate that holds pays for the whole search.

    The descent minimizes ρ(θ) = |∇F(θ)|²/F(θ) by normalized projected gradient steps
    θ ← Π_B(θ − s ∇ρ/|∇ρ|) with one step length s per start: a step that lowers ρ is accepted
    and s grows by 1.5; otherwise it is rejected and s halves. Normalized steps make the search
    indifferent to the scale of ρ (which varies by orders of magnitude across networks), and
    accept/reject makes each start's ratio non-increasing. Every evaluated point lies in the
    ball, so the returned α̂ is the ratio at a real point of B(θ0, r): α(θ0, r) <= α̂.
    """
    if r <= 0:
        raise ValueError(f"radius r must be > 0, got {r}")
    if n_random < 0 or n_starts < 0 or n_steps < 0:
        raise ValueError("n_random, n_starts and n_steps must be >= 0")
    theta0 = theta0.detach().reshape(-1)
    center = theta0.unsqueeze(0)

    ratio0, f0 = lojasiewicz_ratio(loss, center)
    f0_value = float(f0[0])
    pool, pool_ratio, pool_stage = _candidate_pool(
        loss, theta0, r, ratio0, n_random=n_random, batch_size=batch_size, generator=generator
    )
    n_evals = len(pool)

    best = int(torch.argmin(pool_ratio))
    best_ratio, best_theta, best_stage = float(pool_ratio[best]), pool[best], int(pool_stage[best])
    refuted = stop_below is not None and best_ratio < stop_below

    if n_starts > 0 and n_steps > 0 and not refuted:
        order = torch.argsort(pool_ratio)[: min(n_starts, len(pool))]
        theta, ratio, n_more = _projected_descent(
            loss,
            pool[order].clone(),
            theta0,
            r,
            n_steps=n_steps,
            step0=step0,
            stop_below=stop_below,
        )
        n_evals += n_more
        row = int(torch.argmin(ratio))
        if float(ratio[row]) < best_ratio:
            best_ratio, best_theta, best_stage = float(ratio[row]), theta[row], 2

    margin = certificate_margin(f0_value, r, best_ratio)
    return CertificateResult(
        alpha_hat=best_ratio,
        theta_argmin=best_theta.detach().clone(),
        f0=f0_value,
        r=float(r),
        margin=margin,
        holds=bool(4.0 * f0_value < r * r * best_ratio),
        n_evals=n_evals,
        alpha_center=float(ratio0[0]),
        argmin_radius=float((best_theta - theta0).norm()) / float(r),
        found_by=("center", "random", "descent")[best_stage],
    )


def _ratio_and_direction(loss: BatchedLoss, theta: Tensor) -> tuple[Tensor, Tensor]:
    """ρ(θ) and the unit descent direction −∇ρ/|∇ρ| (zero where ρ is infinite or flat)."""
    with torch.enable_grad():
        theta = theta.detach().requires_grad_(True)
        ratio, _ = lojasiewicz_ratio(loss, theta, create_graph=True)
        finite = torch.isfinite(ratio)
        # Double backward: d/dθ of |∇F|²/F. Infinite rows (F = 0) contribute no gradient.
        objective = torch.where(finite, ratio, torch.zeros_like(ratio)).sum()
        (grad,) = torch.autograd.grad(objective, theta)
    norm = grad.norm(dim=-1, keepdim=True)
    ok = finite.unsqueeze(-1) & torch.isfinite(norm) & (norm > 0)
    direction = torch.where(ok, -grad / norm.clamp_min(torch.finfo(grad.dtype).tiny), 0.0)
    return ratio.detach(), direction.detach()


def _projected_descent(
    loss: BatchedLoss,
    theta: Tensor,
    theta0: Tensor,
    r: float,
    *,
    n_steps: int,
    step0: float,
    stop_below: float | None = None,
) -> tuple[Tensor, Tensor, int]:
    """Normalized projected descent on ρ with per-start accept/reject step control.

    Returns the final points, their ratios (each the best its start reached) and the number of
    ratio evaluations. Stops early once some ratio is below ``stop_below``.
    """
    ratio, direction = _ratio_and_direction(loss, theta)
    n_evals = len(theta)
    step = torch.full((len(theta), 1), step0 * r, dtype=theta.dtype)
    for _ in range(n_steps):
        proposal = project_to_ball(theta + step * direction, theta0, r)
        new_ratio, new_direction = _ratio_and_direction(loss, proposal)
        n_evals += len(theta)
        accept = new_ratio < ratio
        theta = torch.where(accept.unsqueeze(-1), proposal, theta)
        ratio = torch.where(accept, new_ratio, ratio)
        direction = torch.where(accept.unsqueeze(-1), new_direction, direction)
        # Grow accepted steps (at most the ball's diameter), halve rejected ones.
        step = torch.where(accept.unsqueeze(-1), torch.clamp(step * 1.5, max=2.0 * r), step * 0.5)
        if stop_below is not None and float(ratio.min()) < stop_below:
            break
    return theta, ratio, n_evals
