"""anlu_noise: plain minibatch SGD on Chatterjee-initialized networks, for An & Lu's
Assumption 4 (eq. (2.10)–(2.11)): the gradient noise scales with the loss, |noise|² ≲ σ F(θ).

Two regression problems, run through the generic training engine (:mod:`sgdconv.train`) and
measured by the statistics pipeline (:mod:`sgdconv.stats`) at every checkpoint:

* *interpolating*: d >= n linearly independent inputs (Chatterjee's Theorem 4.1 setting), so the
  network can fit every target and each per-sample gradient ∇ℓ_i = 2 (f(x_i) − y_i) ∇f(x_i)
  vanishes with its residual: σ² / F stays bounded while F → 0;
* *non-interpolating*: more examples than parameters (n > p) with random targets, so F stays
  bounded away from 0 while the per-sample gradients disagree (σ² / F does not track F → 0).

The factories below are named in run specs as ``"sgdconv.anlu.noise:<name>"``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

# The factories import torch when they are called: rules/anlu.smk imports this module's run
# registry when Snakemake parses the workflow, once in every cluster job.
if TYPE_CHECKING:
    from sgdconv.data.tensors import TensorSource
    from sgdconv.models.feedforward import FeedForwardModule


def chatterjee_net(
    *,
    d: int,
    widths: Sequence[int],
    activation: str = "smooth_leaky_relu",
    leaky_slope: float = 0.5,
    middle_low: float = 1.0,
    middle_high: float = 2.0,
    output_weight: float = 1.0,
    seed: int = 0,
) -> FeedForwardModule:
    """A Section-4 network at the initialization of Chatterjee's Theorem 4.1 (float64)."""
    import torch

    from sgdconv.models.feedforward import FeedForward, FeedForwardModule, chatterjee_init

    net = FeedForward(d=d, widths=tuple(widths), activation=activation, leaky_slope=leaky_slope)
    theta0 = chatterjee_init(
        net,
        middle_low=middle_low,
        middle_high=middle_high,
        output_weight=output_weight,
        generator=torch.Generator().manual_seed(seed),
    )
    return FeedForwardModule(net, theta0).to(torch.float64)


def regression_source(
    *,
    n: int,
    d: int,
    inputs: str = "gaussian",
    target_scale: float = 1.0,
    n_val: int = 0,
    seed: int = 0,
) -> TensorSource:
    """n inputs in R^d (rows; linearly independent when d >= n, see
    :func:`~sgdconv.models.feedforward.independent_inputs`) with i.i.d. N(0, target_scale²)
    targets, in float64. With n > d the inputs are i.i.d. Gaussian (they cannot all be
    independent) and random targets cannot be interpolated by a network with fewer than n
    parameters. ``n_val`` extra examples from the same distribution form a validation set."""
    import torch

    from sgdconv.data.tensors import TensorSource
    from sgdconv.models.feedforward import independent_inputs

    if n < 1 or d < 1 or target_scale <= 0:
        raise ValueError(f"need n, d >= 1 and target_scale > 0, got {n}, {d}, {target_scale}")
    generator = torch.Generator().manual_seed(seed)
    total = n + n_val
    if d >= total:
        x = independent_inputs(total, d, kind=inputs, generator=generator)
    else:
        x = torch.randn(total, d, generator=generator, dtype=torch.float64)
    y = target_scale * torch.randn(total, generator=generator, dtype=torch.float64)
    return TensorSource(x[:n], y[:n], x[n:] if n_val else None, y[n:] if n_val else None)


# Thresholds of ARTIFACTS.md (claim anlu_ml_noise_scales_with_loss).
MAX_SPREAD = 10.0
MIN_LOSS_FALL = 1e4


def noise_to_loss(stats: pd.DataFrame) -> pd.DataFrame:
    """Per checkpoint: F = ``loss_last`` (the full loss S(θ_k) of eq. (4.2)), σ² =
    ``noise_norm``² (Zhang eq. (1), per-sample) and their ratio σ²/F (An & Lu Assumption 4
    says σ² <= σ_A F for some constant σ_A)."""
    frame = stats[["step", "epoch", "loss_last", "noise_norm"]].copy()
    frame["noise_sq"] = frame["noise_norm"] ** 2
    frame["noise_sq_over_loss"] = frame["noise_sq"] / frame["loss_last"]
    return frame.sort_values("step").reset_index(drop=True)


def spread_while_falling(stats: pd.DataFrame) -> tuple[float, float]:
    """(max/min of σ²/F over the trajectory, F(θ_0)/min_k F(θ_k)) of one run."""
    frame = noise_to_loss(stats)
    ratio = frame["noise_sq_over_loss"].to_numpy()
    loss = frame["loss_last"].to_numpy()
    finite = np.isfinite(ratio) & (loss > 0)
    if finite.sum() < 2:
        return float("nan"), float("nan")
    spread = float(ratio[finite].max() / ratio[finite].min())
    fall = float(loss[0] / loss[finite].min())
    return spread, fall


#: The whole training set is the statistics sample, in micro-batches of one example: the noise
#: norm of eq. (1) is then exact (no estimator variance), and no sharpness is needed here.
NOISE_STATS = {"microbatch": 1, "sharpness": False, "validation": False}

NOISE_RUN_KINDS = ("interpolating", "non_interpolating")


def noise_runs(
    noise: Mapping[str, Any], *, seeds: Mapping[str, int], device: str
) -> dict[str, dict[str, Any]]:
    """The two training runs of ``anlu_noise`` from the ``anlu.noise`` config section:
    ``run_id -> {"spec", "num_train", "stats", "resources"}`` for the workflow's run registry.

    ``seeds[kind]`` is the first of four consecutive streams of a run: the model's
    initialization, the data, the training order and the statistics sample.
    """
    runs = {}
    for kind in NOISE_RUN_KINDS:
        s, seed = noise[kind], int(seeds[kind])
        factories = "sgdconv.anlu.noise"
        model = {"name": f"{factories}:chatterjee_net", "seed": seed}
        for key in ("d", "widths", "activation", "leaky_slope", "middle_low", "middle_high"):
            model[key] = s[key]
        model["output_weight"] = s["output_weight"]
        data = {"name": f"{factories}:regression_source", "seed": seed + 1}
        for key in ("n", "d", "inputs", "target_scale"):
            data[key] = s[key]
        spec = {
            "model": model,
            "data": data,
            "loss": "mse",
            "batch_size": s["batch_size"],
            "epochs": s["epochs"],
            "lr": s["lr"],
            "checkpoint_every": s["checkpoint_every"],
            "seed": seed + 2,
            "device": device,
        }
        runs[f"anlu_noise_{kind}"] = {
            "spec": spec,
            "num_train": int(s["n"]),
            "stats": {**NOISE_STATS, "sample_size": int(s["n"]), "seed": seed + 3},
            "resources": {"mem_mb": 1000, "runtime": 10},
        }
    return runs
