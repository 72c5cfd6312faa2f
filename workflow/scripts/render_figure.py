"""Rule figure_<artifact>: execute the artifact's notebook with papermill.

The notebook's `parameters` cell receives the paths of its tidy tables (``tables``), where to
save the figure (``png``, ``pdf``), the tier name and the artifact's settings.
"""

import papermill

from sgdconv.workflow import rule_logging

with rule_logging(snakemake) as logger:
    parameters = {
        "tables": {name: snakemake.input[name] for name in snakemake.params.tables},
        "png": snakemake.output.png,
        "pdf": snakemake.output.pdf,
        "tier": snakemake.params.tier,
        "settings": dict(snakemake.params.settings),
    }
    logger.info("executing %s with %s", snakemake.input.notebook, parameters)
    papermill.execute_notebook(
        snakemake.input.notebook,
        snakemake.output.notebook,
        parameters=parameters,
        kernel_name="python3",
        progress_bar=False,
        log_output=False,
        cwd=None,
    )
