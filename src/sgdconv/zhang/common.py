"""Small helpers shared by the Zhang claim modules: the paper key, divergence notes, notes."""

from __future__ import annotations

import pandas as pd

PAPER = "zhang"


def diverged(frame: pd.DataFrame) -> bool:
    """Whether the table's run diverged (its tables then hold only its finite checkpoints)."""
    return "status" in frame and bool((frame["status"] == "diverged").any())


def status_note(frame: pd.DataFrame, name: str = "the run") -> str:
    if diverged(frame):
        return f"{name} diverged (NaN/inf loss); only its finite checkpoints are used"
    return ""


def join(*notes: str) -> str:
    return "; ".join(n for n in notes if n)
