"""Rule estimator_vs_sample_size: the statistics at one checkpoint of a run on nested samples
of increasing size, the paper's plug-in estimator against the unbiased one (Fig. 7); an empty
table where the run diverged before that checkpoint."""

import json

import pandas as pd
import torch  # noqa: F401  (imported before rule_logging, which fixes its threads)

from sgdconv.train.spec import RunSpec
from sgdconv.train.statistics import (
    SWEEP_COLUMNS,
    CheckpointContext,
    StatsSettings,
    checkpoint_exists,
    sample_size_sweep,
)
from sgdconv.workflow import rule_logging

with rule_logging(snakemake) as logger:
    with open(snakemake.input.manifest) as fh:
        manifest = json.load(fh)
    spec = RunSpec.from_dict(manifest["spec"])
    columns = [*SWEEP_COLUMNS, "step", "epoch", "run_id", "status"]
    if checkpoint_exists(manifest, snakemake.params.checkpoint):
        settings = StatsSettings.from_dict(snakemake.params.settings)
        ctx = CheckpointContext(spec, snakemake.params.checkpoint, settings, device=spec.device)
        table = sample_size_sweep(ctx, settings.sweep_sizes)
        table["step"] = ctx.step
        table["epoch"] = ctx.epoch
        table["run_id"] = spec.run_id
        table["status"] = manifest["status"]
        logger.info("%s step %d: %d rows", spec.run_id, ctx.step, len(table))
    else:
        table = pd.DataFrame(columns=columns)
        logger.info("%s diverged before %s: no sweep", spec.run_id, snakemake.params.checkpoint)
    table[columns].to_parquet(snakemake.output[0], index=False)
