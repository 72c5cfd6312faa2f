"""The runs of the language track from the config (sgdconv.zhang.language): the paper's columns
of Fig. 3 from one seed, planned checkpoints and statistics jobs, Fig. 8's sweep checkpoints,
and the WikiText-103 path check that names the config key."""

from __future__ import annotations

import pytest

from conftest import tier_config
from sgdconv.data.base import DataError
from sgdconv.train.lm_spec import LMRunSpec
from sgdconv.zhang.language import (
    WT103_KEY,
    check_wikitext_layout,
    language_runs,
    lm_run_id,
    sweep_steps,
)

SEEDS = {"train": 11, "stats": 12}


def runs_of(tier: str) -> dict:
    language = tier_config(tier)["zhang"]["language"]
    return language_runs(language, seeds=SEEDS, device="cpu", corpus="c", inputs=["c/corpus.json"])


def test_default_tier_runs_are_the_papers_columns():
    language = tier_config("config")["zhang"]["language"]
    runs = runs_of("config")
    lrs = [language["cosine"]["lr"], *language["constant"]["lrs"]]
    assert list(runs) == [lm_run_id("cosine", lrs[0])] + [
        lm_run_id("constant", lr) for lr in lrs[1:]
    ]
    specs = [LMRunSpec.from_dict(r["spec"]) for r in runs.values()]
    assert {s.seed for s in specs} == {SEEDS["train"]}  # one initialization and data order
    assert [s.schedule["name"] for s in specs] == ["cosine"] + ["constant"] * (len(lrs) - 1)
    assert all(s.data == {"name": "wikitext", "path": "c", "key": s.data["key"]} for s in specs)
    for run in runs.values():
        assert [k for chunk in run["chunks"] for k in chunk] == run["steps"]
        assert run["stats"]["seed"] == SEEDS["stats"]
    cosine = runs[lm_run_id("cosine", lrs[0])]
    assert cosine["sweep_steps"] == [language["sweep"]["step"], language["max_steps"]]
    assert cosine["stats"]["sweep_sizes"] == language["sweep"]["sizes"]
    assert all(not r["sweep_steps"] for r in runs.values() if r is not cosine)


def test_paper_tier_reads_wikitext103_with_one_statistics_job_per_checkpoint():
    runs = runs_of("paper")
    assert len(runs) == 4
    for run in runs.values():
        spec = LMRunSpec.from_dict(run["spec"])
        assert spec.data["key"] == WT103_KEY and spec.model["n_layer"] == 4
        assert spec.max_steps == 200_000 and len(run["steps"]) == 401
        assert all(len(chunk) == 1 for chunk in run["chunks"])
    (cosine,) = [r for r in runs.values() if r["sweep_steps"]]
    assert cosine["sweep_steps"] == [1000, 200_000]


def test_sweep_steps_nearest_planned_and_last():
    assert sweep_steps([0, 200, 400, 600], 290) == [200, 600]
    assert sweep_steps([0, 200, 400], 400) == [400]


def test_wikitext_check_names_the_key(tmp_path):
    with pytest.raises(DataError, match=WT103_KEY):
        check_wikitext_layout(None)
    with pytest.raises(DataError, match="does not exist"):
        check_wikitext_layout(str(tmp_path / "nowhere"))
    (tmp_path / "wiki.train.tokens").write_text(" a b \n")
    with pytest.raises(DataError, match=r"lacks wiki\.valid\.tokens, wiki\.test\.tokens"):
        check_wikitext_layout(str(tmp_path))
    for split in ("valid", "test"):
        (tmp_path / f"wiki.{split}.tokens").write_text(" a \n")
    assert check_wikitext_layout(str(tmp_path)) == {"train": 6, "valid": 4, "test": 4}
