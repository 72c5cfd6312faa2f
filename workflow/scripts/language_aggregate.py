"""Rule language_aggregate: a language-model run's per-checkpoint statistics and its train log
(eq. (2)) as runs/<id>/stats.parquet."""

import json

import pandas as pd

from sgdconv.stats.lm_checkpoint import aggregate_lm_statistics
from sgdconv.workflow import rule_logging

with rule_logging(snakemake) as logger:
    with open(snakemake.input.manifest) as fh:
        manifest = json.load(fh)
    rows = [pd.read_parquet(path) for path in snakemake.input.stats]
    log = pd.read_parquet(snakemake.input.train_log)
    table = aggregate_lm_statistics(rows, log, manifest)
    table.to_parquet(snakemake.output[0], index=False)
    logger.info("%s (%s): %d checkpoints", manifest["run_id"], manifest["status"], len(table))
