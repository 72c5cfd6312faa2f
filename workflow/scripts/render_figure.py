"""Rule figure_<artifact>: convert the artifact's py:percent source with jupytext and execute it
with papermill.

The notebook's `parameters` cell receives the paths of its tidy tables (``tables``), where to
save the figure (``png``, ``pdf``), the tier name and the artifact's ``params``.
"""

import jupytext
import papermill

from sgdconv.workflow import rule_logging

with rule_logging(snakemake) as logger:
    parameters = {
        "tables": {name: snakemake.input[name] for name in snakemake.params.tables},
        "png": snakemake.output.png,
        "pdf": snakemake.output.pdf,
        "tier": snakemake.params.tier,
        "params": dict(snakemake.params.params),
    }
    logger.info("executing %s with %s", snakemake.input.notebook, parameters)
    notebook = jupytext.read(snakemake.input.notebook)
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    papermill.execute_notebook(
        notebook,
        snakemake.output.notebook,
        parameters=parameters,
        kernel_name="python3",
        progress_bar=False,
        log_output=False,
        cwd=None,
    )
