"""Rule simulate_zhang_fig4: the GD trajectories of Fig. 4 as a tidy table."""

from sgdconv.workflow import rule_logging
from sgdconv.zhang.sine import simulate

with rule_logging(snakemake) as logger:
    s = snakemake.params.settings
    table = simulate(s["theta0"], s["lrs"], s["steps"], s["amplitude"])
    table.to_parquet(snakemake.output[0], index=False)
    logger.info("wrote %d rows to %s", len(table), snakemake.output[0])
