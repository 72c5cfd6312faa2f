"""The Theorem-4.5 experiment of Chatterjee (2022), Section 4: ``chatterjee_thm45``.

Theorem 4.5 / Remark 4.8: under LeCun initialization N(0, c/d_{l−1}) with an activation whose
slope lies in [C1, C2] (the shifted smooth leaky ReLU of Remark 4.6), on linearly independent
inputs, the probability that GD converges to zero loss is bounded below by a θ > 0 that depends
on α and β (the extreme eigenvalues of XᵀX/n) but not on n: as n, d → ∞ with d/n fixed *above
1*, α and β tend to positive limits, so the probability stays bounded below. We estimate it as
the fraction of seeds that converge, with binomial intervals, for each n of a grid and each
ratio d/n of a sweep through and below 1:

* d/n > 1: inside the hypothesis, with α bounded away from 0 (Marchenko–Pastur: α → (1 −
  √(n/d))²);
* d/n = 1: still linearly independent, but α → 0 as n grows, so the theorem's θ(α) gives no
  bound uniform in n;
* d/n < 1: outside the hypothesis (n > d inputs cannot be linearly independent; α = 0).

A seed *converges* when some step of the trial-and-error ladder (Remark 4.7) brings F below
tol · F(θ0) within ``max_steps`` iterations, so every fraction is a fraction within that budget;
the table also keeps the iterations each converging seed needed (the cost, which grows with n).
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

from sgdconv.chatterjee.descent import LadderResult, eta_ladder, ladder
from sgdconv.chatterjee.nets import make_data, substream
from sgdconv.chatterjee.settings import Thm45Settings
from sgdconv.models.feedforward import (
    FeedForward,
    activation_derivative,
    activation_fn,
    gram_eigenvalues,
    lecun_init,
)
from sgdconv.montecarlo.binomial import binomial_ci


@dataclass(frozen=True)
class DataSets:
    """D independent data sets of n points in R^d: inputs ``x`` (D, n, d), labels ``y`` (D, n).

    :meth:`loss_and_grad` evaluates S of eq. (4.2) for a batch of parameter vectors, each on the
    data set its label names (the ``labels`` of :func:`sgdconv.chatterjee.descent.eta_ladder`).
    """

    net: FeedForward
    x: Tensor
    y: Tensor

    def loss_and_grad(self, theta: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        """S(θ_b) on data set ``labels[b]`` and ∇S(θ_b), for every row b of θ (B, p).

        Backpropagation written out (the chain rule of Section 7: ∂S/∂g_ℓ = (∂S/∂g_{ℓ+1}
        W_{ℓ+1}) ⊙ σ'(g_ℓ)), which for these small nets costs a quarter of autograd's
        bookkeeping; it equals :meth:`FeedForward.loss_and_grad` on each row (tested).
        """
        sigma = activation_fn(self.net.activation, self.net.leaky_slope)
        slope = activation_derivative(self.net.activation, self.net.leaky_slope)
        layers = self.net.layers(theta)
        inputs, pre = [self.x[labels]], []  # h_0 = x (B, n, d); g_ℓ (B, n, d_ℓ)
        for depth, (weight, bias) in enumerate(layers, start=1):
            pre.append(torch.baddbmm(bias.unsqueeze(-2), inputs[-1], weight.transpose(-1, -2)))
            inputs.append(pre[-1] if depth == len(layers) else sigma(pre[-1]))
        residual = inputs[-1].squeeze(-1) - self.y[labels]  # f(x_i) − y_i, (B, n)
        delta = (2.0 / residual.shape[-1]) * residual.unsqueeze(-1)  # ∂S/∂g_L
        grads = []
        for depth in range(len(layers), 0, -1):
            if depth < len(layers):
                delta = delta * slope(pre[depth - 1])
            grads.append((torch.bmm(delta.transpose(-1, -2), inputs[depth - 1]), delta.sum(-2)))
            if depth > 1:
                delta = torch.bmm(delta, layers[depth - 1][0])
        return residual.pow(2).mean(dim=-1), self.net.flatten(grads[::-1])

    def gram_extremes(self) -> tuple[Tensor, Tensor]:
        """α and β of XᵀX/n for every data set (α = 0 when d < n)."""
        eig = torch.stack([gram_eigenvalues(x) for x in self.x])
        return eig[:, 0].clamp_min(0.0), eig[:, -1]


def draw_data(settings: Thm45Settings, n: int, d: int, generator: torch.Generator) -> DataSets:
    """``settings.datasets`` independent data sets (:func:`sgdconv.chatterjee.nets.make_data`)."""
    net = FeedForward(d, settings.widths, "smooth_leaky_relu", settings.leaky_slope)
    draws = [
        make_data(n, d, inputs=settings.inputs, generator=generator)
        for _ in range(settings.datasets)
    ]
    return DataSets(net, torch.stack([x for x, _ in draws]), torch.stack([y for _, y in draws]))


def _fraction_row(
    settings: Thm45Settings, n: int, ratio: float, data: DataSets, run: LadderResult
) -> dict[str, Any]:
    """The ``fractions`` row of one (d/n, n): converging fraction, interval, cost."""
    k, total = int(run.converged.sum()), len(run.converged)
    low, high = binomial_ci(k, total, level=settings.ci_level, method=settings.ci_method)
    done = run.converged.numpy()
    iters = run.iterations.numpy()[done]
    alpha, beta = data.gram_extremes()
    return {
        "d_over_n": ratio,
        "n": n,
        "d": data.net.d,
        "within_hypothesis": data.net.d >= n,
        "p": data.net.p,
        "datasets": settings.datasets,
        "alpha_X": float(alpha.median()),
        "alpha_X_min": float(alpha.min()),
        "beta_X": float(beta.median()),
        "seeds": total,
        "converged": k,
        "fraction": k / total,
        "ci_low": float(low),
        "ci_high": float(high),
        "ci_level": settings.ci_level,
        "ci_method": settings.ci_method,
        "median_iterations": float(np.median(iters)) if k else math.nan,
        "iterations_q25": float(np.quantile(iters, 0.25)) if k else math.nan,
        "iterations_q75": float(np.quantile(iters, 0.75)) if k else math.nan,
        "median_eta": float(np.nanmedian(run.eta.numpy())) if k else math.nan,
        "max_steps": settings.max_steps,
    }


def run_seeds(
    settings: Thm45Settings, n: int, ratio: float, seed: int
) -> tuple[dict[str, Any], pd.DataFrame]:
    """One (d/n, n): draw the data sets and the seeds' LeCun initializations (one (seeds, p)
    batch, seed i on data set i mod datasets) and run the step ladder on each seed."""
    d = settings.input_dimension(n, ratio)
    generator = substream(seed, n, d)
    data = draw_data(settings, n, d, generator)
    theta0 = lecun_init(data.net, settings.seeds, c=settings.c, generator=generator)
    labels = torch.arange(settings.seeds) % settings.datasets
    run = eta_ladder(
        data.loss_and_grad,
        theta0,
        ladder(settings.eta_max, settings.eta_factor, settings.eta_rungs),
        max_steps=settings.max_steps,
        tol=settings.tol,
        divergence_factor=settings.divergence_factor,
        labels=labels,
        strategy="batch",
    )
    runs = pd.DataFrame(
        {
            "d_over_n": ratio,
            "n": n,
            "d": d,
            "seed_index": np.arange(len(theta0)),
            "dataset": labels.numpy(),
            "F0": run.f0.numpy(),
            "eta": run.eta.numpy(),
            "converged": run.converged.numpy(),
            "iterations": run.iterations.numpy(),
            "F_final": run.f_final.numpy(),
            "max_dist": run.max_dist.numpy(),
        }
    )
    return _fraction_row(settings, n, ratio, data, run), runs


def simulate_thm45(
    settings: Mapping[str, Any] | Thm45Settings, seed: int
) -> dict[str, pd.DataFrame]:
    """The ``chatterjee_thm45`` tables: ``fractions`` (one row per (d/n, n): converging
    fraction of seeds with its binomial interval, the iterations the converging seeds needed,
    the eigenvalues α, β of XᵀX/n) and ``runs`` (one row per (d/n, n, seed))."""
    settings = Thm45Settings.from_dict(settings)
    rows, runs = [], []
    for ratio in settings.d_over_n:
        for n in settings.ns:
            row, table = run_seeds(settings, n, ratio, seed)
            rows.append(row)
            runs.append(table)
    return {"fractions": pd.DataFrame(rows), "runs": pd.concat(runs, ignore_index=True)}
