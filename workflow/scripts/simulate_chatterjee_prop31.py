"""Rule simulate_chatterjee_prop31: entry times of the gradient flow (3.1) into the region
(3.2) from a grid of starts and from starts next to y = −x, and a few flow paths."""

from sgdconv.chatterjee.xy_tables import prop31_paths_table, prop31_table
from sgdconv.workflow import rule_logging

with rule_logging(snakemake) as logger:
    s = snakemake.params.settings
    solver = {"method": s["method"], "rtol": s["rtol"], "atol": s["atol"]}
    starts = prop31_table(
        s["limit"],
        s["half_points"],
        s["near_line_x0"],
        s["near_line_offsets"],
        s["t_max"],
        **solver,
    )
    starts.to_parquet(snakemake.output.starts, index=False)
    logger.info(
        "starts: %d, %d entered, %d on y = -x; %d right-hand side evaluations; wrote %s",
        len(starts),
        starts["entered"].sum(),
        starts["on_antidiagonal"].sum(),
        starts["nfev"].sum(),
        snakemake.output.starts,
    )
    paths = prop31_paths_table(s["paths"], s["path_t_max"], s["path_points"], **solver)
    paths.to_parquet(snakemake.output.paths, index=False)
    logger.info("paths: %d rows; wrote %s", len(paths), snakemake.output.paths)
