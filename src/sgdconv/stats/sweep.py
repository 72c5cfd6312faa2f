"""The estimator-vs-sample-size sweep of Zhang et al. App. A.2 (Figs. 7-8): the statistics of
eq. (1) on nested samples of growing size at one checkpoint."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import pandas as pd

from sgdconv.stats.checkpoint_context import CheckpointContext, population_size
from sgdconv.stats.checkpoint_stats import sharpness

logger = logging.getLogger(__name__)


SWEEP_COLUMNS = ["n_samples", "quantity", "estimator", "value", "se"]


def sample_size_sweep(ctx: CheckpointContext, sizes: Sequence[int]) -> pd.DataFrame:
    """The statistics on nested samples of increasing size (Zhang et al. App. A.2, Fig. 7).

    For each size m (a prefix of the largest sample): ``estimator = "paper"`` is the plug-in
    estimate on S_m (|ḡ| of the sample, σ of the sample, the sample loss and sharpness), which
    Jensen's inequality biases upwards for the gradient norm; ``estimator = "unbiased"`` the
    estimates of the population's |∇L| and σ from :func:`sgdconv.stats.estimate_gradient_stats`.
    Long format: ``n_samples, quantity, estimator, value, se``.
    """
    from sgdconv.stats import estimate_gradient_stats

    s = ctx.settings
    sizes = sorted({int(m) for m in sizes})
    full = ctx.sample(max(sizes))
    model = ctx.set_mode(ctx.model)
    rows = []
    for m in sizes:
        count = m // full.size
        if count < 2:
            raise ValueError(f"sample size {m} gives fewer than 2 micro-batches of {full.size}")
        batches = full.truncated(count)
        n = batches.n_samples
        big_n = population_size(ctx.source, n)
        # One pass gives both: the plug-in |ḡ| and the unbiased population estimates; the
        # sample's own σ_S² = (m − 1)/m ŝ², where ŝ² = noise_norm_sq · N/(N − 1).
        st = estimate_gradient_stats(model, ctx.loss_fn, batches, population_size=big_n)
        if big_n is None:  # the sample is the population: noise_norm is already σ_S
            sigma_sample = st.noise_norm
        else:
            s2 = st.noise_norm_sq if math.isinf(big_n) else st.noise_norm_sq * big_n / (big_n - 1)
            sigma_sample = math.sqrt(max(s2 * (n - 1) / n, 0.0))
        rows += [
            (n, "loss", "paper", st.loss, st.loss_se),
            (n, "grad_norm", "paper", st.grad_norm_plugin, st.grad_norm_se),
            (n, "noise_norm", "paper", sigma_sample, st.noise_norm_se),
            (n, "grad_norm", "unbiased", st.grad_norm, st.grad_norm_se),
            (n, "noise_norm", "unbiased", st.noise_norm, st.noise_norm_se),
        ]
        if s.sharpness:
            eig = sharpness(ctx, model, batches)
            rows.append((n, "sharpness", "paper", eig.value, math.nan))
        logger.info("sample size %d done", n)
    frame = pd.DataFrame(rows, columns=SWEEP_COLUMNS)
    return frame.astype({"n_samples": "int64"})


# --- aggregation ----------------------------------------------------------------------------

#: Columns of ``runs/<id>/stats.parquet``: the DESIGN.md contract first, then extras.
