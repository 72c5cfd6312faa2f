"""Rule estimator_vs_sample_size: the statistics at a run's final checkpoint on nested samples
of increasing size, the paper's plug-in estimator against the unbiased one (Fig. 7)."""

import json

import torch  # noqa: F401  (imported before rule_logging, which fixes its threads)

from sgdconv.train.spec import RunSpec
from sgdconv.train.statistics import CheckpointContext, StatsSettings, sample_size_sweep
from sgdconv.workflow import rule_logging

with rule_logging(snakemake) as logger:
    with open(snakemake.input.manifest) as fh:
        manifest = json.load(fh)
    spec = RunSpec.from_dict(manifest["spec"])
    settings = StatsSettings.from_dict(snakemake.params.settings)
    ctx = CheckpointContext(spec, snakemake.input.checkpoint, settings, device=spec.device)
    table = sample_size_sweep(ctx, settings.sweep_sizes)
    table["step"] = ctx.step
    table["epoch"] = ctx.epoch
    table["run_id"] = spec.run_id
    table["status"] = manifest["status"]
    table.to_parquet(snakemake.output[0], index=False)
    logger.info("%s step %d: %d rows", spec.run_id, ctx.step, len(table))
