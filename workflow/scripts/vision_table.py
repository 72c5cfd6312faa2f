"""Rules zhang_thm43_table / zhang_eq10_table: derived tables of the constant-lr runs."""

import pandas as pd

from sgdconv.workflow import rule_logging
from sgdconv.zhang.tables import eq10_table, thm43_table

with rule_logging(snakemake) as logger:
    runs = snakemake.params.runs
    stats = {run["run_id"]: pd.read_parquet(snakemake.input[run["name"]]) for run in runs}
    lrs = {run["run_id"]: run["lr"] for run in runs}
    build = {"thm43": thm43_table, "eq10": eq10_table}[snakemake.params.kind]
    table = build(stats, lrs)
    table.to_parquet(snakemake.output[0], index=False)
    logger.info("wrote %d rows to %s", len(table), snakemake.output[0])
