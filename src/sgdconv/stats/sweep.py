"""The estimator-vs-sample-size sweep of Zhang et al. App. A.2 (Figs. 7-8): the statistics of
eq. (1) on nested samples of growing size at one checkpoint."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import pandas as pd

from sgdconv.data.base import mix_seed
from sgdconv.stats.checkpoint_context import CheckpointContext, population_size
from sgdconv.stats.checkpoint_stats import sharpness

logger = logging.getLogger(__name__)


SWEEP_COLUMNS = ["n_samples", "quantity", "estimator", "value", "se"]


#: Power iterations of the authors' sharpness estimate (their scripts use 5-10).
AUTHORS_POWER_ITERATIONS = 10


def sample_size_sweep(ctx: CheckpointContext, sizes: Sequence[int]) -> pd.DataFrame:
    """The statistics on nested samples of increasing size (Zhang et al. App. A.2, Fig. 7).

    For each size m (a prefix of the largest sample), three estimators:

    * ``plugin``: the plug-in estimate on S_m (|ḡ| of the sample, σ of the sample, the sample
      loss, and λ_max of the sample's Hessian by the run's solver), which Jensen's inequality
      biases upwards for the gradient norm;
    * ``unbiased``: the estimates of the population's |∇L| and σ from
      :func:`sgdconv.stats.estimate_gradient_stats`;
    * ``authors``: the authors' scripts (:mod:`sgdconv.stats.authors`): |ḡ| over the K = m/b
      micro-batches, the minibatch-scale noise √((1/K) Σ_j |g_j − ḡ'|²) with ḡ' from K
      micro-batches of a second, independent sample, and 10 power iterations for sharpness.

    Long format: ``n_samples, quantity, estimator, value, se`` (se: jackknife, NaN for the
    sharpness; the authors' rows take the plug-in's, see :func:`_authors_rows`).
    """
    from sgdconv.stats import estimate_gradient_stats
    from sgdconv.stats.authors import authors_gradient_stats, authors_sharpness

    s = ctx.settings
    sizes = sorted({int(m) for m in sizes})
    full = ctx.sample(max(sizes))
    counts = [m // full.size for m in sizes]
    if counts[0] < 2:
        raise ValueError(f"sample size {sizes[0]} gives fewer than 2 micro-batches of {full.size}")
    reference = ctx.source.sample(full.n_samples, full.size, mix_seed("stats-reference", s.seed))
    reference.device = ctx.device
    model = ctx.set_mode(ctx.model)
    authors = authors_gradient_stats(model, ctx.loss_fn, full, reference, counts)
    rows = []
    for count in counts:
        batches = full.truncated(count)
        n = batches.n_samples
        plugin = _plugin_and_unbiased(ctx, model, batches, estimate_gradient_stats)
        rows += plugin
        rows += _authors_rows(authors[count], plugin)
        if s.sharpness:
            eig = sharpness(ctx, model, batches)
            value = authors_sharpness(
                model,
                ctx.loss_fn,
                batches,
                n_iter=AUTHORS_POWER_ITERATIONS,
                seed=mix_seed("authors-sharpness", s.seed),
            )
            rows += [
                (n, "sharpness", "plugin", eig.value, math.nan),
                (n, "sharpness", "authors", value, math.nan),
            ]
        logger.info("sample size %d done", n)
    frame = pd.DataFrame(rows, columns=SWEEP_COLUMNS)
    return frame.astype({"n_samples": "int64"})


def _authors_rows(a, plugin: list[tuple]) -> list[tuple]:
    """The authors' |ḡ| and noise at one size. Their |ḡ| is the plug-in |ḡ| of the same
    micro-batches, so it takes the plug-in's jackknife SE; their noise takes the relative SE of
    the plug-in σ (the same spread of micro-batch gradients, against another centre)."""
    by_key = {(q, e): (v, se) for _, q, e, v, se in plugin}
    n = plugin[0][0]
    sigma, sigma_se = by_key["noise_norm", "plugin"]
    relative = sigma_se / sigma if sigma > 0 else math.nan
    return [
        (n, "grad_norm", "authors", a.grad_norm, by_key["grad_norm", "plugin"][1]),
        (n, "noise_norm", "authors", a.noise_norm, a.noise_norm * relative),
    ]


def _plugin_and_unbiased(ctx, model, batches, estimate) -> list[tuple]:
    """The plug-in and unbiased rows of one sample size (one gradient pass)."""
    n = batches.n_samples
    big_n = population_size(ctx.source, n)
    # One pass gives both: the plug-in |ḡ| and the unbiased population estimates; the
    # sample's own σ_S² = (m − 1)/m ŝ², where ŝ² = noise_norm_sq · N/(N − 1).
    st = estimate(model, ctx.loss_fn, batches, population_size=big_n)
    if big_n is None:  # the sample is the population: noise_norm is already σ_S
        sigma_sample = st.noise_norm
    else:
        s2 = st.noise_norm_sq if math.isinf(big_n) else st.noise_norm_sq * big_n / (big_n - 1)
        sigma_sample = math.sqrt(max(s2 * (n - 1) / n, 0.0))
    return [
        (n, "loss", "plugin", st.loss, st.loss_se),
        (n, "grad_norm", "plugin", st.grad_norm_plugin, st.grad_norm_se),
        (n, "noise_norm", "plugin", sigma_sample, st.noise_norm_se),
        (n, "grad_norm", "unbiased", st.grad_norm, st.grad_norm_se),
        (n, "grad_norm_sq", "unbiased", st.grad_norm_sq, st.grad_norm_sq_se),
        (n, "noise_norm", "unbiased", st.noise_norm, st.noise_norm_se),
    ]


# --- aggregation ----------------------------------------------------------------------------

#: Columns of ``runs/<id>/stats.parquet``: the DESIGN.md contract first, then extras.
