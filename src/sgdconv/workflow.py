"""Plumbing shared by the thin rule scripts in ``workflow/scripts/``: logging to the rule's
``log:`` file, reading named tidy tables, and fixing PyTorch's thread count and determinism."""

from __future__ import annotations

import contextlib
import datetime
import functools
import io
import logging
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping
from typing import IO, Any

import pandas as pd


@contextlib.contextmanager
def rule_logging(smk: Any) -> Iterator[logging.Logger]:
    """Send logging, warnings and stderr (tqdm progress bars) to the rule's log file.

    Each attempt of the job starts with ``=== attempt N (time, host[, SLURM job id]) ===`` and,
    when its script completes, ends with ``=== attempt N finished ===``. The log of a retried job
    (Snakemake's ``retries``, or a re-run after a killed or failed job) keeps every attempt since
    the job last succeeded. Snakemake deletes a job's log before each attempt and does not tell
    a script which attempt it is, so every line is also written, as it happens, to a hidden
    sidecar (``.<log name>.attempts``), from which the next attempt restores the earlier ones
    and counts them: all of them after an attempt that did not finish (an exception, or killed
    by its scheduler); after one that finished, only when in the same SLURM run (its job failed
    after the script, e.g. cancelled while Snakemake checked its outputs), else none (a new run
    of the job).
    Exceptions are logged with their traceback before they propagate, so the log explains
    a failed job. Also fixes PyTorch's intra-op threads to ``config.compute.torch_threads``.
    """
    log_path = smk.log[0] if len(smk.log) else None
    logger = logging.getLogger(f"sgdconv.rule.{smk.rule}")
    logger.setLevel(logging.INFO)
    handler: logging.Handler
    stream: _Tee | None = None
    if log_path:
        stream = _open_attempt_log(log_path)
        handler = logging.StreamHandler(stream)
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.captureWarnings(True)
    threads = _config_threads(smk)
    if threads is not None:
        set_torch_threads(threads)
    old_stderr = sys.stderr
    if stream is not None:
        sys.stderr = stream
    succeeded = False
    try:
        yield logger
        succeeded = True
    except BaseException:
        logger.exception("rule %s failed", smk.rule)
        raise
    finally:
        sys.stderr = old_stderr
        root.removeHandler(handler)
        if stream is not None:
            if succeeded:
                run = _slurm_run()
                stream.write(f"=== attempt {stream.attempt} finished{_in_run(run)} ===\n")
            stream.close()


def attempts_path(log_path: str | os.PathLike[str]) -> str:
    """The sidecar that mirrors a job's log, so that its attempts survive Snakemake deleting it."""
    folder, name = os.path.split(os.fspath(log_path))
    return os.path.join(folder, f".{name}.attempts")


class _Tee(io.TextIOBase):
    """A line-buffered text stream that writes to several files (the log and its sidecar)."""

    def __init__(self, *files: IO[str], attempt: int = 1) -> None:
        super().__init__()
        self._files = files
        self.attempt = attempt

    def writable(self) -> bool:
        return True

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self._files[0].encoding

    def fileno(self) -> int:
        # Code that writes to the descriptor (faulthandler, subprocesses) reaches the log only.
        return self._files[0].fileno()

    def write(self, text: str) -> int:
        for file in self._files:
            file.write(text)
        return len(text)

    def flush(self) -> None:
        for file in self._files:
            file.flush()

    def close(self) -> None:
        if self.closed:
            return
        super().close()  # flushes
        for file in self._files:
            file.close()


def _open_attempt_log(log_path: str) -> _Tee:
    """Open the log of the job's next attempt: the earlier ones restored, then its header."""
    os.makedirs(os.path.dirname(log_path) or ".", exist_ok=True)
    sidecar = attempts_path(log_path)
    earlier = ""
    if os.path.exists(sidecar):
        with open(sidecar) as file:
            earlier = file.read()
    finished = _FINISHED.search(earlier.rstrip("\n").rpartition("\n")[2])
    if finished and (finished["run"] is None or finished["run"] != _slurm_run()):
        earlier = ""  # the job's last attempt succeeded: this is a new run of it
    if earlier and not earlier.endswith("\n"):
        # An attempt killed mid-line (e.g. a progress bar): start the header on its own line.
        earlier += "\n"
    attempt = 1 + len(_HEADER.findall(earlier))
    log = open(log_path, "w", buffering=1)
    log.write(earlier)
    history = open(sidecar, "w", buffering=1)
    history.write(earlier)
    stream = _Tee(log, history, attempt=attempt)
    when = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    job = os.environ.get("SLURM_JOB_ID")
    where = f"{socket.gethostname()}, SLURM job {job}" if job else socket.gethostname()
    stream.write(f"=== attempt {attempt} ({when}, {where}) ===\n")
    stream.flush()
    return stream


def _in_run(run: str | None) -> str:
    return f" in SLURM run {run}" if run else ""


@functools.cache
def _slurm_run() -> str | None:
    """The name of this SLURM job: Snakemake's SLURM executor names every job of a run by the run's
    ID (inside the job step SLURM_JOB_NAME is srun's, so ask squeue). None outside SLURM."""
    job = os.environ.get("SLURM_JOB_ID")
    if not job:
        return None
    try:
        result = subprocess.run(
            ["squeue", "--noheader", "--jobs", job, "--format", "%j"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    name = result.stdout.strip()
    return name if result.returncode == 0 and name and " " not in name else None


_HEADER = re.compile(r"^=== attempt \d+ \(", flags=re.MULTILINE)
_FINISHED = re.compile(r"^=== attempt \d+ finished(?: in SLURM run (?P<run>\S+))? ===$")


def _config_threads(smk: Any) -> int | None:
    config = getattr(smk, "config", None) or {}
    return config.get("compute", {}).get("torch_threads")


def set_torch_threads(threads: int) -> None:
    """Fix PyTorch's thread count (results depend on it through reduction order).

    Only where the script already imported torch: the toy rules never pay for importing it.
    """
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(int(threads))


def read_tables(named_paths: Mapping[str, str]) -> dict[str, pd.DataFrame]:
    """Read each named parquet input into a data frame."""
    return {name: pd.read_parquet(path) for name, path in named_paths.items()}
