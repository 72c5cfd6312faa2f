"""anlu_thm31: Monte Carlo of An & Lu's Theorem 3.1 (SGD with machine-learning noise).

From a Chatterjee-initialized θ0 with (2.2) on B(θ0, R), R > 1, Theorem 3.1 says: for every δ
there is ε such that F(θ0) <= ε implies, with probability >= 1 − δ, that every iterate of
θ_{k+1} = θ_k − η(∇F(θ_k) + √(σF(θ_k)) Z_k) stays in B(θ0, R − 1), and then θ_k converges to a
zero of F with E[F(θ_k) 1_{E_k}] <= ρ^k F(θ0) ((3.9), ρ of (3.2)), provided the step obeys
η <= min{1/α, α/(4C_L(2C_L + σ))}.

We vary F(θ0) by scaling the targets (:mod:`sgdconv.anlu.setup`) and estimate, per condition,
the probability that a trajectory stays in B(θ0, R − 1) for all simulated steps *and* converges
(F(θ_K) <= tol · F(θ0)), with E[F(θ_k) 1_{E_k(R−1)}] at the record steps. Three parts:

* ``grid`` — inside the theorem: F(θ0) on a coarse grid plus a refined grid around the
  crossover F0* (:mod:`sgdconv.anlu.crossover`), for the σ of ``sigma``. The step bound caps
  ησ at about α/(4C_L), and with it the noise's reach, so the probability moves from 1 to 0
  within a fraction of a percent of F(θ0) around F0*: only a grid that fine shows the noise.
* ``sweep`` — outside the theorem's step bound, labelled so: at one F(θ0) = fraction · F0*
  near the crossover, the same η with σ growing past α/(4C_Lη) − 2C_L, where the noise pushes
  trajectories out of the ball.
* ``bounded`` — An & Lu's Section-4 contrast: bounded noise c Z of the size the
  machine-learning noise has at θ0 (c² = σ F(θ0)) at the same F(θ0) and step. It does not
  vanish at the zero set, so trajectories do not converge and keep diffusing.

Design choices, and why:

* **One step size for every condition**: η = factor × Theorem 3.1's bound at the smallest α̂,
  the largest Ĉ_L over the coarse grid and the largest σ of ``sigma`` (the bound decreases in σ
  and C_L and increases in α). Each condition records its own bound and whether η is within it.
* **Common random numbers**: trajectory i of every condition uses the same noise stream, so
  differences between conditions are paired (their standard errors come from the per-trajectory
  ``trajectories`` table) and not blurred by independent Monte-Carlo error.
* **Noiseless conditions** (σ = 0 in the grid) are deterministic: one trajectory stands for all.
* **α and C_L** depend on F(θ0) through the residuals; they are estimated at every coarse F(θ0),
  at F0* (used for the refined points, all within a fraction of a percent of it; if they ask for
  a smaller step than the coarse grid's, η takes it and F0* is found again for that η) and at
  the sweep's F(θ0); ``constants_f0`` says where each condition's came from.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from sgdconv.anlu.constants import (
    LocalConstants,
    estimate_constants,
    geometric_bound,
    rho,
    theorem31_step_bound,
)
from sgdconv.anlu.crossover import noiseless_crossover
from sgdconv.anlu.fit_windows import RATE_FIT_FLOOR
from sgdconv.anlu.settings import Seeds, Thm31Settings
from sgdconv.anlu.setup import Problem, build_problem
from sgdconv.montecarlo.binomial import binomial_ci
from sgdconv.montecarlo.fits import geometric_fit
from sgdconv.montecarlo.philox import TrajectoryStreams
from sgdconv.montecarlo.summaries import quantiles
from sgdconv.montecarlo.trajectories import (
    ConstantStep,
    MonteCarloRun,
    VarianceNoise,
    linear_steps,
    run_sgd,
)

#: Noise kinds of the ``noise`` column.
ML_NOISE, BOUNDED_NOISE = "machine learning", "bounded"
#: Columns that identify a condition in every table.
KEYS = ["part", "noise", "f0", "sigma"]


@dataclass(frozen=True)
class Condition:
    """One condition: F(θ0), the noise √(σF + c²) Z, where its constants were estimated, and
    whether its F(θ0) is one of the refined grid around F0*."""

    part: str
    f0: float
    sigma: float
    c: float
    constants_f0: float
    refined: bool = False

    @property
    def noise(self) -> str:
        return BOUNDED_NOISE if self.c > 0 else ML_NOISE

    @property
    def deterministic(self) -> bool:
        return self.sigma == 0 and self.c == 0

    def key(self) -> dict[str, Any]:
        return {"part": self.part, "noise": self.noise, "f0": self.f0, "sigma": self.sigma}


def design(
    settings: Thm31Settings, f0_star: float, constants_f0: float | None = None
) -> list[Condition]:
    """The conditions of the three parts (module docstring), grid first; the refined points
    take the constants estimated at ``constants_f0`` (default F0*)."""
    constants_f0 = f0_star if constants_f0 is None else constants_f0
    refined = f0_star * (
        1.0 + np.linspace(settings.refine_low, settings.refine_high, settings.refine_points)
    )
    grid = sorted({*settings.f0, *(float(v) for v in refined)})
    near = {float(v) for v in refined}
    out = [
        Condition("grid", f0, s, 0.0, constants_f0 if f0 in near else f0, f0 in near)
        for s in settings.sigma
        for f0 in grid
    ]
    f0_sweep = settings.sweep_f0_fraction * f0_star
    out += [Condition("sweep", f0_sweep, s, 0.0, f0_sweep) for s in settings.sweep_sigma]
    if settings.bounded:
        out += [
            Condition("bounded", f0_sweep, s, math.sqrt(s * f0_sweep), f0_sweep)
            for s in settings.sweep_sigma
            if s > 0
        ]
    return out


def _constants(
    problem: Problem, settings: Thm31Settings, seeds: Seeds, f0: float
) -> LocalConstants:
    return estimate_constants(
        problem.loss(f0),
        problem.theta0,
        settings.radius,
        certificate=settings.certificate,
        smoothness=settings.smoothness,
        seed=seeds.constants,
    )


def simulate_thm31(
    settings: Mapping[str, Any] | Thm31Settings,
    seeds: Mapping[str, int] | Seeds,
    *,
    progress: bool = False,
) -> dict[str, pd.DataFrame]:
    """Run ``anlu_thm31`` (config ``anlu.thm31`` with the shared ``anlu.net``, ``certificate``
    and ``smoothness``; ``seeds``: data, constants, noise). Tables: ``conditions`` (one row per
    condition), ``steps`` (per condition and record step) and ``trajectories`` (per noisy
    trajectory: stayed, converged, max_k |θ_k − θ0|, for paired standard errors)."""
    settings, seeds = Thm31Settings.from_dict(settings), Seeds.from_dict(seeds)
    problem = build_problem(settings.net, seeds.data)
    r_stay = settings.radius - 1.0
    constants = {f0: _constants(problem, settings, seeds, f0) for f0 in settings.f0}
    eta = _step(settings, constants.values())
    f0_star, f0_out = noiseless_crossover(
        problem, eta, r_stay, settings.n_steps, min(settings.f0), max(settings.f0)
    )
    # The refined points take the constants estimated at the first crossover; if they ask for a
    # smaller step, the crossover moves with it and is found again.
    first = f0_star
    constants[first] = _constants(problem, settings, seeds, first)
    if _step(settings, [constants[first]]) < eta:
        eta = _step(settings, [constants[first]])
        f0_star, f0_out = noiseless_crossover(
            problem, eta, r_stay, settings.n_steps, min(settings.f0), max(settings.f0)
        )
    conditions = design(settings, f0_star, constants_f0=first)
    for cond in conditions:
        if cond.constants_f0 not in constants:
            constants[cond.constants_f0] = _constants(problem, settings, seeds, cond.constants_f0)

    sizes = [1 if c.deterministic else settings.n_trajectories for c in conditions]
    run = run_sgd(
        problem.loss_and_grad(_per_row([c.f0 for c in conditions], sizes)),
        problem.theta0,
        noise=VarianceNoise(
            _per_row([c.sigma for c in conditions], sizes),
            _per_row([c.c for c in conditions], sizes),
        ),
        step=ConstantStep(eta),
        n_steps=settings.n_steps,
        streams=TrajectoryStreams(seeds.noise, torch.cat([torch.arange(n) for n in sizes])),
        radii=[r_stay],
        record_steps=linear_steps(settings.n_steps, settings.n_records),
        progress=progress,
    )
    extra = {"f0_star": f0_star, "f0_star_out": f0_out, "eta": eta, "R": settings.radius}
    rows, frames, trajectories = [], [], []
    bounds = np.cumsum([0, *sizes])
    alpha_lb = problem.alpha_lower_bound(settings.radius)
    for index, cond in enumerate(conditions):
        part = slice(int(bounds[index]), int(bounds[index + 1]))
        const = constants[cond.constants_f0]
        summary = _summarize(run, part, cond, const, settings, eta)
        rows.append(
            {
                **cond.key(),
                "c": cond.c,
                "refined": cond.refined,
                **extra,
                **_constant_columns(cond, const, alpha_lb, settings, eta),
                **summary.row,
            }
        )
        frames.append(summary.steps)
        if not cond.deterministic:
            trajectories.append(summary.trajectories)
    return {
        "conditions": pd.DataFrame(rows),
        "steps": pd.concat(frames, ignore_index=True),
        "trajectories": pd.concat(trajectories, ignore_index=True),
    }


def _step(settings: Thm31Settings, constants: Iterable[LocalConstants]) -> float:
    """η = eta_factor × Theorem 3.1's bound at the smallest α̂, the largest Ĉ_L and the
    largest σ of the grid (the bound decreases in σ and C_L and increases in α)."""
    constants = list(constants)
    alpha = min(c.alpha_hat for c in constants)
    c_l = max(c.c_l_hat for c in constants)
    return settings.eta_factor * theorem31_step_bound(alpha, c_l, max(settings.sigma))


def _per_row(values: list[float], sizes: list[int]) -> torch.Tensor:
    """One value per condition, repeated over its trajectories."""
    return torch.tensor(values, dtype=torch.float64).repeat_interleave(torch.tensor(sizes))


def _constant_columns(
    cond: Condition, const: LocalConstants, alpha_lb: float, settings: Thm31Settings, eta: float
) -> dict[str, Any]:
    """α̂, Ĉ_L, the step bound and ρ of one condition (the last two for the ML noise only)."""
    ml = cond.noise == ML_NOISE
    bound = theorem31_step_bound(const.alpha_hat, const.c_l_hat, cond.sigma) if ml else math.nan
    proof = math.isfinite(alpha_lb) and 4.0 * cond.f0 < settings.radius**2 * alpha_lb
    return {
        "deterministic": cond.deterministic,
        "constants_f0": cond.constants_f0,
        "r_stay": settings.radius - 1.0,
        "alpha_hat": const.alpha_hat,
        "alpha_lb": alpha_lb,
        "certificate_holds": bool(4.0 * cond.f0 < settings.radius**2 * const.alpha_hat),
        "certificate_proof_backed": bool(proof),
        "c_l_hat": const.c_l_hat,
        "eta_bound": bound,
        "within_step_bound": bool(ml and eta <= bound),
        "rho": rho(eta, const.alpha_hat, const.c_l_hat, cond.sigma) if ml else math.nan,
        "noise_size_0": math.sqrt(cond.sigma * cond.f0 + cond.c**2),
        "n_steps": settings.n_steps,
        "converge_tol": settings.converge_tol,
    }


@dataclass(frozen=True)
class _Summary:
    row: dict[str, Any]
    steps: pd.DataFrame
    trajectories: pd.DataFrame


def _summarize(
    run: MonteCarloRun,
    rows: slice,
    cond: Condition,
    const: LocalConstants,
    settings: Thm31Settings,
    eta: float,
) -> _Summary:
    """The condition's probabilities (binomial intervals; exact for a deterministic one), its
    record-step table and its per-trajectory outcomes."""
    steps, n = run.record_steps, rows.stop - rows.start
    loss, inside = run.loss[:, rows], run.inside[:, rows, 0]
    dq = quantiles(run.dist[:, rows], (0.1, 0.5, 0.9))
    rho_c = rho(eta, const.alpha_hat, const.c_l_hat, cond.sigma)
    frame = pd.DataFrame(
        {
            **cond.key(),
            "step": steps.numpy(),
            "mean_f_in": torch.where(inside, loss, torch.zeros_like(loss)).mean(dim=1).numpy(),
            "p_inside": inside.double().mean(dim=1).numpy(),
            "mean_f": loss.mean(dim=1).numpy(),
            "median_f": loss.median(dim=1).values.numpy(),
            "dist_q10": dq[0].numpy(),
            "dist_median": dq[1].numpy(),
            "dist_q90": dq[2].numpy(),
            "bound": geometric_bound(cond.f0, rho_c, steps).numpy()
            if cond.noise == ML_NOISE and 0 < rho_c < 1
            else np.nan,
        }
    )
    fit = geometric_fit(frame["step"], frame["mean_f_in"], floor=RATE_FIT_FLOOR * cond.f0)
    frame["fit_line"] = fit.line(frame["step"].to_numpy())
    stay = run.exit_step[rows, 0] > run.n_steps
    converge = run.finite[rows] & (run.loss_final[rows] <= settings.converge_tol * cond.f0)
    both = stay & converge
    k = int(both.sum())
    low, high = (k / n, k / n) if cond.deterministic else binomial_ci(k, n, method="wilson")
    mq = quantiles(run.max_dist[rows], (0.1, 0.5, 0.9))
    row = {
        "n_trajectories": n,
        "p_stay": float(stay.double().mean()),
        "p_converge": float(converge.double().mean()),
        "p_stay_converge": k / n,
        "se": math.sqrt(k / n * (1 - k / n) / n),
        "ci_low": float(low),
        "ci_high": float(high),
        "max_dist_q10": float(mq[0]),
        "max_dist_median": float(mq[1]),
        "max_dist_q90": float(mq[2]),
        "fitted_rate": fit.rate,
        "fit_k_lo": fit.k_lo,
        "fit_k_hi": fit.k_hi,
    }
    trajectories = pd.DataFrame(
        {
            **cond.key(),
            "trajectory": np.arange(n),
            "stay": stay.numpy(),
            "converge": converge.numpy(),
            "max_dist": run.max_dist[rows].numpy(),
            "exit_step": run.exit_step[rows, 0].numpy(),
        }
    )
    return _Summary(row, frame, trajectories)
