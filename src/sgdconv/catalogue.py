"""The catalogue of artifacts and claims, read from ``docs/ARTIFACTS.md``.

The document is the single list of artifact and claim ids: each artifact is one row of a table
whose first cell is its backticked id, and whose cells name its rule, the ``src`` function that
computes its tables, its notebook source, its claim function and its claims. The tests read the
ids from here instead of repeating them, and check that every name resolves.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

COLUMNS = ("artifact", "paper item", "rule", "computed by", "notebook", "claim function", "claims")


@dataclass(frozen=True)
class Entry:
    """One artifact of the catalogue (names as written in the document, without backticks)."""

    artifact_id: str
    paper: str
    paper_item: str
    rule: str
    computed_by: str
    notebook: str
    claim_function: str
    claim_ids: tuple[str, ...]


def _ticked(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def _cells(line: str) -> list[str]:
    # a table row; "\|" inside a cell is an escaped pipe, not a separator
    return [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]


def read_catalogue(path: str | Path) -> dict[str, Entry]:
    """The artifacts of the catalogue at ``path``, by id, in document order."""
    entries: dict[str, Entry] = {}
    header: list[str] | None = None
    for line in Path(path).read_text().splitlines():
        if not line.startswith("|"):
            header = None
            continue
        cells = _cells(line)
        if header is None:
            header = [c.lower() for c in cells]
            continue
        if set(cells) <= {"---", ""} or tuple(header) != COLUMNS:
            continue
        row = dict(zip(header, cells, strict=True))
        (artifact_id,) = _ticked(row["artifact"])
        if artifact_id in entries:
            raise ValueError(f"{path}: artifact {artifact_id} is listed twice")
        (rule,) = _ticked(row["rule"])
        entries[artifact_id] = Entry(
            artifact_id=artifact_id,
            paper=artifact_id.split("_", 1)[0],
            paper_item=row["paper item"],
            rule=rule,
            computed_by=_ticked(row["computed by"])[0],
            notebook=_ticked(row["notebook"])[0],
            claim_function=_ticked(row["claim function"])[0],
            claim_ids=tuple(_ticked(row["claims"])),
        )
    return entries


def claim_ids(entries: dict[str, Entry]) -> set[str]:
    """Every claim id of the catalogue."""
    return {claim for entry in entries.values() for claim in entry.claim_ids}
