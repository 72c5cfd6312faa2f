"""Rewrite the missing or corrupt checkpoints of a finished run:
``python -m sgdconv.train.repair results/<tier>/runs/<run_id> [--threads N]``.

A run's checkpoints are written by the engine, not declared to snakemake (so that snakemake
never deletes them), and its ``train`` job is done once ``manifest.json`` exists: when a
checkpoint is later deleted or damaged, re-running snakemake does not bring it back, and the
statistics job of that checkpoint fails with a message pointing here. This command replays the
run from the last good checkpoint before each bad one (:mod:`sgdconv.train.resume`), with the
number of PyTorch threads the run was trained with, and writes only the bad checkpoints (and
their log parts): on CPU they come back bit-identical, and ``manifest.json``,
``train_log.parquet`` and the good checkpoints are left as they are, so snakemake then re-runs
only the jobs that failed.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import torch

from sgdconv.train.launch import launch
from sgdconv.train.resume import plan_resume
from sgdconv.train.spec import RunSpec, checkpoint_steps

logger = logging.getLogger(__name__)


def repair_run(
    run_dir: str | os.PathLike, *, threads: int | None = None, progress: bool = True
) -> dict[str, Any]:
    """Rewrite the missing or corrupt checkpoints of the finished run in ``run_dir``; return
    ``{"run_id", "rewritten": [steps], "restart": step or None}`` (with several processes,
    ``rewritten`` and ``restart`` are None: the workers' logs say what they rewrote).

    ``threads``: PyTorch intra-op threads (default: those the run was trained with, from its
    manifest). Raises ``RuntimeError`` when a checkpoint is still bad afterwards.
    """
    run_dir = Path(run_dir)
    manifest_path = run_dir / "manifest.json"
    if not manifest_path.is_file():
        raise FileNotFoundError(
            f"{manifest_path} is missing: the run has not finished; its `train` job resumes it"
        )
    manifest = json.loads(manifest_path.read_text())
    spec = RunSpec.from_dict(manifest["spec"])
    wanted = [c["step"] for c in manifest["checkpoints"]]
    threads = int(threads or manifest.get("torch_threads") or 1)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        result = launch(spec, run_dir, threads=threads, progress=progress, repair=True)
    finally:
        torch.set_num_threads(previous_threads)
    # Check what was written, as the statistics jobs will (with torchrun, also report it).
    planned = checkpoint_steps(spec, int(manifest["steps_per_epoch"]))
    after = plan_resume(run_dir, planned, wanted)
    if after.rewrite:
        raise RuntimeError(f"run {spec.run_id}: checkpoints {list(after.rewrite)} still bad")
    return {
        "run_id": spec.run_id,
        "rewritten": result.get("rewritten"),
        "restart": result.get("restart"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sgdconv.train.repair", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("run_dir", help="the run's folder, results/<tier>/runs/<run_id>")
    parser.add_argument("--threads", type=int, help="PyTorch threads (default: the run's)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        result = repair_run(args.run_dir, threads=args.threads)
    except (FileNotFoundError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if result["rewritten"] == []:
        print(f"run {result['run_id']}: every checkpoint verifies; nothing to repair")
    else:
        names = ", ".join(f"step_{k}.pt" for k in result["rewritten"] or ())
        print(f"run {result['run_id']}: rewrote {names or 'the bad checkpoints'}; re-run snakemake")
    return 0


if __name__ == "__main__":
    sys.exit(main())
