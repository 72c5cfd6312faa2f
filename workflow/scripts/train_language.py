"""Rule train_language: one Transformer-XL run with sgdconv.train.lm_engine (resumes from its
last checkpoint; torchrun when the spec asks for several processes)."""

import os

import torch

from sgdconv.train.lm_launch import launch_lm
from sgdconv.train.lm_spec import LMRunSpec
from sgdconv.workflow import rule_logging

with rule_logging(snakemake) as logger:
    spec = LMRunSpec.from_dict(snakemake.params.spec)
    run_dir = os.path.dirname(snakemake.output.manifest)
    logger.info("run %s (%d process(es)) in %s", spec.run_id, spec.nproc, run_dir)
    manifest = launch_lm(spec, run_dir, threads=torch.get_num_threads())
    logger.info(
        "run %s %s: %d steps, %d checkpoints, %.1f s",
        spec.run_id,
        manifest["status"],
        manifest["total_steps"],
        len(manifest["checkpoints"]),
        manifest["wall_time_s"],
    )
