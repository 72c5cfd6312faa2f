"""Plumbing shared by the thin rule scripts in ``workflow/scripts/``: logging to the rule's
``log:`` file, reading named tidy tables, and fixing PyTorch's thread count and determinism."""

from __future__ import annotations

import contextlib
import datetime
import io
import logging
import os
import re
import socket
import sys
from collections.abc import Iterator, Mapping
from typing import IO, Any

import pandas as pd


@contextlib.contextmanager
def rule_logging(smk: Any) -> Iterator[logging.Logger]:
    """Send logging, warnings and stderr (tqdm progress bars) to the rule's log file.

    Each attempt of the job starts with a line ``=== attempt N (time, host) ===``, and the log of
    a retried job (Snakemake's ``retries``, or a re-run after a killed or failed job) keeps every
    attempt since the job last succeeded. Snakemake deletes a job's log before each attempt (and
    does not tell a script which attempt it is), so every line is also written, as it happens, to
    a hidden sidecar (``.<log name>.attempts``), from which the next attempt restores the earlier
    ones and counts them; the sidecar is removed once the job succeeds.
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
            stream.close()
            if succeeded and log_path:
                # The log now holds every attempt; a later run of the job starts afresh.
                with contextlib.suppress(FileNotFoundError):
                    os.remove(attempts_path(log_path))


def attempts_path(log_path: str | os.PathLike[str]) -> str:
    """The sidecar that keeps a job's earlier attempts across Snakemake's deletion of its log."""
    folder, name = os.path.split(os.fspath(log_path))
    return os.path.join(folder, f".{name}.attempts")


class _Tee(io.TextIOBase):
    """A line-buffered text stream that writes to several files (the log and its sidecar)."""

    def __init__(self, *files: IO[str]) -> None:
        super().__init__()
        self._files = files

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
    """Open the log of the job's next attempt: the earlier ones restored, then its header.

    A job killed by its scheduler (no chance to clean up) has written every line to both files.
    """
    os.makedirs(os.path.dirname(log_path) or ".", exist_ok=True)
    sidecar = attempts_path(log_path)
    earlier = ""
    if os.path.exists(sidecar):
        with open(sidecar) as file:
            earlier = file.read()
    if earlier and not earlier.endswith("\n"):
        # An attempt killed mid-line (e.g. a progress bar): start the header on its own line.
        earlier += "\n"
    log = open(log_path, "w", buffering=1)
    log.write(earlier)
    history = open(sidecar, "w", buffering=1)
    history.write(earlier)
    stream = _Tee(log, history)
    attempt = 1 + len(_ATTEMPT_HEADER.findall(earlier))
    when = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    stream.write(f"=== attempt {attempt} ({when}, {socket.gethostname()}) ===\n")
    stream.flush()
    return stream


_ATTEMPT_HEADER = re.compile(r"^=== attempt \d+ \(", flags=re.MULTILINE)


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
