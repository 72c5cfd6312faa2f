"""Where the noiseless path of An & Lu's Theorem 3.1 leaves the ball: the crossover F0*.

Started at Chatterjee's θ0 with targets scaled so that F(θ0) = F0 (:mod:`sgdconv.anlu.setup`),
gradient descent θ_{k+1} = θ_k − η ∇F(θ_k) (the σ = 0 case of (1.2)) travels a distance
max_k |θ_k − θ0| that grows with F0 (Chatterjee Section 6 bounds it by √(4F(θ0)/α)). Theorem
3.1's event E_∞(R − 1) = {every iterate in B(θ0, R − 1)} then holds for the noiseless path
exactly when F0 <= F0*, the crossover. With noise the event becomes random and its probability
moves from 1 to 0 around F0*: that is where an F(θ0) grid has to be fine to resolve it
(``anlu_stay_probability_rises``).

:func:`noiseless_crossover` brackets F0* by rounds of grid refinement, each round one batch of
noiseless paths run by the same engine (and the same n_steps) as the Monte Carlo, so the
σ = 0 conditions of the experiment stay or leave exactly as the bracket says.
"""

from __future__ import annotations

import math

import torch

from sgdconv.anlu.setup import Problem
from sgdconv.montecarlo.philox import TrajectoryStreams
from sgdconv.montecarlo.trajectories import ConstantStep, VarianceNoise, run_sgd


def noiseless_reach(problem: Problem, f0s: torch.Tensor, eta: float, n_steps: int) -> torch.Tensor:
    """max_{k <= n_steps} |θ_k − θ0| of the noiseless path for every F(θ0) of ``f0s`` (one
    batch, the engine of the Monte Carlo with zero noise)."""
    f0s = f0s.to(torch.float64)
    run = run_sgd(
        problem.loss_and_grad(f0s),
        problem.theta0,
        noise=VarianceNoise(0.0),
        step=ConstantStep(eta),
        n_steps=n_steps,
        streams=TrajectoryStreams(0, torch.zeros(len(f0s), dtype=torch.int64)),
        record_steps=[0, n_steps],
    )
    return run.max_dist


def noiseless_crossover(
    problem: Problem,
    eta: float,
    r_stay: float,
    n_steps: int,
    f_low: float,
    f_high: float,
    *,
    points: int = 24,
    rounds: int = 3,
) -> tuple[float, float]:
    """A bracket [F_in, F_out] of F0*: the noiseless path stays in B(θ0, r_stay) for F0 = F_in
    and leaves it for F0 = F_out. The first round lays ``points`` values geometrically over
    [f_low, f_high], each further round ``points`` values evenly over the last bracket (a
    factor (points − 1) narrower each time). Raises if the path does not stay at f_low or does
    not leave at f_high (the grid must straddle the crossover)."""
    if not 0 < f_low < f_high or points < 3 or rounds < 1:
        raise ValueError("need 0 < f_low < f_high, points >= 3, rounds >= 1")
    grid = torch.logspace(math.log10(f_low), math.log10(f_high), points, dtype=torch.float64)
    for _ in range(rounds):
        stays = noiseless_reach(problem, grid, eta, n_steps) <= r_stay
        if not bool(stays[0]) or bool(stays[-1]):
            raise ValueError(
                f"the noiseless path must stay in B(θ0, {r_stay:g}) at F(θ0) = {float(grid[0]):g}"
                f" and leave it at {float(grid[-1]):g}; widen the F(θ0) grid"
            )
        last = int(torch.nonzero(stays).max())  # the largest F0 that stays
        low, high = float(grid[last]), float(grid[last + 1])
        grid = torch.linspace(low, high, points, dtype=torch.float64)
    return low, high
