"""anlu_thm31: Monte Carlo of An & Lu's Theorem 3.1 (SGD with machine-learning noise).

From a Chatterjee-initialized θ0 with (2.2) on B(θ0, R), R > 1, Theorem 3.1 says: for every δ
there is ε such that F(θ0) <= ε implies, with probability >= 1 − δ, that every iterate of
θ_{k+1} = θ_k − η(∇F(θ_k) + √(σF(θ_k)) Z_k) stays in B(θ0, R − 1), and then θ_k converges to a
zero of F with E[F(θ_k) 1_{E_k}] <= ρ^k F(θ0) ((3.9), ρ of (3.2)).

We vary F(θ0) by scaling the targets (:mod:`sgdconv.anlu.setup`) and σ over a grid, run
``n_trajectories`` trajectories per condition in one batch, and estimate per condition the
probability that a trajectory stays in B(θ0, R − 1) for all simulated steps *and* converges
(F(θ_K) <= tol · F(θ0)), and E[F(θ_k) 1_{E_k(R−1)}] at the record steps.

Design choices, and why:

* **One step size for every condition**: η = factor × min over conditions of Theorem 3.1's
  bound min{1/α̂, α̂/(4Ĉ_L(2Ĉ_L + σ))} (the bound decreases in σ and C_L and increases in α, so
  the smallest α̂, the largest Ĉ_L and the largest σ give a step valid for all). Then σ and F(θ0)
  are the only things that change between conditions.
* **Common random numbers**: trajectory i of every condition uses the same noise stream
  (Z_k^{(i)} identical across conditions), a standard variance-reduction device: differences
  between conditions are not blurred by independent Monte-Carlo error, which matters for the
  monotonicity claim.
* **α and C_L per F(θ0)**: both depend on the targets through the residuals; ρ of (3.2) is
  computed per condition with that condition's α̂, Ĉ_L and σ.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd
import torch

from sgdconv.anlu.constants import (
    estimate_constants,
    geometric_bound,
    rho,
    theorem31_step_bound,
)
from sgdconv.anlu.setup import build_problem
from sgdconv.montecarlo.binomial import binomial_ci
from sgdconv.montecarlo.fits import geometric_fit
from sgdconv.montecarlo.philox import TrajectoryStreams
from sgdconv.montecarlo.summaries import quantiles
from sgdconv.montecarlo.trajectories import (
    ConstantStep,
    MachineLearningNoise,
    linear_steps,
    run_sgd,
)

#: E[F 1_E] below RATE_FIT_FLOOR · F(θ0) is left out of the rate fit: far above float64
#: round-off of F (~1e-32 F(θ0)), far below where the decay is measured.
RATE_FIT_FLOOR = 1e-14

CONDITION_COLUMNS = [
    "f0",
    "sigma",
    "R",
    "r_stay",
    "alpha_hat",
    "alpha_lb",
    "margin",
    "certificate_holds",
    "certificate_proof_backed",
    "c_l_hat",
    "eta",
    "eta_bound",
    "rho",
    "n_trajectories",
    "n_steps",
    "converge_tol",
    "p_stay",
    "p_converge",
    "p_stay_converge",
    "ci_low",
    "ci_high",
    "max_dist_q10",
    "max_dist_median",
    "max_dist_q90",
    "fitted_rate",
    "fit_k_lo",
    "fit_k_hi",
]

STEP_COLUMNS = [
    "f0",
    "sigma",
    "step",
    "mean_f_in",
    "p_inside",
    "mean_f",
    "median_f",
    "dist_q10",
    "dist_median",
    "dist_q90",
    "bound",
    "fit_line",
]


def simulate_thm31(
    settings: Mapping[str, Any], seeds: Mapping[str, int], *, progress: bool = False
) -> dict[str, pd.DataFrame]:
    """Run the experiment of ``settings`` (the config section ``anlu.thm31``); ``seeds`` has
    ``data``, ``constants`` and ``noise``. Returns the tables ``conditions`` (one row per
    (F(θ0), σ)) and ``steps`` (one row per condition and record step)."""
    problem = build_problem(settings["net"], seeds["data"])
    big_r = float(settings["radius"])
    if big_r <= 1.0:
        raise ValueError(f"Theorem 3.1 needs R > 1, got {big_r}")
    r_stay = big_r - 1.0
    f0s = [float(v) for v in settings["f0"]]
    sigmas = [float(v) for v in settings["sigma"]]
    n_traj, n_steps = int(settings["n_trajectories"]), int(settings["n_steps"])
    tol = float(settings["converge_tol"])

    constants = {
        f0: estimate_constants(
            problem.loss(f0),
            problem.theta0,
            big_r,
            certificate=dict(settings["certificate"]),
            smoothness=dict(settings["smoothness"]),
            seed=seeds["constants"],
        )
        for f0 in f0s
    }
    alpha_lb = problem.alpha_lower_bound(big_r)
    alpha_min = min(c.alpha_hat for c in constants.values())
    c_l_max = max(c.c_l_hat for c in constants.values())
    eta = float(settings["eta_factor"]) * theorem31_step_bound(alpha_min, c_l_max, max(sigmas))

    # One batch: condition-major rows; row (c, i) is trajectory i of condition c.
    conditions = [(f0, s) for f0 in f0s for s in sigmas]
    f0_rows = torch.tensor([f0 for f0, _ in conditions], dtype=torch.float64).repeat_interleave(
        n_traj
    )
    sigma_rows = torch.tensor([s for _, s in conditions], dtype=torch.float64).repeat_interleave(
        n_traj
    )
    ids = torch.arange(n_traj, dtype=torch.int64).repeat(len(conditions))  # common random numbers
    run = run_sgd(
        problem.loss_and_grad(f0_rows),
        problem.theta0,
        noise=MachineLearningNoise(sigma_rows),
        step=ConstantStep(eta),
        n_steps=n_steps,
        streams=TrajectoryStreams(seeds["noise"], ids),
        radii=[r_stay],
        record_steps=linear_steps(n_steps, int(settings["n_records"])),
        progress=progress,
    )

    steps = run.record_steps
    condition_rows, step_frames = [], []
    for index, (f0, sigma) in enumerate(conditions):
        rows = slice(index * n_traj, (index + 1) * n_traj)
        const = constants[f0]
        rho_c = rho(eta, const.alpha_hat, const.c_l_hat, sigma)
        loss, inside = run.loss[:, rows], run.inside[:, rows, 0]
        mean_f_in = torch.where(inside, loss, torch.zeros_like(loss)).mean(dim=1)
        dq = quantiles(run.dist[:, rows], (0.1, 0.5, 0.9))
        frame = pd.DataFrame(
            {
                "f0": f0,
                "sigma": sigma,
                "step": steps.numpy(),
                "mean_f_in": mean_f_in.numpy(),
                "p_inside": inside.double().mean(dim=1).numpy(),
                "mean_f": loss.mean(dim=1).numpy(),
                "median_f": loss.median(dim=1).values.numpy(),
                "dist_q10": dq[0].numpy(),
                "dist_median": dq[1].numpy(),
                "dist_q90": dq[2].numpy(),
                "bound": geometric_bound(f0, rho_c, steps).numpy(),
            },
        )
        fit = geometric_fit(frame["step"], frame["mean_f_in"], floor=RATE_FIT_FLOOR * f0)
        frame["fit_line"] = fit.line(frame["step"].to_numpy())
        step_frames.append(frame[STEP_COLUMNS])

        stay = run.exit_step[rows, 0] > n_steps
        converge = run.finite[rows] & (run.loss_final[rows] <= tol * f0)
        both = stay & converge
        low, high = map(float, binomial_ci(int(both.sum()), n_traj, method="wilson"))
        mq = quantiles(run.max_dist[rows], (0.1, 0.5, 0.9))
        condition_rows.append(
            {
                "f0": f0,
                "sigma": sigma,
                "R": big_r,
                "r_stay": r_stay,
                "alpha_hat": const.alpha_hat,
                "alpha_lb": alpha_lb,
                "margin": const.margin,
                "certificate_holds": const.certificate_holds,
                "certificate_proof_backed": bool(4.0 * f0 < big_r**2 * alpha_lb)
                if math.isfinite(alpha_lb)
                else False,
                "c_l_hat": const.c_l_hat,
                "eta": eta,
                "eta_bound": theorem31_step_bound(const.alpha_hat, const.c_l_hat, sigma),
                "rho": rho_c,
                "n_trajectories": n_traj,
                "n_steps": n_steps,
                "converge_tol": tol,
                "p_stay": float(stay.double().mean()),
                "p_converge": float(converge.double().mean()),
                "p_stay_converge": float(both.double().mean()),
                "ci_low": low,
                "ci_high": high,
                "max_dist_q10": float(mq[0]),
                "max_dist_median": float(mq[1]),
                "max_dist_q90": float(mq[2]),
                "fitted_rate": fit.rate,
                "fit_k_lo": fit.k_lo,
                "fit_k_hi": fit.k_hi,
            }
        )
    return {
        "conditions": pd.DataFrame(condition_rows, columns=CONDITION_COLUMNS),
        "steps": pd.concat(step_frames, ignore_index=True),
    }
