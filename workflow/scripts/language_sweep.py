"""Rule language_sweep: Fig. 8, the estimates at one checkpoint of a language-model run against
the sample size in tokens (plug-in, unbiased and the authors' estimator)."""

import pandas as pd
import torch  # noqa: F401  (imported before rule_logging, which fixes its threads)

from sgdconv.stats.lm_checkpoint import SWEEP_COLUMNS, lm_sample_size_sweep, open_lm_checkpoints
from sgdconv.workflow import rule_logging

with rule_logging(snakemake) as logger:
    columns = [*SWEEP_COLUMNS, "step", "epoch", "run_id", "status"]
    table = pd.DataFrame(columns=columns)
    for ctx in open_lm_checkpoints(
        snakemake.input.manifest, [snakemake.params.checkpoint], snakemake.params.settings
    ):
        table = lm_sample_size_sweep(ctx)
        table["step"], table["epoch"] = ctx.step, ctx.epoch
        table["run_id"], table["status"] = ctx.spec.run_id, ctx.status
        logger.info("%s step %d: %d rows", ctx.spec.run_id, ctx.step, len(table))
    table[columns].to_parquet(snakemake.output[0], index=False)
