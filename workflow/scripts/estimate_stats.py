"""Rule estimate_stats: the statistics of eq. (1) (and sharpness, validation, Thm. 4.3's
one-step loss change) at one checkpoint of a run."""

import json

import pandas as pd
import torch  # noqa: F401  (imported before rule_logging, which fixes its threads)

from sgdconv.train.spec import RunSpec
from sgdconv.train.statistics import CheckpointContext, StatsSettings, checkpoint_statistics
from sgdconv.workflow import rule_logging

with rule_logging(snakemake) as logger:
    with open(snakemake.input.manifest) as fh:
        spec = RunSpec.from_dict(json.load(fh)["spec"])
    settings = StatsSettings.from_dict(snakemake.params.settings)
    ctx = CheckpointContext(spec, snakemake.input.checkpoint, settings, device=spec.device)
    row = checkpoint_statistics(ctx)
    pd.DataFrame([row]).to_parquet(snakemake.output[0], index=False)
    logger.info("%s step %d: %s", spec.run_id, ctx.step, row)
