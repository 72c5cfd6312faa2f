"""Rule claims_<artifact>: evaluate the artifact's claim function on its tidy tables."""

from sgdconv.claims import evaluate
from sgdconv.registry import import_object
from sgdconv.workflow import read_tables, rule_logging

with rule_logging(snakemake) as logger:
    tables = read_tables({name: snakemake.input[name] for name in snakemake.params.tables})
    claim_function = import_object(snakemake.params.claims)
    frame = evaluate(
        snakemake.params.artifact_id, claim_function, tables, dict(snakemake.params.params)
    )
    frame.to_csv(snakemake.output[0], index=False)
    for row in frame.itertuples():
        logger.info("%s: value=%s holds=%s %s", row.claim_id, row.value, row.holds, row.note)
