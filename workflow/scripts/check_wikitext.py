"""Rule check_wikitext103: WikiText-103 is where the config says (else an error naming the key)."""

import json

from sgdconv.workflow import rule_logging
from sgdconv.zhang.language import check_wikitext_layout

with rule_logging(snakemake) as logger:
    sizes = check_wikitext_layout(snakemake.params.root, snakemake.params.key)
    with open(snakemake.output[0], "w") as fh:
        json.dump({"root": snakemake.params.root, "bytes": sizes}, fh, indent=1)
    logger.info("WikiText-103 at %s: %s", snakemake.params.root, sizes)
