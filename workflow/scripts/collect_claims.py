"""Rule collect_claims: all artifacts' claims in one csv, and readable as Markdown and as the
HTML page the report shows."""

import pandas as pd

from sgdconv.claims import read_claims, to_html, to_markdown
from sgdconv.workflow import rule_logging

with rule_logging(snakemake) as logger:
    frame = pd.concat([read_claims(path) for path in snakemake.input], ignore_index=True)
    frame.to_csv(snakemake.output.csv, index=False)
    with open(snakemake.output.md, "w") as fh:
        fh.write(to_markdown(frame, title=f"Claims ({snakemake.params.tier} tier)"))
    with open(snakemake.output.html, "w") as fh:
        fh.write(to_html(frame, title=f"Claims ({snakemake.params.tier} tier)"))
    logger.info("%d claims, %d hold", len(frame), int((frame["holds"] == True).sum()))  # noqa: E712
