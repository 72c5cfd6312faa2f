"""Rule estimator_vs_sample_size: the statistics at one checkpoint of a run on nested samples
of increasing size, the paper's plug-in estimator against the unbiased one (Fig. 7); an empty
table where the run diverged before that checkpoint."""

import pandas as pd
import torch  # noqa: F401  (imported before rule_logging, which fixes its threads)

from sgdconv.stats.checkpoint_context import open_checkpoint
from sgdconv.stats.sweep import SWEEP_COLUMNS, sample_size_sweep
from sgdconv.workflow import rule_logging

with rule_logging(snakemake) as logger:
    manifest, ctx = open_checkpoint(
        snakemake.input.manifest, snakemake.params.checkpoint, snakemake.params.settings
    )
    columns = [*SWEEP_COLUMNS, "step", "epoch", "run_id", "status"]
    if ctx is None:
        table = pd.DataFrame(columns=columns)
        logger.info("%s diverged before %s", manifest["run_id"], snakemake.params.checkpoint)
    else:
        table = sample_size_sweep(ctx, ctx.settings.sweep_sizes)
        table["step"], table["epoch"] = ctx.step, ctx.epoch
        table["run_id"], table["status"] = manifest["run_id"], manifest["status"]
        logger.info("%s step %d: %d rows", manifest["run_id"], ctx.step, len(table))
    table[columns].to_parquet(snakemake.output[0], index=False)
