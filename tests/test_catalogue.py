"""docs/ARTIFACTS.md, the catalogue: every name it gives for an artifact exists where it says,
so that a newcomer reaches the rule, the src function, the notebook and the claim function by
grep; and the workflow declares exactly the catalogue's artifacts."""

from __future__ import annotations

import importlib
import re

import pytest

from conftest import ROOT
from sgdconv.catalogue import claim_ids, read_catalogue

CATALOGUE = read_catalogue(ROOT / "docs" / "ARTIFACTS.md")


def resolve(dotted: str):
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


def test_catalogue_lists_the_three_papers():
    assert {e.paper for e in CATALOGUE.values()} == {"zhang", "chatterjee", "anlu"}
    assert len(claim_ids(CATALOGUE)) >= len(CATALOGUE)


@pytest.mark.parametrize("entry", CATALOGUE.values(), ids=list(CATALOGUE))
def test_every_name_of_an_artifact_resolves(entry):
    rule_file = ROOT / "workflow" / "rules" / f"{entry.paper}.smk"
    rules = rule_file.read_text()
    assert entry.rule == f"rule {entry.artifact_id}"
    assert re.search(rf"^{entry.rule}:$", rules, flags=re.M), f"{entry.rule} not in {rule_file}"
    # the one declaration names the notebook and the claim function
    declaration = rules[rules.index(f'artifact(\n    "{entry.artifact_id}"') :]
    declaration = declaration[: declaration.index("\n)\n")]
    assert f'notebook="{entry.notebook}"' in declaration
    function = entry.claim_function.rpartition(".")[2]
    assert declaration.rstrip().endswith(f".{function},"), declaration
    assert (ROOT / entry.notebook).is_file()
    assert callable(resolve(entry.claim_function))
    assert callable(resolve(entry.computed_by))
    assert (ROOT / "workflow" / "report" / f"{entry.artifact_id}.rst").is_file()


def test_parser_reads_a_row_and_refuses_a_duplicate(tmp_path):
    row = (
        "| `zhang_fig9` | Fig. 9 | `rule zhang_fig9` | `m.f` | `n.py` | `m.claims` "
        "| `zhang_a`, `zhang_b` |"
    )
    head = "| artifact | paper item | rule | computed by | notebook | claim function | claims |"
    text = "\n".join([head, "|---|---|---|---|---|---|---|", row])
    path = tmp_path / "a.md"
    path.write_text(text)
    (entry,) = read_catalogue(path).values()
    assert entry.claim_ids == ("zhang_a", "zhang_b") and entry.notebook == "n.py"
    path.write_text(text + "\n" + row)
    with pytest.raises(ValueError, match="listed twice"):
        read_catalogue(path)
