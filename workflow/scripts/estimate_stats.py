"""Rule estimate_stats: the statistics of eq. (1) (and sharpness, validation, Thm. 4.3's
one-step loss change) at one checkpoint of a run; an empty table where the run diverged before
that checkpoint."""

import pandas as pd
import torch  # noqa: F401  (imported before rule_logging, which fixes its threads)

from sgdconv.stats.checkpoint_context import open_checkpoint
from sgdconv.stats.checkpoint_stats import checkpoint_statistics
from sgdconv.workflow import rule_logging

with rule_logging(snakemake) as logger:
    manifest, ctx = open_checkpoint(
        snakemake.input.manifest, snakemake.params.checkpoint, snakemake.params.settings
    )
    if ctx is None:
        table = pd.DataFrame({"step": pd.Series(dtype="int64")})
        logger.info("%s diverged before %s", manifest["run_id"], snakemake.params.checkpoint)
    else:
        table = pd.DataFrame([checkpoint_statistics(ctx)])
        logger.info("%s step %d: %s", manifest["run_id"], ctx.step, table.iloc[0].to_dict())
    table.to_parquet(snakemake.output[0], index=False)
