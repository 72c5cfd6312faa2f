"""Rule language_stats: the statistics of eq. (1), the sharpness and the validation loss at some
checkpoints of a language-model run; no row where the run diverged before a checkpoint."""

import pandas as pd
import torch  # noqa: F401  (imported before rule_logging, which fixes its threads)

from sgdconv.stats.lm_checkpoint import lm_checkpoint_statistics, open_lm_checkpoints
from sgdconv.workflow import rule_logging

with rule_logging(snakemake) as logger:
    rows = []
    for ctx in open_lm_checkpoints(
        snakemake.input.manifest, snakemake.params.checkpoints, snakemake.params.settings
    ):
        rows.append(lm_checkpoint_statistics(ctx))
        logger.info("%s step %d: %s", ctx.spec.run_id, ctx.step, rows[-1])
    table = pd.DataFrame(rows) if rows else pd.DataFrame({"step": pd.Series(dtype="int64")})
    table.to_parquet(snakemake.output[0], index=False)
