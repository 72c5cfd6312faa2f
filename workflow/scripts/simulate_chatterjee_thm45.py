"""Rule simulate_chatterjee_thm45: LeCun-initialized seeds, converging fraction and cost vs n."""

import torch  # noqa: F401  (imported first so rule_logging fixes its thread count)

from sgdconv.chatterjee.lecun import simulate_thm45
from sgdconv.workflow import rule_logging

with rule_logging(snakemake) as logger:
    tables = simulate_thm45(snakemake.params.settings, snakemake.params.seed)
    for name, table in tables.items():
        table.to_parquet(snakemake.output[name], index=False)
        logger.info("wrote %d rows to %s", len(table), snakemake.output[name])
    for row in tables["fractions"].itertuples():
        logger.info(
            "d/n=%g n=%d d=%d: %d/%d converged (CI %.3f-%.3f), median %s iterations",
            row.d_over_n,
            row.n,
            row.d,
            row.converged,
            row.seeds,
            row.ci_low,
            row.ci_high,
            row.median_iterations,
        )
