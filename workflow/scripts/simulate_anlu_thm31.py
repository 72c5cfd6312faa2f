"""Rule simulate_anlu_thm31: Monte-Carlo SGD with machine-learning noise (An & Lu, Theorem 3.1)."""

import torch  # noqa: F401  (imported first so rule_logging fixes its thread count)

from sgdconv.anlu.thm31 import simulate_thm31
from sgdconv.workflow import rule_logging

with rule_logging(snakemake) as logger:
    tables = simulate_thm31(snakemake.params.settings, snakemake.params.seeds, progress=True)
    for name, table in tables.items():
        table.to_parquet(snakemake.output[name], index=False)
        logger.info("wrote %d rows to %s", len(table), snakemake.output[name])
    logger.info("conditions:\n%s", tables["conditions"].to_string())
