"""Monte-Carlo SGD: many independent trajectories of An & Lu's iteration, as one batch.

An & Lu (2025) study the stochastic iteration

    θ_{k+1} = θ_k − η_k (∇F(θ_k) + ξ_k),                                  (1.2), (2.6)

with a noise ξ_k of one of three kinds (:class:`MachineLearningNoise` of Assumption 4,
:class:`BoundedNoise` of (2.9), and the same rotated onto one direction as in Theorem 4.1) and a
constant step η or the Robbins–Monro steps η_k = γ/(k + n0)^q of (4.1). Their statements are
about probabilities and expectations over the noise, so we estimate them by Monte Carlo:
:func:`run_sgd` advances B independent trajectories as the rows of one (B, p) tensor (no Python
loop over trajectories) and tracks, per trajectory,

* F(θ_k) and |θ_k − θ0| at chosen record steps (log- or linearly spaced, to keep tables small),
* the events E_k(r) = ∩_{j<=k} {|θ_j − θ0| <= r} of (3.3)/(4.6) for several radii r, through
  the first exit step (exact: checked at every step, not only at record steps),
* the noise path length Σ_{j<k} η_j |ξ_j| (for the rotated noise of Theorem 4.1 this is
  exactly |Σ_j η_j O_j Z_j|, the displacement the noise alone would cause).

Trajectory b draws its noise from its own counter-based stream (:mod:`sgdconv.montecarlo.philox`),
so a batched run and a plain loop over single trajectories with the same ids give the same
draws bit for bit. The trajectories then agree to rounding (~1e-16 on our machine, tested to
1e-12): a batched matmul may sum in another order than a single one, and the SGD map does not
amplify such differences near the zero set.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor
from tqdm import tqdm

from sgdconv.montecarlo.philox import TrajectoryStreams

#: θ (B, p) -> (F(θ) (B,), ∇F(θ) (B, p)), e.g. ``lambda th: net.loss_and_grad(th, x, y)``.
LossAndGrad = Callable[[Tensor], tuple[Tensor, Tensor]]

# --- step sizes ---------------------------------------------------------------------------
# A step size maps k to η_k: a float shared by all rows, or a (B,) tensor (one schedule per
# trajectory, so several schedules run in one batch).

StepSize = Callable[[int], "float | Tensor"]


@dataclass(frozen=True)
class ConstantStep:
    """η_k = η, the step of Theorem 3.1 (a scalar or one per trajectory)."""

    eta: float | Tensor

    def __post_init__(self) -> None:
        if not bool(torch.all(torch.as_tensor(self.eta) > 0)):
            raise ValueError(f"step size must be > 0, got {self.eta}")

    def __call__(self, k: int) -> float | Tensor:
        return self.eta


@dataclass(frozen=True)
class RobbinsMonroStep:
    """η_k = γ / (k + n0)^q of An & Lu (4.1), q ∈ (1/2, 1]: Σ η_k = ∞ and Σ η_k² < ∞ (2.8).

    Each of γ, n0, q is a scalar or a (B,) tensor (one schedule per trajectory).
    """

    gamma: float | Tensor
    n0: float | Tensor
    q: float | Tensor

    def __post_init__(self) -> None:
        gamma, n0, q = (
            torch.as_tensor(v, dtype=torch.float64) for v in (self.gamma, self.n0, self.q)
        )
        if not (bool(torch.all(gamma > 0)) and bool(torch.all(n0 > 0))):
            raise ValueError(f"need γ > 0 and n0 > 0, got γ={self.gamma}, n0={self.n0}")
        if not bool(torch.all((q > 0.5) & (q <= 1.0))):
            raise ValueError(f"(4.1) needs q in (1/2, 1], got {self.q}")

    def __call__(self, k: int) -> float | Tensor:
        if all(isinstance(v, int | float) for v in (self.gamma, self.n0, self.q)):
            return float(self.gamma) / (k + float(self.n0)) ** float(self.q)
        gamma, n0, q = (
            torch.as_tensor(v, dtype=torch.float64) for v in (self.gamma, self.n0, self.q)
        )
        return gamma / (k + n0) ** q


# --- noise models -------------------------------------------------------------------------

#: ξ_k of every row as a function of (k, F(θ_k) of shape (B,)) -> (B, p). Called with
#: k = 0, 1, 2, ... in order.
Sampler = Callable[[int, Tensor], Tensor]


class NoiseModel(Protocol):
    """A noise law. ``bind(streams, p)`` returns the sampler of the B trajectories of
    ``streams`` in R^p; row b of every draw uses only trajectory b's stream."""

    def bind(self, streams: TrajectoryStreams, p: int) -> Sampler: ...


#: Random numbers drawn per block of steps: enough to amortize the generator's per-call overhead
#: for small batches, small enough for the int64 work arrays to stay in cache for large ones.
BLOCK_ENTRIES = 262_144


class IsotropicZ:
    """Z_k ~ N(0, I/p) per row, k = 0, 1, ...: E Z = 0 and E|Z|² = 1 exactly, so (2.11) holds
    with equality. Draws a block of steps at a time (the same values as one step at a time) so
    that the per-call overhead of the generator is paid once per block, not once per step."""

    def __init__(self, streams: TrajectoryStreams, p: int) -> None:
        self.streams, self.p = streams, p
        self.block = max(1, min(64, BLOCK_ENTRIES // max(1, len(streams) * p)))
        self.start, self.values = 0, streams.normal(0, p, self.block) / math.sqrt(p)

    def __call__(self, k: int) -> Tensor:
        if not self.start <= k < self.start + self.block:
            self.start = k
            self.values = self.streams.normal(k, self.p, self.block) / math.sqrt(self.p)
        return self.values[k - self.start]


def _column(value: float | Tensor, batch: int) -> Tensor:
    """A scalar or a (B,) tensor of per-trajectory constants, as a (B, 1) float64 column."""
    column = torch.as_tensor(value, dtype=torch.float64).reshape(-1, 1)
    if column.shape[0] not in (1, batch):
        raise ValueError(f"{column.shape[0]} per-trajectory values for {batch} trajectories")
    return column


@dataclass(frozen=True)
class MachineLearningNoise:
    """ξ_k = √(σ F(θ_k)) Z_k with Z_k ~ N(0, I/p): the noise of Assumption 4, (2.10)–(2.11).

    ``sigma`` is a scalar or a (B,) tensor (one σ per trajectory, so several σ run in one
    batch). The noise vanishes where F does, as minibatch noise does at an interpolating zero.
    """

    sigma: float | Tensor

    def bind(self, streams: TrajectoryStreams, p: int) -> Sampler:
        sigma, z = _column(self.sigma, len(streams)), IsotropicZ(streams, p)

        def sample(k: int, loss: Tensor) -> Tensor:
            return (sigma * loss.reshape(-1, 1).clamp_min(0.0)).sqrt() * z(k)

        return sample


@dataclass(frozen=True)
class VarianceNoise:
    """ξ_k = √(σ F(θ_k) + c²) Z_k with Z_k ~ N(0, I/p), so E|ξ_k|² = σ F(θ_k) + c².

    c = 0 is the machine-learning noise of Assumption 4 (:class:`MachineLearningNoise`, the
    same draws); σ = 0 is the bounded noise of (2.9) (:class:`BoundedNoise`, unrotated). With
    ``sigma`` and ``c`` given per trajectory ((B,) tensors) both kinds run in one batch on the
    same streams, which is how An & Lu's Section-4 contrast is drawn: bounded noise of the size
    the machine-learning noise has at θ0 (c² = σ F(θ0)), at the same step.
    """

    sigma: float | Tensor
    c: float | Tensor = 0.0

    def bind(self, streams: TrajectoryStreams, p: int) -> Sampler:
        sigma, z = _column(self.sigma, len(streams)), IsotropicZ(streams, p)
        c2 = _column(self.c, len(streams)).pow(2)

        def sample(k: int, loss: Tensor) -> Tensor:
            return (sigma * loss.reshape(-1, 1).clamp_min(0.0) + c2).sqrt() * z(k)

        return sample


@dataclass(frozen=True)
class BoundedNoise:
    """ξ_k = c Z_k with Z_k ~ N(0, I/p): mean zero and E|ξ_k|² = c², the bounded second moment
    of (2.9) with m = 2, independent of θ (it does not vanish at a zero of F).

    With ``rotated`` (a bool, or a (B,) bool tensor choosing per trajectory) the noise becomes
    the O_k ξ_k of Theorem 4.1, (4.15): ξ_k rotated by an orthogonal O_k onto one fixed
    direction per trajectory,

        O_k ξ_k = |ξ_k| u,   u = ξ_0 / |ξ_0|,

    so O_0 = I and every step pushes along the same u. Each ξ_k has mean zero, but the rotated
    noise has mean E|ξ| u = m̄ u ≠ 0 and norm |ξ_k|. (The paper rotates onto the direction of its
    Z_1 and sets O_0 = I; taking u from the first draw makes O_0 = I hold as well — the same
    construction, indexed from 0.)
    """

    c: float | Tensor
    rotated: bool | Tensor = False

    def bind(self, streams: TrajectoryStreams, p: int) -> Sampler:
        c, z = _column(self.c, len(streams)), IsotropicZ(streams, p)
        rotated = torch.as_tensor(self.rotated, dtype=torch.bool).reshape(-1, 1)
        u = z(0) / z(0).norm(dim=-1, keepdim=True)

        def sample(k: int, loss: Tensor) -> Tensor:
            zk = z(k)
            # Rotated rows keep only the norm of the k-th draw; its direction becomes u.
            return c * torch.where(rotated, zk.norm(dim=-1, keepdim=True) * u, zk)

        return sample


def rotated_noise_direction(streams: TrajectoryStreams, p: int) -> Tensor:
    """The fixed direction u = Z_0 / |Z_0| of Theorem 4.1's rotated noise, per trajectory."""
    z0 = streams.normal(0, p)[0]
    return z0 / z0.norm(dim=-1, keepdim=True)


# --- the engine ---------------------------------------------------------------------------


@dataclass(frozen=True)
class MonteCarloRun:
    """What :func:`run_sgd` tracked. B trajectories, R record steps, m radii.

    ``loss``, ``dist``, ``noise_length``: (R, B) values of F(θ_k), |θ_k − θ0| and
    Σ_{j<k} η_j |ξ_j| at the record steps. ``inside``: (R, B, m) the indicator of E_k(r) of
    (3.3) for each radius (the trajectory has not left B(θ0, r) up to step k). ``exit_step``:
    (B, m) the first k with |θ_k − θ0| > r, or ``n_steps + 1`` if it never left. ``step_sum``:
    (R, B) Σ_{j<k} η_j. ``max_dist``: (B,) max over all k <= n_steps of |θ_k − θ0|.
    ``finite``: (B,) whether F stayed finite.
    """

    record_steps: Tensor
    radii: Tensor
    loss: Tensor
    dist: Tensor
    noise_length: Tensor
    inside: Tensor
    exit_step: Tensor
    step_sum: Tensor
    max_dist: Tensor
    loss_final: Tensor
    theta_final: Tensor
    finite: Tensor
    n_steps: int


def log_spaced_steps(n_steps: int, count: int) -> list[int]:
    """About ``count`` distinct integer steps in [0, n_steps], log-spaced (0 and n_steps
    included): the record steps for algebraic rates like Lemma 4.2's k^(−q)."""
    if n_steps < 1 or count < 2:
        raise ValueError(f"need n_steps >= 1 and count >= 2, got {n_steps}, {count}")
    grid = torch.logspace(0, math.log10(n_steps), count - 1, dtype=torch.float64)
    return sorted({0, n_steps, *(round(float(v)) for v in grid)})


def linear_steps(n_steps: int, count: int) -> list[int]:
    """About ``count`` distinct integer steps in [0, n_steps], evenly spaced: the record steps
    for geometric rates like Theorem 3.1's ρ^k."""
    if n_steps < 1 or count < 2:
        raise ValueError(f"need n_steps >= 1 and count >= 2, got {n_steps}, {count}")
    grid = torch.linspace(0, n_steps, count, dtype=torch.float64)
    return sorted({round(float(v)) for v in grid})


def run_sgd(
    loss_and_grad: LossAndGrad,
    theta0: Tensor,
    *,
    noise: NoiseModel,
    step: StepSize,
    n_steps: int,
    streams: TrajectoryStreams,
    radii: Sequence[float] | Tensor = (),
    record_steps: Sequence[int] | None = None,
    progress: bool = False,
) -> MonteCarloRun:
    """Run θ_{k+1} = θ_k − η_k (∇F(θ_k) + ξ_k) for k = 0..n_steps−1 on every row of ``theta0``.

    ``theta0``: (B, p) starting points (row b is trajectory b; the centre of its balls) or (p,)
    for one shared start. ``streams`` must hold one stream per row. ``radii``: the r of the
    events E_k(r), shared by all rows. ``record_steps``: the k (0 <= k <= n_steps) at which
    F(θ_k), |θ_k − θ0| and E_k(r) are stored (default: every step). ``progress`` shows a tqdm
    bar on stderr (the rule's log).
    """
    if theta0.dim() == 1:
        theta0 = theta0.unsqueeze(0).expand(len(streams), -1)
    batch, p = theta0.shape
    if len(streams) != batch:
        raise ValueError(f"{len(streams)} streams for {batch} trajectories")
    if n_steps < 0:
        raise ValueError(f"n_steps must be >= 0, got {n_steps}")
    steps = list(range(n_steps + 1)) if record_steps is None else sorted(set(record_steps))
    if steps and (steps[0] < 0 or steps[-1] > n_steps):
        raise ValueError(f"record steps must lie in [0, {n_steps}]")
    dtype = theta0.dtype
    radii_t = torch.as_tensor(list(radii) if not isinstance(radii, Tensor) else radii, dtype=dtype)
    n_rec, n_rad = len(steps), int(radii_t.numel())
    slot = {k: i for i, k in enumerate(steps)}

    rec_loss = torch.empty(n_rec, batch, dtype=dtype)
    rec_dist = torch.empty(n_rec, batch, dtype=dtype)
    rec_noise = torch.empty(n_rec, batch, dtype=dtype)
    rec_inside = torch.empty(n_rec, batch, n_rad, dtype=torch.bool)
    rec_step_sum = torch.empty(n_rec, batch, dtype=dtype)
    exit_step = torch.full((batch, n_rad), n_steps + 1, dtype=torch.int64)
    inside = torch.ones(batch, n_rad, dtype=torch.bool)
    max_dist = torch.zeros(batch, dtype=dtype)
    noise_length = torch.zeros(batch, dtype=dtype)
    step_sum = torch.zeros(batch, dtype=dtype)

    centre = theta0.detach()
    theta = centre.clone()
    sample = noise.bind(streams, p)
    loss, grad = loss_and_grad(theta)
    for k in tqdm(range(n_steps + 1), disable=not progress, mininterval=5.0, desc="SGD steps"):
        dist = (theta - centre).norm(dim=-1)
        # NaN distances (a diverged row) compare False, i.e. count as having left every ball.
        now_inside = dist.unsqueeze(-1) <= radii_t
        left_now = inside & ~now_inside
        exit_step = torch.where(left_now, torch.full_like(exit_step, k), exit_step)
        inside &= now_inside
        max_dist = torch.fmax(max_dist, dist)
        if k in slot:
            i = slot[k]
            rec_loss[i], rec_dist[i], rec_noise[i] = loss, dist, noise_length
            rec_inside[i] = inside
            rec_step_sum[i] = step_sum
        if k == n_steps:
            break
        eta = torch.as_tensor(step(k), dtype=dtype).reshape(-1)  # (1,) or (B,)
        xi = sample(k, loss)
        noise_length = noise_length + eta * xi.norm(dim=-1)
        theta = theta - eta.unsqueeze(-1) * (grad + xi)
        step_sum = step_sum + eta
        loss, grad = loss_and_grad(theta)
    return MonteCarloRun(
        record_steps=torch.tensor(steps, dtype=torch.int64),
        radii=radii_t,
        loss=rec_loss,
        dist=rec_dist,
        noise_length=rec_noise,
        inside=rec_inside,
        exit_step=exit_step,
        step_sum=rec_step_sum,
        max_dist=max_dist,
        loss_final=loss.detach(),
        theta_final=theta.detach(),
        finite=torch.isfinite(loss),
        n_steps=n_steps,
    )
