"""Launching a run: in this process, or over several processes with ``torchrun``.

The ``train`` rule calls :func:`launch`. With ``nproc == 1`` the run trains in the calling
process; otherwise this process starts ``torchrun --standalone --nproc_per_node=<nproc>`` on
:mod:`sgdconv.train.worker` (one process per GPU on the paper tier; gloo on CPU) and waits for
it. Either way the run directory ends with ``train_log.parquet`` and ``manifest.json``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from sgdconv.train.checkpoint import write_json
from sgdconv.train.spec import RunSpec


def torchrun_command(
    spec_file: str | os.PathLike,
    run_dir: str | os.PathLike,
    nproc: int,
    threads: int = 1,
    repair: bool = False,
) -> list[str]:
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={int(nproc)}",
        "-m",
        "sgdconv.train.worker",
        str(spec_file),
        str(run_dir),
        f"--threads={int(threads)}",
        *(["--repair"] if repair else []),
    ]


def launch(
    spec: RunSpec,
    run_dir: str | os.PathLike,
    *,
    nproc: int | None = None,
    threads: int = 1,
    progress: bool = True,
    repair: bool = False,
) -> dict[str, Any]:
    """Train ``spec`` in ``run_dir`` with ``nproc`` processes (default: ``spec.nproc``), each
    with ``threads`` intra-op threads (this process's setting when ``nproc == 1``).

    ``repair``: only rewrite the finished run's missing or corrupt checkpoints (see
    :func:`sgdconv.train.engine.train_run`); returns ``{"run_id", "rewritten", "restart"}``
    in this process, the manifest (untouched) with torchrun.
    """
    nproc = spec.nproc if nproc is None else int(nproc)
    if nproc <= 1:
        from sgdconv.train.engine import train_run

        return train_run(spec, run_dir, progress=progress, repair=repair)
    run_dir = Path(run_dir)
    spec_file = run_dir / "launch_spec.json"
    write_json(spec_file, spec.to_dict())
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    subprocess.run(
        torchrun_command(spec_file, run_dir, nproc, threads, repair),
        check=True,
        env=env,
        stdout=sys.stderr,
    )
    return json.loads((run_dir / "manifest.json").read_text())
