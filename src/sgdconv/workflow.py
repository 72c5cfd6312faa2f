"""Plumbing shared by the thin rule scripts in ``workflow/scripts/``: logging to the rule's
``log:`` file, reading named tidy tables, and fixing PyTorch's thread count and determinism."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator, Mapping
from typing import Any

import pandas as pd


@contextlib.contextmanager
def rule_logging(smk: Any) -> Iterator[logging.Logger]:
    """Send logging, warnings and stderr (tqdm progress bars) to the rule's log file.

    Exceptions are logged with their traceback before they propagate, so the log explains
    a failed job. Also fixes PyTorch's intra-op threads to ``config.compute.torch_threads``.
    """
    log_path = smk.log[0] if len(smk.log) else None
    logger = logging.getLogger(f"sgdconv.rule.{smk.rule}")
    logger.setLevel(logging.INFO)
    handler: logging.Handler
    stream = None
    if log_path:
        os.makedirs(os.path.dirname(log_path) or ".", exist_ok=True)
        stream = open(log_path, "w", buffering=1)
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
    try:
        yield logger
    except BaseException:
        logger.exception("rule %s failed", smk.rule)
        raise
    finally:
        sys.stderr = old_stderr
        root.removeHandler(handler)
        if stream is not None:
            stream.close()


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
