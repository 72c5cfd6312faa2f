"""Rule simulate_anlu_thm41: rotated bounded noise, Robbins–Monro steps (An & Lu, Theorem 4.1)."""

import torch  # noqa: F401  (imported first so rule_logging fixes its thread count)

from sgdconv.anlu.bounded import simulate_thm41
from sgdconv.workflow import rule_logging

with rule_logging(snakemake) as logger:
    tables = simulate_thm41(snakemake.params.settings, snakemake.params.seeds, progress=True)
    for name, table in tables.items():
        table.to_parquet(snakemake.output[name], index=False)
        logger.info("wrote %d rows to %s", len(table), snakemake.output[name])
    logger.info("conditions:\n%s", tables["conditions"].to_string())
