"""Rule train: one training run with the engine of sgdconv.train (resumes from its last
checkpoint; torchrun when the spec asks for several processes)."""

import os

import torch

from sgdconv.train.launch import launch
from sgdconv.train.spec import RunSpec
from sgdconv.workflow import rule_logging

with rule_logging(snakemake) as logger:
    spec = RunSpec.from_dict(snakemake.params.spec)
    run_dir = os.path.dirname(snakemake.output.manifest)
    logger.info("run %s (%d process(es)) in %s", spec.run_id, spec.nproc, run_dir)
    manifest = launch(spec, run_dir, threads=torch.get_num_threads())
    logger.info(
        "run %s %s: %d steps, %d checkpoints, %.1f s",
        spec.run_id,
        manifest["status"],
        manifest["total_steps"],
        len(manifest["checkpoints"]),
        manifest["wall_time_s"],
    )
