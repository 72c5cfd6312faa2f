"""The claims table: verdicts, NaN handling, csv round trip and Markdown rendering."""

from __future__ import annotations

import math

import pytest

from sgdconv.claims import (
    COLUMNS,
    Claim,
    evaluate,
    read_claims,
    to_frame,
    to_html,
    to_markdown,
)


def make(value, op="<", threshold=1.0, **kw):
    return Claim("c", "zhang", "zhang_fig4", "statement", "metric", value, op, threshold, **kw)


@pytest.mark.parametrize(
    ("value", "op", "threshold", "expected"),
    [
        (0.5, "<", 1.0, True),
        (1.0, "<", 1.0, False),
        (1.0, "<=", 1.0, True),
        (2.0, ">", 1.0, True),
        (1.0, ">=", 1.0, True),
        (0.9, ">=", 1.0, False),
    ],
)
def test_verdicts(value, op, threshold, expected):
    assert make(value, op, threshold).holds is expected


def test_nan_never_holds_and_says_why():
    claim = make(math.nan)
    assert claim.holds is False
    assert "NaN" in claim.row()["note"]


def test_report_rows_have_no_verdict():
    assert make(3.0, "report", None).holds is None


def test_unknown_op_and_missing_threshold_are_errors():
    with pytest.raises(ValueError):
        make(1.0, "~", 1.0)
    with pytest.raises(ValueError):
        make(1.0, "<", None)


def test_csv_round_trip_keeps_verdicts(tmp_path):
    frame = to_frame([make(0.5), make(2.0), make(1.0, "report", None)])
    path = tmp_path / "claims.csv"
    frame.to_csv(path, index=False)
    back = read_claims(path)
    assert list(back.columns) == COLUMNS
    assert list(back["holds"]) == [True, False, None]
    markdown = to_markdown(back)
    assert "1 of 2 checked claims hold" in markdown
    assert "**NO**" in markdown and "reported" in markdown


def test_evaluate_refuses_a_claim_of_another_artifact():
    def claims(tables, params):
        return [make(1.0, ">", 0.0)]

    assert evaluate("zhang_fig4", claims, {}, {})["holds"].tolist() == [True]
    with pytest.raises(ValueError, match="belongs to zhang_fig4, not zhang_fig1"):
        evaluate("zhang_fig1", claims, {}, {})


def test_markdown_never_rounds_a_value_across_its_threshold(tmp_path):
    frame = to_frame([make(9.99997e-11, "<", 1e-10), make(1.0000004, ">", 1.0)])
    markdown = to_markdown(frame)
    assert "| 9.99997e-11 |" in markdown and "| 1.0000004 |" in markdown


def test_html_table_shows_every_row_with_its_verdict_and_escapes_text():
    frame = to_frame(
        [
            make(0.5, "<", 1.0, note="a < b & c"),
            make(2.0, "<", 1.0, note="does not hold"),
            make(3.0, "report", None),
        ]
    )
    html = to_html(frame, title="Claims (test tier)")
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    assert "1 of 2 checked claims hold; 1 values reported only." in html
    assert html.count("<td class='yes'>") == 1 and html.count("<td class='no'>") == 1
    assert html.count("<td class='reported'>") == 1
    assert "a &lt; b &amp; c" in html and "a < b & c" not in html
