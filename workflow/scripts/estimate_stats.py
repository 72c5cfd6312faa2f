"""Rule estimate_stats: the statistics of eq. (1) (and sharpness, validation, Thm. 4.3's
one-step loss change) at one checkpoint of a run; an empty table where the run diverged before
that checkpoint."""

import json

import pandas as pd
import torch  # noqa: F401  (imported before rule_logging, which fixes its threads)

from sgdconv.train.spec import RunSpec
from sgdconv.train.statistics import (
    CheckpointContext,
    StatsSettings,
    checkpoint_exists,
    checkpoint_statistics,
)
from sgdconv.workflow import rule_logging

with rule_logging(snakemake) as logger:
    with open(snakemake.input.manifest) as fh:
        manifest = json.load(fh)
    spec = RunSpec.from_dict(manifest["spec"])
    if checkpoint_exists(manifest, snakemake.params.checkpoint):
        settings = StatsSettings.from_dict(snakemake.params.settings)
        ctx = CheckpointContext(spec, snakemake.params.checkpoint, settings, device=spec.device)
        row = checkpoint_statistics(ctx)
        pd.DataFrame([row]).to_parquet(snakemake.output[0], index=False)
        logger.info("%s step %d: %s", spec.run_id, ctx.step, row)
    else:
        pd.DataFrame({"step": pd.Series(dtype="int64")}).to_parquet(snakemake.output[0])
        logger.info(
            "%s diverged before %s: no statistics", spec.run_id, snakemake.params.checkpoint
        )
