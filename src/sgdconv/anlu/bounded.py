"""anlu_thm41 and anlu_lem42: SGD with bounded noise and Robbins–Monro steps (An & Lu, Section 4).

Both start from the same kind of Chatterjee-initialized θ0 (:mod:`sgdconv.anlu.setup`)
with (2.2) on B(θ0, r), and use the steps η_k = γ/(k + n0)^q of (4.1) with the constants of
Lemma 4.2 / Theorem 4.1: γ = γα/α̂ with γα > 2 (so γ > 2/α̂) and n0 = ⌈(2 Ĉ_L² γ / α̂)^{1/q}⌉
(4.10), for each q of the config (q = 1 and a q in (1/2, 1)).

* ``anlu_thm41`` (:func:`simulate_thm41`): the noise of Theorem 4.1, bounded noise ξ_k = c Z_k
  rotated onto one fixed direction u per trajectory, O_k ξ_k = |ξ_k| u. Its mean m̄ u ≠ 0 pushes
  every step the same way; the gradient can only cancel the part of u normal to the zero set of
  F, and the tangent part accumulates like m̄ Σ_k η_k (≈ γ m̄ log k for q = 1), so the
  trajectory leaves B(θ0, r) — almost surely, as the theorem says. The same runs with the
  unrotated noise ξ_k (mean zero) are the reference that stays.
* ``anlu_lem42`` (:func:`simulate_lem42`): the unrotated bounded noise, E F(θ_k) against the
  k^(−q) rate of (4.5), conditioned on staying in B(θ0, r) as the Lemma is.

The conditions (q, rotated or not) run as one batch with per-trajectory schedules and the same
noise streams for every condition (common random numbers).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from sgdconv.anlu.constants import (
    LocalConstants,
    estimate_constants,
    lemma42_constant,
    lemma42_n0,
)
from sgdconv.anlu.fit_windows import fit_window
from sgdconv.anlu.settings import Lem42Settings, Seeds, Thm41Settings
from sgdconv.anlu.setup import Problem, build_problem
from sgdconv.montecarlo.binomial import binomial_ci
from sgdconv.montecarlo.fits import loglog_fit
from sgdconv.montecarlo.philox import TrajectoryStreams
from sgdconv.montecarlo.summaries import quantiles
from sgdconv.montecarlo.trajectories import (
    BoundedNoise,
    MonteCarloRun,
    RobbinsMonroStep,
    log_spaced_steps,
    run_sgd,
)


def mean_norm_isotropic(p: int) -> float:
    """E|Z| for Z ~ N(0, I/p): √(2/p) Γ((p+1)/2) / Γ(p/2) (so m̄ = c E|Z| for ξ = c Z)."""
    return math.sqrt(2.0 / p) * math.exp(math.lgamma((p + 1) / 2) - math.lgamma(p / 2))


@dataclass(frozen=True)
class Schedule:
    """The Robbins–Monro constants of one q: η_k = γ/(k + n0)^q."""

    q: float
    gamma: float
    n0: int


def schedules(settings: Thm41Settings, constants: LocalConstants) -> list[Schedule]:
    """γ = γα / α̂ and n0 = ⌈n0_factor · (2 Ĉ_L² γ / α̂)^{1/q}⌉ (4.10) for every q of ``settings``
    (γα > 2, so γ > 2/α̂ as (4.13) and Theorem 4.1 need, is checked by the settings)."""
    gamma = settings.gamma_alpha / constants.alpha_hat
    out = []
    for q in settings.q:
        n0 = lemma42_n0(gamma, constants.alpha_hat, constants.c_l_hat, q)
        out.append(Schedule(q, gamma, math.ceil(settings.n0_factor * n0)))
    return out


@dataclass(frozen=True)
class BoundedRuns:
    """The batch of one experiment: ``run`` holds ``len(labels)`` conditions × ``n_traj`` rows,
    condition-major; ``labels[i]`` = (schedule, rotated)."""

    problem: Problem
    constants: LocalConstants
    labels: list[tuple[Schedule, bool]]
    run: MonteCarloRun
    n_traj: int
    c: float

    def rows(self, index: int) -> slice:
        return slice(index * self.n_traj, (index + 1) * self.n_traj)


def run_bounded(
    settings: Thm41Settings,
    seeds: Seeds,
    rotations: tuple[bool, ...],
    *,
    progress: bool = False,
) -> BoundedRuns:
    """Estimate α̂, Ĉ_L on B(θ0, r), derive the schedules and run every (q, rotated) condition
    of ``rotations`` as one batch."""
    problem = build_problem(settings.net, seeds.data)
    r, f0, c = settings.radius, settings.f0, settings.noise_c
    constants = estimate_constants(
        problem.loss(f0),
        problem.theta0,
        r,
        certificate=settings.certificate,
        smoothness=settings.smoothness,
        seed=seeds.constants,
    )
    labels = [(s, rot) for s in schedules(settings, constants) for rot in rotations]
    n_traj, n_steps = settings.n_trajectories, settings.n_steps

    def per_row(values: list[float], dtype: torch.dtype = torch.float64) -> torch.Tensor:
        return torch.tensor(values, dtype=dtype).repeat_interleave(n_traj)

    step = RobbinsMonroStep(
        gamma=per_row([s.gamma for s, _ in labels]),
        n0=per_row([float(s.n0) for s, _ in labels]),
        q=per_row([s.q for s, _ in labels]),
    )
    ids = torch.arange(n_traj, dtype=torch.int64).repeat(len(labels))  # common random numbers
    run = run_sgd(
        problem.loss_and_grad(f0),
        problem.theta0,
        noise=BoundedNoise(c, rotated=per_row([float(rot) for _, rot in labels], torch.bool)),
        step=step,
        n_steps=n_steps,
        streams=TrajectoryStreams(seeds.noise, ids),
        radii=[r],
        record_steps=log_spaced_steps(n_steps, settings.n_records),
        progress=progress,
    )
    return BoundedRuns(problem, constants, labels, run, n_traj, c)


def _common_row(runs: BoundedRuns, schedule: Schedule) -> dict[str, Any]:
    """The constants every table row of a condition repeats."""
    const, p = runs.constants, runs.problem.net.p
    return {
        "q": schedule.q,
        "gamma": schedule.gamma,
        "n0": schedule.n0,
        "c": runs.c,
        "m_bar": runs.c * mean_norm_isotropic(p),
        "r": const.r,
        "f0": const.f0,
        "alpha_hat": const.alpha_hat,
        "alpha_lb": runs.problem.alpha_lower_bound(const.r),
        "margin": const.margin,
        "certificate_holds": const.certificate_holds,
        "c_l_hat": const.c_l_hat,
        "gamma_alpha": schedule.gamma * const.alpha_hat,
        "n_trajectories": runs.n_traj,
        "n_steps": runs.run.n_steps,
    }


def simulate_thm41(
    settings: Mapping[str, Any] | Thm41Settings,
    seeds: Mapping[str, int] | Seeds,
    *,
    progress: bool = False,
) -> dict[str, pd.DataFrame]:
    """Theorem 4.1: rotated bounded noise escapes B(θ0, r); the unrotated noise is the
    reference. Tables ``conditions`` (one row per (q, noise)) and ``steps`` (per record step)."""
    settings, seeds = Thm41Settings.from_dict(settings), Seeds.from_dict(seeds)
    runs = run_bounded(settings, seeds, rotations=(True, False), progress=progress)
    run, n_steps = runs.run, runs.run.n_steps
    k = run.record_steps
    condition_rows, step_frames = [], []
    for index, (schedule, rotated) in enumerate(runs.labels):
        rows = runs.rows(index)
        common = _common_row(runs, schedule)
        noise = "rotated" if rotated else "unrotated"
        exit_step = run.exit_step[rows, 0]
        escaped = exit_step.unsqueeze(0) <= k.unsqueeze(1)  # (R, n): left B(θ0, r) by step k
        dq = quantiles(run.dist[:, rows], (0.1, 0.5, 0.9))
        sum_eta = run.step_sum[:, rows][:, 0]  # the same schedule on every row of the condition
        step_frames.append(
            pd.DataFrame(
                {
                    "q": schedule.q,
                    "noise": noise,
                    "step": k.numpy(),
                    "sum_eta": sum_eta.numpy(),
                    "expected_noise_length": (common["m_bar"] * sum_eta).numpy(),
                    "p_escaped": escaped.double().mean(dim=1).numpy(),
                    "dist_q10": dq[0].numpy(),
                    "dist_median": dq[1].numpy(),
                    "dist_q90": dq[2].numpy(),
                    "noise_length_mean": run.noise_length[:, rows].mean(dim=1).numpy(),
                    "mean_f": run.loss[:, rows].mean(dim=1).numpy(),
                    "r": common["r"],
                }
            )
        )
        left = exit_step <= n_steps
        low, high = map(float, binomial_ci(int(left.sum()), runs.n_traj, method="wilson"))
        condition_rows.append(
            {
                **common,
                "noise": noise,
                "p_escaped": float(left.double().mean()),
                "ci_low": low,
                "ci_high": high,
                "exit_step_median": float(exit_step.double().median())
                if bool(left.any())
                else math.nan,
                "sum_eta_final": float(run.step_sum[-1, rows][0]),
                "dist_final_median": float(run.dist[-1, rows].median()),
            }
        )
    return {
        "conditions": pd.DataFrame(condition_rows),
        "steps": pd.concat(step_frames, ignore_index=True),
    }


def simulate_lem42(
    settings: Mapping[str, Any] | Lem42Settings,
    seeds: Mapping[str, int] | Seeds,
    *,
    progress: bool = False,
) -> dict[str, pd.DataFrame]:
    """Lemma 4.2: E F(θ_k) under the (unrotated) bounded noise against the k^(−q) of (4.5).

    The Lemma conditions on θ_k ∈ B(θ0, r) for all k. We estimate E[F(θ_k) | E_K(r)] by the
    mean over the trajectories that stayed in the ball through the last simulated step K (the
    Monte-Carlo stand-in for "all k"), and also store E[F(θ_k) 1_{E_k(r)}], the quantity the
    proof bounds ((4.13)–(4.14)), and P(E_k(r)). The fitted slope uses the conditional mean
    over k >= fit_from_n0 · n0 (see :func:`fit_window`).
    """
    settings, seeds = Lem42Settings.from_dict(settings), Seeds.from_dict(seeds)
    runs = run_bounded(settings, seeds, rotations=(False,), progress=progress)
    run, n_steps = runs.run, runs.run.n_steps
    k = run.record_steps
    condition_rows, step_frames = [], []
    for index, (schedule, _) in enumerate(runs.labels):
        rows = runs.rows(index)
        common = _common_row(runs, schedule)
        loss, inside = run.loss[:, rows], run.inside[:, rows, 0]
        stayed = run.exit_step[rows, 0] > n_steps
        n_stay = int(stayed.sum())
        kept = loss[:, stayed]
        mean_given = kept.mean(dim=1) if n_stay else torch.full((len(k),), math.nan)
        se_given = (
            kept.std(dim=1) / math.sqrt(n_stay) if n_stay > 1 else torch.full((len(k),), math.nan)
        )
        constant = lemma42_constant(
            schedule.gamma, runs.c, runs.constants.alpha_hat, runs.constants.c_l_hat, schedule.q
        )
        kf = k.to(torch.float64)
        frame = pd.DataFrame(
            {
                "q": schedule.q,
                "step": k.numpy(),
                "eta": (schedule.gamma / (kf + schedule.n0) ** schedule.q).numpy(),
                "mean_f_given_stay": mean_given.numpy(),
                "se_f_given_stay": se_given.numpy(),
                "mean_f_in": torch.where(inside, loss, torch.zeros_like(loss)).mean(dim=1).numpy(),
                "p_inside": inside.double().mean(dim=1).numpy(),
                "median_f": loss.median(dim=1).values.numpy(),
                "bound": torch.where(
                    kf > 0, constant / kf.clamp_min(1.0) ** schedule.q, math.nan
                ).numpy(),
            }
        )
        k_lo = fit_window(schedule.n0, settings.fit_from_n0)
        fit = loglog_fit(frame["step"], frame["mean_f_given_stay"], k_lo)
        frame["fit_line"] = fit.line(frame["step"].to_numpy())
        # k^(−q) through the fitted line at the window's start: the rate of (4.5) to compare with.
        start = (
            math.exp(fit.intercept + fit.slope * math.log(fit.k_lo))
            if fit.n_points >= 3
            else math.nan
        )
        frame["rate_reference"] = np.where(
            frame["step"] >= fit.k_lo, start * (frame["step"] / fit.k_lo) ** (-schedule.q), np.nan
        )
        step_frames.append(frame)
        condition_rows.append(
            {
                **common,
                "p_stay": n_stay / runs.n_traj,
                "n_stay": n_stay,
                "bound_constant": constant,
                "fit_from_n0": settings.fit_from_n0,
                "fit_k_lo": fit.k_lo,
                "fit_k_hi": fit.k_hi,
                "fitted_slope": fit.slope,
            }
        )
    return {
        "conditions": pd.DataFrame(condition_rows),
        "steps": pd.concat(step_frames, ignore_index=True),
    }
