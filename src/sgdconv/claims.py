"""Claims: the papers' qualitative statements as checkable rows of ``tables/claims.csv``.

Each artifact of ``docs/ARTIFACTS.md`` has a claim function, ``(tables, params) -> list[Claim]``,
that lives next to the science it checks in its paper's package and is named by the artifact's
declaration in ``workflow/rules/<paper>.smk``. ``tables`` maps the
names of the artifact's tidy tables to data frames; ``params`` carries the tier's settings the
claim needs (never its threshold: thresholds are the constants of ``ARTIFACTS.md``, written
into each row so a reader sees exactly what was tested).

A claim that does not hold is reported with ``holds=False`` and a note saying why; nothing is
hidden or loosened. ``op == "report"`` rows carry a measured value and no verdict.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from html import escape
from typing import Any

import pandas as pd

COLUMNS = [
    "claim_id",
    "paper",
    "artifact_id",
    "statement",
    "metric",
    "value",
    "op",
    "threshold",
    "holds",
    "note",
]

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": lambda v, t: v < t,
    "<=": lambda v, t: v <= t,
    ">": lambda v, t: v > t,
    ">=": lambda v, t: v >= t,
    "==": lambda v, t: v == t,
}


@dataclass(frozen=True)
class Claim:
    """One row of the claims table.

    ``value`` is the measured metric; the claim holds when ``value <op> threshold``.
    """

    claim_id: str
    paper: str
    artifact_id: str
    statement: str
    metric: str
    value: float
    op: str
    threshold: float | None
    note: str = ""

    def __post_init__(self) -> None:
        if self.op != "report" and self.op not in _OPS:
            raise ValueError(f"claim {self.claim_id}: unknown op {self.op!r}")
        if self.op != "report" and self.threshold is None:
            raise ValueError(f"claim {self.claim_id}: op {self.op!r} needs a threshold")

    @property
    def holds(self) -> bool | None:
        """True/False for a checked claim, None for a reported value."""
        if self.op == "report":
            return None
        value = float(self.value)
        if math.isnan(value):
            return False
        return bool(_OPS[self.op](value, float(self.threshold)))

    def row(self) -> dict[str, Any]:
        row = asdict(self)
        row["value"] = float(self.value)
        row["holds"] = self.holds
        note = self.note
        if self.holds is False and not note:
            note = "does not hold at this tier"
        if self.op != "report" and math.isnan(float(self.value)):
            note = (note + "; " if note else "") + "metric is NaN (no data)"
        row["note"] = note
        return {c: row[c] for c in COLUMNS}


def evaluate(
    artifact_id: str,
    claim_function: Callable[..., list[Claim]],
    tables: Mapping[str, pd.DataFrame],
    params: Mapping[str, Any],
) -> pd.DataFrame:
    """Run ``claim_function`` of ``artifact_id`` and return its rows as a data frame."""
    claims = claim_function(tables, params)
    for claim in claims:
        if claim.artifact_id != artifact_id:
            raise ValueError(f"{claim.claim_id} belongs to {claim.artifact_id}, not {artifact_id}")
    return to_frame(claims)


def to_frame(claims: Iterable[Claim]) -> pd.DataFrame:
    frame = pd.DataFrame([c.row() for c in claims], columns=COLUMNS)
    frame["holds"] = frame["holds"].astype("object")
    return frame


def read_claims(path: str) -> pd.DataFrame:
    """Read one claims csv back, with ``holds`` as True/False/None."""
    frame = pd.read_csv(
        path,
        dtype={"holds": str, "note": str},
        keep_default_na=False,
        na_values={"value": ["nan", "NaN", ""], "threshold": [""]},
    )
    frame["holds"] = frame["holds"].map({"True": True, "False": False, "": None}).astype(object)
    frame["threshold"] = pd.to_numeric(frame["threshold"], errors="coerce")
    return frame


def _fmt(x: Any) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    if isinstance(x, float):
        return f"{x:.4g}"
    return str(x)


def _fmt_value(value: Any, op: str, threshold: Any) -> str:
    """The value with 4 significant digits, or as many as it takes for the printed value to
    compare with the threshold as the value itself does (9.99997e-11 is not "1e-10" < 1e-10)."""
    text = _fmt(value)
    if op in _OPS and text and not math.isnan(float(threshold)):
        exact = _OPS[op](float(value), float(threshold))
        digits = 4
        while _OPS[op](float(text), float(threshold)) != exact and digits < 17:
            digits += 2
            text = f"{float(value):.{digits}g}"
    return text


def _cell(text: Any) -> str:
    """Table-cell text: pipes escaped so they do not split the Markdown row."""
    return str(text).replace("|", "\\|")


def to_markdown(frame: pd.DataFrame, title: str = "Claims") -> str:
    """A readable Markdown rendering of the claims table, grouped by paper."""
    checked = frame[frame["op"] != "report"]
    n_hold = int((checked["holds"] == True).sum())  # noqa: E712 (object column)
    lines = [
        f"# {title}",
        "",
        f"{n_hold} of {len(checked)} checked claims hold"
        + (
            f"; {len(frame) - len(checked)} values reported only."
            if len(checked) < len(frame)
            else "."
        ),
        "",
    ]
    for paper, group in frame.groupby("paper", sort=False):
        lines += [f"## {paper}", "", "| claim | artifact | metric | value | test | holds | note |"]
        lines.append("|---|---|---|---|---|---|---|")
        for row in group.itertuples(index=False):
            verdict = {True: "yes", False: "**NO**", None: "reported"}[row.holds]
            test = "" if row.op == "report" else f"{row.op} {_fmt(row.threshold)}"
            value = _fmt_value(row.value, row.op, row.threshold)
            lines.append(
                f"| `{row.claim_id}` | `{row.artifact_id}` | {_cell(row.metric)} "
                f"| {value} | {test} | {verdict} | {_cell(row.note)} |"
            )
        lines += [""]
        statements = dict(zip(group["claim_id"], group["statement"], strict=True))
        lines += [f"- `{claim_id}`: {text}" for claim_id, text in statements.items()]
        lines.append("")
    return "\n".join(lines)


_HTML_STYLE = """
body { font-family: sans-serif; font-size: 14px; margin: 1em; }
table { border-collapse: collapse; margin-bottom: 1em; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
td.yes { background: #e3f4e3; } td.no { background: #fbe3e3; font-weight: bold; }
td.reported { color: #555; } code { font-size: 13px; }
"""


def to_html(frame: pd.DataFrame, title: str = "Claims") -> str:
    """A standalone HTML page of the claims table (the report shows it as a readable table)."""
    checked = frame[frame["op"] != "report"]
    n_hold = int((checked["holds"] == True).sum())  # noqa: E712 (object column)
    parts = [
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{escape(title)}</title>",
        f"<style>{_HTML_STYLE}</style></head><body><h1>{escape(title)}</h1>",
        f"<p>{n_hold} of {len(checked)} checked claims hold; "
        f"{len(frame) - len(checked)} values reported only.</p>",
    ]
    header = ("claim", "artifact", "metric", "value", "test", "holds", "note")
    for paper, group in frame.groupby("paper", sort=False):
        parts.append(f"<h2>{escape(str(paper))}</h2><table><tr>")
        parts += [f"<th>{h}</th>" for h in header] + ["</tr>"]
        for row in group.itertuples(index=False):
            verdict = {True: "yes", False: "no", None: "reported"}[row.holds]
            test = "" if row.op == "report" else f"{row.op} {_fmt(row.threshold)}"
            cells = [
                f"<code>{escape(row.claim_id)}</code>",
                f"<code>{escape(row.artifact_id)}</code>",
                escape(str(row.metric)),
                escape(_fmt_value(row.value, row.op, row.threshold)),
                escape(test),
            ]
            parts.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells))
            parts.append(f"<td class='{verdict}'>{verdict.upper() if verdict == 'no' else verdict}")
            parts.append(f"</td><td>{escape(str(row.note))}</td></tr>")
        parts.append("</table><ul>")
        statements = dict(zip(group["claim_id"], group["statement"], strict=True))
        parts += [f"<li><code>{escape(c)}</code>: {escape(s)}</li>" for c, s in statements.items()]
        parts.append("</ul>")
    parts.append("</body></html>")
    return "\n".join(parts)
