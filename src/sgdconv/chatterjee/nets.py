"""The Theorem-4.1 experiment of Chatterjee (2022), Section 4: ``chatterjee_thm41``, and the
data helpers it shares with ``chatterjee_thm45`` (:mod:`sgdconv.chatterjee.lecun`).

Theorem 4.1: a net with depth L >= 2, d_L = 1 and C² activations with σ(0) = 0, σ' > 0, on
linearly independent inputs (d >= n), started at W_1 = 0, b = 0, positive W_2..W_{L−1}
(minimum δ) and W_L >= A, converges under GD to zero loss for A large and η small enough. The
proof (Section 7) shows criterion (2.1) on B(θ0, r), r = δ/2, and Theorems 2.1/2.2 then keep
every iterate in that ball. We check (2.1) with the certificate search (α̂, an upper bound on α)
and the proof's own lower bound α_lb, and run GD.

**The A/η rule (Remarks 4.4 and 4.7, trial and error).** The middle weights are drawn once per
configuration; then A runs through the increasing ladder A_0, A_0·f, A_0·f², ... For each A we
run the certificate search on B(θ0, r); if 4 F(θ0) < (1 − ε)² r² α̂ (criterion (2.2) of
Theorem 2.2, i.e. (2.1) with a margin) we run the decreasing step ladder (η_max/A²,
η_max/(A² g), ...) and keep the largest η whose GD reaches F < tol · F(θ0) within ``max_steps``
*without leaving B(θ0, r)* (:func:`sgdconv.chatterjee.descent.eta_ladder` with a radius): a
larger step may converge after travelling far outside the ball, where the theorem says nothing.
The first A where both succeed is reported. The step ladder is in units of 1/A² because every
q_r of (7.2) carries the factor W_L, so the gradient with respect to W_1 grows like A and the
curvature like A²: the same rungs stay relevant at every A.

**Selection and the certificate.** A is *chosen* because a search did not refute (2.2) at it,
so that search's α̂ is biased upwards by the choice. At the chosen A an independent search
(its own random stream, the same effort) tries again to refute (2.1); the reported α̂ is the
smaller of the two, and "the certificate holds" means that neither search found a point of the
ball with |∇F|²/F < 4 F(θ0)/r²: not refuted by a search, which is evidence, not a proof. The
proof-backed bound α_lb of Section 7 (:mod:`sgdconv.chatterjee.bound`) is reported beside it.

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

from sgdconv.chatterjee.bound import Theorem41Bound, theorem41_lower_bound
from sgdconv.chatterjee.descent import (
    CONVERGED,
    DIVERGED,
    NOT_RUN,
    TIMED_OUT,
    LadderResult,
    eta_ladder,
    ladder,
)
from sgdconv.chatterjee.settings import Thm41Settings
from sgdconv.lojasiewicz.certificate import CertificateResult, certificate_margin, search_alpha
from sgdconv.models.feedforward import (
    ACTIVATIONS,
    FeedForward,
    chatterjee_init,
    gram_eigenvalues,
    independent_inputs,
)

#: Largest number of points kept per loss curve in the ``curves`` table.
CURVE_POINTS = 300


def substream(seed: int, *keys: int) -> torch.Generator:
    """An independent torch generator for (seed, keys...): the same configuration gets the same
    random numbers whatever else the config lists (via numpy's SeedSequence)."""
    state = np.random.SeedSequence([int(seed), *(int(k) for k in keys)]).generate_state(2)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


def make_data(n: int, d: int, *, inputs: str, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """n inputs in R^d and labels y_i ~ N(0, 1) (arbitrary targets, as the theorems allow: the
    hardest case for interpolation). For d >= n the inputs are linearly independent, as
    Theorems 4.1 and 4.5 require; d < n (Gaussian only) is the case outside their hypothesis."""
    if d >= n:
        x = independent_inputs(n, d, kind=inputs, generator=generator)
    elif inputs == "gaussian":
        x = torch.randn(n, d, generator=generator, dtype=torch.float64)
    else:
        raise ValueError(f"d < n needs gaussian inputs, got {inputs!r}")
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


#: How each (A, rung) run of the step ladder ended, for the ``ladder`` table.
OUTCOMES = {
    (CONVERGED, False): "converged in the ball",
    (CONVERGED, True): "converged outside the ball",
    (DIVERGED, False): "diverged",
    (DIVERGED, True): "diverged",
    (TIMED_OUT, False): "out of steps",
    (TIMED_OUT, True): "out of steps, left the ball",
    (NOT_RUN, False): "not needed",
    (NOT_RUN, True): "left the ball, stopped",
}


def rung_rows(run: LadderResult, r: float) -> list[dict[str, Any]]:
    """One row per rung of a single-start ladder: η, outcome, max_k |θ_k − θ0| / r, iterations."""
    rows = []
    for e, eta in enumerate(run.etas.tolist()):
        code, left = int(run.outcome[0, e]), bool(run.left_ball[0, e])
        rows.append(
            {
                "rung": e,
                "eta": eta,
                "outcome": OUTCOMES[code, left],
                "chosen": e == int(run.rung[0]),
                "max_dist_over_r": float(run.rung_max_dist[0, e]) / r,
                "iterations": int(run.rung_iterations[0, e]),
            }
        )
    return rows


# --- Theorem 4.1 ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Thm41Result:
    """One configuration of ``chatterjee_thm41``: its table row, loss curve, A trials and the
    step ladder at the reported A."""

    row: dict[str, Any]
    curve: pd.DataFrame
    trials: list[dict[str, Any]]
    rungs: list[dict[str, Any]]


@dataclass(frozen=True)
class _Trial:
    """What one A of the ladder produced (the GD ladder only where the search accepted A)."""

    A: float
    theta0: Tensor
    bound: Theorem41Bound
    f0: float
    cert: CertificateResult
    run: LadderResult | None


def _try_output_weight(
    net: FeedForward,
    base: Tensor,
    A: float,
    loss_and_grad: Any,
    loss: Any,
    x: Tensor,
    settings: Thm41Settings,
    generator: torch.Generator,
) -> _Trial:
    """Search the certificate at A; where (2.2) is not refuted, run the step ladder in the ball."""
    delta = None if net.depth > 2 else settings.delta_two_layer
    theta0 = set_output_weight(net, base, A)
    bound = theorem41_lower_bound(net, theta0, x, delta=delta)
    f0 = float(loss(theta0.unsqueeze(0))[0])
    # Accept A under (2.2) of Theorem 2.2: 4 F(θ0) < (1 − ε)² r² α̂, a margin over (2.1)
    # so that the choice does not hinge on the last digits of a random search.
    threshold = 4.0 * f0 / ((1.0 - settings.epsilon) ** 2 * bound.r**2)
    cert = search_alpha(
        loss, theta0, bound.r, generator=generator, stop_below=threshold, **settings.search.kwargs()
    )
    run = None
    if cert.alpha_hat > threshold:
        etas = ladder(settings.eta_max / A**2, settings.eta_factor, settings.eta_rungs)
        run = eta_ladder(
            loss_and_grad,
            theta0.unsqueeze(0),
            etas,
            max_steps=settings.max_steps,
            tol=settings.tol,
            divergence_factor=settings.divergence_factor,
            radius=bound.r,
            strategy="batch",
            record=True,
        )
    return _Trial(A, theta0, bound, f0, cert, run)


def _trial_record(trial: _Trial) -> dict[str, Any]:
    run = trial.run
    return {
        "A": trial.A,
        "alpha_hat": trial.cert.alpha_hat,
        "alpha_lb": trial.bound.alpha_lb,
        "margin_hat": trial.cert.margin,
        "certificate_holds": trial.cert.holds,
        "accepted": run is not None,
        "gd_run": run is not None,
        "eta": float(run.eta[0]) if run else math.nan,
        "converged": bool(run.converged[0]) if run else False,
        "iterations": int(run.iterations[0]) if run else -1,
        "max_dist_over_r": float(run.max_dist[0]) / trial.bound.r if run else math.nan,
        "rungs_diverged": int((run.outcome[0] == DIVERGED).sum()) if run else 0,
        "rungs_timed_out": int((run.outcome[0] == TIMED_OUT).sum()) if run else 0,
        "rungs_left_ball": int(run.left_ball[0].sum()) if run else 0,
    }


def run_thm41_configuration(
    net: FeedForward,
    x: Tensor,
    y: Tensor,
    settings: Thm41Settings,
    generator: torch.Generator,
    verify_generator: torch.Generator,
) -> Thm41Result:
    """Theorem 4.1 for one architecture: draw the middle weights, then the A/η trial and error
    of the module docstring, the independent certificate search at the chosen A, and the
    table row (α̂, α_lb, GD at the chosen (A, η), its excursion max_k |θ_k − θ0| / r)."""
    lo, hi = settings.middle_range
    width = max(net.widths)
    base = chatterjee_init(
        net,
        middle_low=lo / width,
        middle_high=hi / width,
        output_weight=settings.a_start,
        generator=generator,
        dtype=torch.float64,
    )

    def loss(theta: Tensor) -> Tensor:
        return net.loss(theta, x, y)

    def loss_and_grad(theta: Tensor) -> tuple[Tensor, Tensor]:
        return net.loss_and_grad(theta, x, y)

    trials: list[_Trial] = []
    for j in range(settings.a_trials):
        A = settings.a_start * settings.a_factor**j
        trials.append(_try_output_weight(net, base, A, loss_and_grad, loss, x, settings, generator))
        if trials[-1].run is not None and bool(trials[-1].run.converged[0]):
            break  # the first A where the certificate and GD in the ball both succeeded
    tried = [t for t in trials if t.run is not None]
    # The first A where both held, else the last A where GD was tried, else the last A.
    chosen = tried[-1] if tried else trials[-1]
    verify = search_alpha(
        loss,
        chosen.theta0,
        chosen.bound.r,
        generator=verify_generator,
        stop_below=4.0 * chosen.f0 / chosen.bound.r**2,
        **settings.search.kwargs(),
    )
    row = _thm41_row(net, x, settings, chosen, verify, len(trials))
    run = chosen.run
    curve = pd.DataFrame(columns=["step", "loss_ratio"])
    if run is not None and run.history is not None:
        steps = thin_steps(int(run.iterations[0]))
        curve = pd.DataFrame(
            {"step": steps, "loss_ratio": run.history[steps, 0].numpy() / chosen.f0}
        )
    rungs = rung_rows(run, chosen.bound.r) if run is not None else []
    return Thm41Result(row, curve, [_trial_record(t) for t in trials], rungs)


def _thm41_row(
    net: FeedForward,
    x: Tensor,
    settings: Thm41Settings,
    chosen: _Trial,
    verify: CertificateResult,
    n_trials: int,
) -> dict[str, Any]:
    """The ``configs`` row of one configuration at its chosen A."""
    bound, cert, run, f0 = chosen.bound, chosen.cert, chosen.run, chosen.f0
    alpha_hat = min(cert.alpha_hat, verify.alpha_hat)
    record = _trial_record(chosen)
    eig = gram_eigenvalues(x)
    return {
        "depth": net.depth,
        "width": max(net.widths),
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
        "A": chosen.A,
        "epsilon": settings.epsilon,
        "eta": record["eta"],
        "F0": f0,
        "alpha_center": cert.alpha_center,
        "alpha_hat_select": cert.alpha_hat,
        "alpha_hat_verify": verify.alpha_hat,
        "alpha_hat": alpha_hat,
        "alpha_lb": bound.alpha_lb,
        "margin_hat": certificate_margin(f0, bound.r, alpha_hat),
        "margin_lb": certificate_margin(f0, bound.r, bound.alpha_lb),
        "certificate_holds": bool(4.0 * f0 < bound.r**2 * alpha_hat),
        "certificate_lb_holds": bool(4.0 * f0 < bound.r**2 * bound.alpha_lb),
        "A_proof": bound.output_weight_needed(f0),
        "argmin_radius": cert.argmin_radius
        if cert.alpha_hat <= verify.alpha_hat
        else verify.argmin_radius,
        "search_evals": cert.n_evals + verify.n_evals,
        "a_trials": n_trials,
        "iterations": record["iterations"],
        "F_final": float(run.f_final[0]) if run else math.nan,
        "loss_ratio_final": float(run.f_final[0]) / f0 if run else math.nan,
        "converged": record["converged"],
        "max_dist": float(run.max_dist[0]) if run else math.nan,
        "max_dist_over_r": record["max_dist_over_r"],
        "rungs_left_ball": record["rungs_left_ball"],
    }


def simulate_thm41(
    settings: Mapping[str, Any] | Thm41Settings, seed: int
) -> dict[str, pd.DataFrame]:
    """The ``chatterjee_thm41`` tables: ``configs`` (one row per depth × width × activation),
    ``curves`` (F(θ_k)/F(θ0) at the chosen A, η), ``trials`` (every A tried) and ``ladder``
    (every step of the ladder at the chosen A: outcome and excursion from θ0)."""
    settings = Thm41Settings.from_dict(settings)
    x, y = make_data(settings.n, settings.d, inputs=settings.inputs, generator=substream(seed, 0))
    rows, curves, trials, rungs = [], [], [], []
    for depth, width, activation in settings.configurations():
        net = FeedForward(settings.d, (width,) * (depth - 1), activation, settings.leaky_slope)
        keys = (depth, width, ACTIVATIONS.index(activation))
        result = run_thm41_configuration(
            net, x, y, settings, substream(seed, 1, *keys), substream(seed, 2, *keys)
        )
        key = {"depth": depth, "width": width, "activation": activation}
        rows.append(result.row)
        curves.append(result.curve.assign(**key))
        trials += [{**key, **t} for t in result.trials]
        rungs += [{**key, **r} for r in result.rungs]
    curve_table = pd.concat(curves, ignore_index=True)
    return {
        "configs": pd.DataFrame(rows),
        "curves": curve_table[["depth", "width", "activation", "step", "loss_ratio"]],
        "trials": pd.DataFrame(trials),
        "ladder": pd.DataFrame(rungs),
    }
