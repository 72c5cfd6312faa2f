"""The workflow as a user meets it: lint, the paper-tier dry run, config validation and an
end-to-end run of the test tier whose every claim must hold."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml

from conftest import ROOT, copy_workflow, run_snakemake
from sgdconv.claims import COLUMNS, read_claims

pytestmark = pytest.mark.slow


def expected_artifacts(results) -> list[str]:
    frame = read_claims(results / "tables" / "claims.csv")
    return sorted(frame["artifact_id"].unique())


def test_lint_has_no_warnings():
    result = run_snakemake(ROOT, "--lint")
    assert result.returncode == 0, result.stdout + result.stderr
    text = result.stdout + result.stderr
    assert "Lints for" not in text, text


def test_paper_tier_dry_run_builds_the_dag():
    result = run_snakemake(ROOT, "-n", "--configfile", "config/paper.yaml", "--quiet", "rules")
    assert result.returncode == 0, result.stdout + result.stderr


def test_default_tier_is_what_plain_snakemake_runs():
    result = run_snakemake(ROOT, "-n", "--quiet", "rules", "--forceall")
    assert result.returncode == 0, result.stderr
    assert "results/test" not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("edit", "key"),
    [
        (lambda c: c.update(unknown_key=1), "unknown_key"),
        (lambda c: c["zhang"]["synthetic"].update(steps="many"), "zhang.synthetic.steps"),
        (lambda c: c["zhang"]["synthetic"].update(steps=-5), "zhang.synthetic.steps"),
        (lambda c: c["compute"].update(device="tpu"), "compute.device"),
        (lambda c: c["zhang"]["synthetic"].update(typo=1), "zhang.synthetic.typo"),
    ],
)
def test_bad_config_is_rejected_naming_the_key(tmp_path, edit, key):
    workdir = copy_workflow(tmp_path)
    path = workdir / "config" / "bad.yaml"
    config = yaml.safe_load((ROOT / "config" / "test.yaml").read_text())
    edit(config)
    path.write_text(yaml.safe_dump(config))
    result = run_snakemake(workdir, "-n", "--configfile", "config/bad.yaml")
    assert result.returncode != 0
    assert f"key '{key}'" in result.stdout + result.stderr, result.stdout[-3000:]
    assert not (workdir / "results").exists()


def test_test_tier_writes_every_output(test_tier):
    claims = read_claims(test_tier / "tables" / "claims.csv")
    assert list(claims.columns) == COLUMNS
    for artifact in expected_artifacts(test_tier):
        for path in (
            f"figures/{artifact}.png",
            f"figures/{artifact}.pdf",
            f"notebooks/{artifact}.ipynb",
            f"tables/claims/{artifact}.csv",
        ):
            assert (test_tier / path).stat().st_size > 0, path
    provenance = json.loads((test_tier / "provenance.json").read_text())
    assert provenance["tier"] == "test"
    assert len(provenance["config_sha256"]) == 64
    assert provenance["packages"]["torch"].startswith("2.14")
    assert (test_tier / "tables" / "claims.md").read_text().startswith("# Claims")


def test_test_tier_every_claim_holds(test_tier):
    claims = read_claims(test_tier / "tables" / "claims.csv")
    checked = claims[claims["op"] != "report"]
    failing = checked[checked["holds"] != True]  # noqa: E712
    assert failing.empty, failing[["claim_id", "value", "op", "threshold", "note"]].to_string()


def test_every_artifact_of_artifacts_md_with_a_rule_has_claims(test_tier):
    claims = read_claims(test_tier / "tables" / "claims.csv")
    registered = set(claims["artifact_id"])
    assert "zhang_fig4" in registered


def test_test_tier_rerun_does_nothing(test_tier):
    workdir = test_tier.parent.parent
    result = run_snakemake(workdir, "--cores", "2", "--configfile", "config/test.yaml", "-n")
    assert result.returncode == 0
    assert "Nothing to be done" in result.stdout + result.stderr, result.stdout[-2000:]


def test_zhang_fig4_table_contract(test_tier):
    table = pd.read_parquet(test_tier / "synthetic" / "zhang_fig4.parquet")
    assert list(table.columns) == [
        "lr",
        "step",
        "theta1",
        "theta2",
        "loss",
        "grad_norm",
        "loss_running_avg",
        "grad_norm_running_avg",
    ]


def test_report_builds(test_tier):
    workdir = test_tier.parent.parent
    report = workdir / "report.html"
    result = run_snakemake(
        workdir, "--configfile", "config/test.yaml", "--report", str(report), timeout=600
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert report.stat().st_size > 10_000
