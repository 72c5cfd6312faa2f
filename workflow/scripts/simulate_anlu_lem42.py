"""Rule simulate_anlu_lem42: E F(θ_k) under bounded noise against k^(−q) (An & Lu, Lemma 4.2)."""

import torch  # noqa: F401  (imported first so rule_logging fixes its thread count)

from sgdconv.anlu.bounded import simulate_lem42
from sgdconv.workflow import rule_logging

with rule_logging(snakemake) as logger:
    tables = simulate_lem42(snakemake.params.settings, snakemake.params.seeds, progress=True)
    for name, table in tables.items():
        table.to_parquet(snakemake.output[name], index=False)
        logger.info("wrote %d rows to %s", len(table), snakemake.output[name])
    logger.info("conditions:\n%s", tables["conditions"].to_string())
