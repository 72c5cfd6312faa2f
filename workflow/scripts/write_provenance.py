"""Rule provenance: git commit, package versions, config hash and machine of this tier's run."""

import json

from sgdconv.provenance import provenance
from sgdconv.workflow import rule_logging

with rule_logging(snakemake):
    record = provenance(snakemake.config)
    with open(snakemake.output[0], "w") as fh:
        json.dump(record, fh, indent=2, sort_keys=True, default=str)
