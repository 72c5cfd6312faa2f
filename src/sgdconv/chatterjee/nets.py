"""The deep-network experiments of Chatterjee (2022), Section 4: ``chatterjee_thm41`` and
``chatterjee_thm45``.

Theorem 4.1: a net with depth L >= 2, d_L = 1 and C² activations with σ(0) = 0, σ' > 0, on
linearly independent inputs (d >= n), started at W_1 = 0, b = 0, positive W_2..W_{L−1}
(minimum δ) and W_L >= A, converges under GD to zero loss for A large and η small enough. The
proof (Section 7) shows criterion (2.1) on B(θ0, δ/2); we check it with the certificate search
(α̂, an upper bound on α) and the proof's own lower bound α_lb, and run GD.

Theorem 4.5 / Remark 4.8: under LeCun initialization N(0, c/d_{l−1}) with an activation whose
slope lies in [C1, C2] (the shifted smooth leaky ReLU of Remark 4.6), the probability that GD
converges to zero loss stays bounded below as n, d → ∞ with d/n fixed and the hidden widths
fixed. We estimate it as the fraction of seeds that converge, with binomial intervals.

**The A/η rule (Remarks 4.4 and 4.7, trial and error).** For ``chatterjee_thm41`` the middle
weights are drawn once per configuration; then A runs through the increasing ladder
A_0, A_0·f, A_0·f², ... For each A we run the certificate search on B(θ0, r), r = δ/2; if
4 F(θ0) < (1 − ε)² r² α̂ (criterion (2.2) of Theorem 2.2, i.e. (2.1) with a margin, checked
numerically) we run the decreasing
step-size ladder (η_max/A², η_max/(A² g), ...) and keep the largest η whose GD reaches
F < tol · F(θ0) within ``max_steps`` (:func:`sgdconv.chatterjee.descent.eta_ladder`). The first A
where both succeed is reported. The step ladder is expressed in units of 1/A² because every
q_r of (7.2) carries the factor W_L, so the gradient with respect to W_1 grows like A and the
curvature like A²: the same rungs stay relevant at every A. For ``chatterjee_thm45`` each seed
runs the ladder η_max, η_max/g, ... (Remark 4.7: "making [η] smaller until convergence").

**Middle weights.** W_2..W_{L−1} are uniform on [lo, hi] / width (fan-in normalized). With O(1)
positive entries a perturbation of size δ/2 is amplified by ~ d_ℓ K per layer and saturates
tanh-like activations inside the ball, where |∇S|²/S is dominated by terms that do not grow
with A (depth 4, width 8, tanh, entries on [0.5, 1]: α̂ ≈ 32, 35, 36 for A = 1, 4, 16 against
4 F(θ0)/r² ≈ 50), so the certificate on B(θ0, δ/2) fails for every practical A. Theorem 4.1
allows any positive middle weights (Remark 4.4: "arbitrary positive entries").
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from sgdconv.chatterjee.bound import theorem41_lower_bound
from sgdconv.chatterjee.descent import DIVERGED, TIMED_OUT, eta_ladder, ladder
from sgdconv.lojasiewicz.certificate import certificate_margin, search_alpha
from sgdconv.models.feedforward import (
    ACTIVATIONS,
    FeedForward,
    chatterjee_init,
    gram_eigenvalues,
    independent_inputs,
    lecun_init,
)
from sgdconv.montecarlo.binomial import binomial_ci

#: Largest number of points kept per loss curve in the ``curves`` table.
CURVE_POINTS = 300


def substream(seed: int, *keys: int) -> torch.Generator:
    """An independent torch generator for (seed, keys...): the same configuration gets the same
    random numbers whatever else the config lists (via numpy's SeedSequence)."""
    state = np.random.SeedSequence([int(seed), *(int(k) for k in keys)]).generate_state(2)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


def make_data(n: int, d: int, *, inputs: str, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """n linearly independent inputs in R^d (d >= n) and labels y_i ~ N(0, 1) (arbitrary
    targets, as the theorems allow: the hardest case for interpolation)."""
    x = independent_inputs(n, d, kind=inputs, generator=generator)
    y = torch.randn(n, generator=generator, dtype=torch.float64)
    return x, y


def set_output_weight(net: FeedForward, theta: Tensor, value: float) -> Tensor:
    """θ with every entry of W_L set to ``value`` (the A of Theorem 4.1)."""
    theta = theta.clone()
    theta[..., net.slices()[-1][0]] = float(value)
    return theta


def thin_steps(last: int, points: int = CURVE_POINTS) -> np.ndarray:
    """At most ``points`` iterations 0..last, evenly spaced, always including both ends."""
    return np.unique(np.linspace(0, last, min(points, last + 1)).round().astype(int))


# --- Theorem 4.1 ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Thm41Result:
    """One configuration of ``chatterjee_thm41``: its table row, loss curve and A trials."""

    row: dict[str, Any]
    curve: pd.DataFrame
    trials: list[dict[str, Any]]


def run_thm41_configuration(
    net: FeedForward,
    x: Tensor,
    y: Tensor,
    settings: Mapping[str, Any],
    generator: torch.Generator,
) -> Thm41Result:
    """Theorem 4.1 for one architecture: draw the middle weights, then the A/η trial and error
    of the module docstring, the certificate (α̂ and α_lb) and GD at the chosen (A, η)."""
    lo, hi = settings["middle_range"]
    width = max(net.widths)
    base = chatterjee_init(
        net,
        middle_low=lo / width,
        middle_high=hi / width,
        output_weight=settings["a_start"],
        generator=generator,
        dtype=torch.float64,
    )
    delta = None if net.depth > 2 else float(settings["delta_two_layer"])

    def loss(theta: Tensor) -> Tensor:
        return net.loss(theta, x, y)

    def loss_and_grad(theta: Tensor) -> tuple[Tensor, Tensor]:
        return net.loss_and_grad(theta, x, y)

    search = settings["search"]
    epsilon = float(settings["epsilon"])
    trials, chosen = [], None
    for trial in range(int(settings["a_trials"])):
        A = float(settings["a_start"]) * float(settings["a_factor"]) ** trial
        theta0 = set_output_weight(net, base, A)
        bound = theorem41_lower_bound(net, theta0, x, delta=delta)
        f0 = float(loss(theta0.unsqueeze(0))[0])
        # Accept A under (2.2) of Theorem 2.2: 4 F(θ0) < (1 − ε)² r² α̂, a margin over (2.1)
        # so that the choice does not hinge on the last digits of a random search.
        threshold = 4.0 * f0 / ((1.0 - epsilon) ** 2 * bound.r**2)
        cert = search_alpha(
            loss,
            theta0,
            bound.r,
            n_random=int(search["n_random"]),
            n_starts=int(search["n_starts"]),
            n_steps=int(search["n_steps"]),
            generator=generator,
            # A ratio below the acceptance level already rejects this A: move on to the next.
            stop_below=threshold,
        )
        record = {
            "A": A,
            "alpha_hat": cert.alpha_hat,
            "alpha_lb": bound.alpha_lb,
            "margin_hat": cert.margin,
            "certificate_holds": cert.holds,
            "accepted": bool(cert.alpha_hat > threshold),
            "gd_run": False,
            "eta": math.nan,
            "converged": False,
            "iterations": -1,
            "rungs_diverged": 0,
            "rungs_timed_out": 0,
        }
        trials.append(record)
        if not record["accepted"]:
            continue  # (2.2) fails at this A: increase A (Remark 4.4)
        etas = ladder(
            float(settings["eta_max"]) / A**2,
            float(settings["eta_factor"]),
            int(settings["eta_rungs"]),
        )
        run = eta_ladder(
            loss_and_grad,
            theta0.unsqueeze(0),
            etas,
            max_steps=int(settings["max_steps"]),
            tol=float(settings["tol"]),
            divergence_factor=float(settings["divergence_factor"]),
            strategy="batch",
            record=True,
        )
        record.update(
            gd_run=True,
            eta=float(run.eta[0]),
            converged=bool(run.converged[0]),
            iterations=int(run.iterations[0]),
            rungs_diverged=int((run.outcome[0] == DIVERGED).sum()),
            rungs_timed_out=int((run.outcome[0] == TIMED_OUT).sum()),
        )
        chosen = (A, theta0, bound, cert, run, record)
        if record["converged"]:
            break
    if chosen is None:  # no A was accepted: report the last one, GD not run
        last = trials[-1]
        A = last["A"]
        theta0 = set_output_weight(net, base, A)
        bound = theorem41_lower_bound(net, theta0, x, delta=delta)
        cert, run = None, None
    else:  # the first A where both held, or the last A where GD was tried
        A, theta0, bound, cert, run, last = chosen

    f0 = float(loss(theta0.unsqueeze(0))[0])
    eig = gram_eigenvalues(x)
    row = {
        "depth": net.depth,
        "width": width,
        "widths": "-".join(str(w) for w in net.widths),
        "activation": net.activation,
        "n": x.shape[0],
        "d": net.d,
        "p": net.p,
        "alpha_X": float(eig[0]),
        "beta_X": float(eig[-1]),
        "M": bound.M,
        "delta": bound.delta,
        "K": bound.K,
        "r": bound.r,
        "A": A,
        "epsilon": epsilon,
        "eta": last["eta"],
        "F0": f0,
        "alpha_center": cert.alpha_center if cert else math.nan,
        "alpha_hat": last["alpha_hat"],
        "alpha_lb": bound.alpha_lb,
        "margin_hat": last["margin_hat"],
        "margin_lb": certificate_margin(f0, bound.r, bound.alpha_lb),
        "certificate_holds": bool(last["certificate_holds"]),
        "certificate_lb_holds": bool(4.0 * f0 < bound.r**2 * bound.alpha_lb),
        "A_proof": bound.output_weight_needed(f0),
        "argmin_radius": cert.argmin_radius if cert else math.nan,
        "search_evals": cert.n_evals if cert else 0,
        "a_trials": len(trials),
        "iterations": last["iterations"],
        "F_final": float(run.f_final[0]) if run else math.nan,
        "loss_ratio_final": float(run.f_final[0]) / f0 if run else math.nan,
        "converged": bool(last["converged"]),
        "max_dist": float(run.max_dist[0]) if run else math.nan,
    }
    row["max_dist_over_r"] = row["max_dist"] / bound.r
    curve = pd.DataFrame(columns=["step", "loss_ratio"])
    if run is not None and run.history is not None:
        stop = int(run.iterations[0])
        steps = thin_steps(stop)
        curve = pd.DataFrame({"step": steps, "loss_ratio": run.history[steps, 0].numpy() / f0})
    return Thm41Result(row=row, curve=curve, trials=trials)


def simulate_thm41(settings: Mapping[str, Any], seed: int) -> dict[str, pd.DataFrame]:
    """The ``chatterjee_thm41`` tables: ``configs`` (one row per depth × width × activation),
    ``curves`` (F(θ_k)/F(θ0) at the chosen A, η) and ``trials`` (every A tried)."""
    n, d = int(settings["n"]), int(settings["d"])
    x, y = make_data(n, d, inputs=settings["inputs"], generator=substream(seed, 0))
    rows, curves, trials = [], [], []
    for depth, width, activation in thm41_configurations(settings):
        net = FeedForward(d, (width,) * (depth - 1), activation, settings["leaky_slope"])
        generator = substream(seed, 1, depth, width, ACTIVATIONS.index(activation))
        result = run_thm41_configuration(net, x, y, settings, generator)
        key = {"depth": depth, "width": width, "activation": activation}
        rows.append(result.row)
        curves.append(result.curve.assign(**key))
        trials += [{**key, **t} for t in result.trials]
    curve_table = pd.concat(curves, ignore_index=True)
    return {
        "configs": pd.DataFrame(rows),
        "curves": curve_table[["depth", "width", "activation", "step", "loss_ratio"]],
        "trials": pd.DataFrame(trials),
    }


def thm41_configurations(settings: Mapping[str, Any]) -> list[tuple[int, int, str]]:
    """(depth, width, activation) of every ``chatterjee_thm41`` configuration, in table order."""
    return [
        (int(depth), int(width), str(act))
        for depth in settings["depths"]
        for width in settings["widths"]
        for act in settings["activations"]
    ]


# --- Theorem 4.5 ----------------------------------------------------------------------------


def simulate_thm45(settings: Mapping[str, Any], seed: int) -> dict[str, pd.DataFrame]:
    """The ``chatterjee_thm45`` tables: ``runs`` (one row per n and seed) and ``fractions``
    (per n: converging fraction of seeds with its binomial confidence interval).

    For each n the data set (d = ⌈(d/n) · n⌉ inputs, labels N(0, 1)) is drawn once; the seeds
    are independent LeCun initializations (Theorem 4.5's probability is over the weights), all
    run as one (seeds, p) batch through the step-size ladder. A seed *converges* when some η of
    the ladder brings F below tol · F(θ0) within ``max_steps`` iterations.
    """
    widths = tuple(int(w) for w in settings["widths"])
    runs, fractions = [], []
    for n in settings["ns"]:
        n = int(n)
        d = math.ceil(float(settings["d_over_n"]) * n)
        generator = substream(seed, n)
        x, y = make_data(n, d, inputs=settings["inputs"], generator=generator)
        net = FeedForward(d, widths, "smooth_leaky_relu", settings["leaky_slope"])
        theta0 = lecun_init(
            net, int(settings["seeds"]), c=float(settings["c"]), generator=generator
        )
        result = eta_ladder(
            lambda th, net=net, x=x, y=y: net.loss_and_grad(th, x, y),
            theta0,
            ladder(
                float(settings["eta_max"]),
                float(settings["eta_factor"]),
                int(settings["eta_rungs"]),
            ),
            max_steps=int(settings["max_steps"]),
            tol=float(settings["tol"]),
            divergence_factor=float(settings["divergence_factor"]),
            strategy="sequential",
        )
        eig = gram_eigenvalues(x)
        runs.append(
            pd.DataFrame(
                {
                    "n": n,
                    "d": d,
                    "seed_index": np.arange(len(theta0)),
                    "F0": result.f0.numpy(),
                    "eta": result.eta.numpy(),
                    "converged": result.converged.numpy(),
                    "iterations": result.iterations.numpy(),
                    "F_final": result.f_final.numpy(),
                    "max_dist": result.max_dist.numpy(),
                }
            )
        )
        k, total = int(result.converged.sum()), len(theta0)
        low, high = binomial_ci(
            k, total, level=float(settings["ci_level"]), method=settings["ci_method"]
        )
        done = result.converged.numpy()
        fractions.append(
            {
                "n": n,
                "d": d,
                "d_over_n": d / n,
                "p": net.p,
                "alpha_X": float(eig[0]),
                "beta_X": float(eig[-1]),
                "seeds": total,
                "converged": k,
                "fraction": k / total,
                "ci_low": float(low),
                "ci_high": float(high),
                "ci_level": float(settings["ci_level"]),
                "ci_method": settings["ci_method"],
                "median_iterations": float(np.median(result.iterations.numpy()[done]))
                if k
                else math.nan,
                "median_eta": float(np.nanmedian(result.eta.numpy())) if k else math.nan,
            }
        )
    return {"fractions": pd.DataFrame(fractions), "runs": pd.concat(runs, ignore_index=True)}
