"""Rule estimate_stats: the statistics of eq. (1) (and sharpness, validation, Thm. 4.3's
one-step loss change) at the checkpoints of one job of a run, one table per checkpoint (empty
where the run diverged before it), resuming after a kill (sgdconv.stats.jobs)."""

import torch  # noqa: F401  (imported before rule_logging, which fixes its threads)

from sgdconv.stats.jobs import estimate_stats_job
from sgdconv.workflow import rule_logging

with rule_logging(snakemake) as logger:
    table = estimate_stats_job(
        snakemake.input.manifest,
        snakemake.params.settings,
        snakemake.params.steps,
        snakemake.params.checkpoints,
        snakemake.params.tables,
        snakemake.output[0],
    )
    logger.info("%d checkpoints, %d with statistics", len(snakemake.params.steps), len(table))
