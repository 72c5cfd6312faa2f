"""Rule simulate_chatterjee_thm22: Theorem 2.2's constants per start and GD with its step."""

from sgdconv.chatterjee.xy_tables import thm22_tables
from sgdconv.workflow import rule_logging

with rule_logging(snakemake) as logger:
    s = snakemake.params.settings
    constants, trajectories = thm22_tables(s["starts"], s["max_steps"], s["bound_floor"])
    constants.to_parquet(snakemake.output.constants, index=False)
    trajectories.to_parquet(snakemake.output.trajectories, index=False)
    logger.info("constants:\n%s", constants.to_string())
    logger.info("trajectories: %d rows; wrote %s", len(trajectories), snakemake.output.trajectories)
