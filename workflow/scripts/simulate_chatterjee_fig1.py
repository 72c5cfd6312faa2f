"""Rule simulate_chatterjee_fig1: GD with Theorem 2.2's step from a grid of starts, and the
trajectories drawn in Fig. 1, as tidy tables."""

from sgdconv.chatterjee.xy_tables import fig1_grid_table, fig1_paths_table
from sgdconv.workflow import rule_logging

with rule_logging(snakemake) as logger:
    s = snakemake.params.settings
    grid = fig1_grid_table(s["limit"], s["half_points"], s["f_tol"], s["max_steps"])
    grid.to_parquet(snakemake.output.grid, index=False)
    logger.info(
        "grid: %d starts, %d inside (3.2), max GD steps %d; wrote %s",
        len(grid),
        grid["inside"].sum(),
        grid["steps"].max(),
        snakemake.output.grid,
    )
    paths = fig1_paths_table(s["paths"], s["outside_lr"], s["f_tol"], s["path_max_steps"])
    paths.to_parquet(snakemake.output.paths, index=False)
    logger.info("paths: %d rows; wrote %s", len(paths), snakemake.output.paths)
