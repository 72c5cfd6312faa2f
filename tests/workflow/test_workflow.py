"""The workflow as a user meets it: lint, the paper-tier dry run, config validation and an
end-to-end run of the test tier whose every claim must hold."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pandas as pd
import pytest
import yaml

from conftest import ROOT, copy_workflow, run_snakemake, tier_config
from sgdconv.catalogue import claim_ids, read_catalogue
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


#: Packages that parsing the workflow must not import: Snakemake parses it twice in every SLURM
#: job (the batch script's snakemake and the job step's) and in every dry run, and each of these
#: takes seconds to import; the jobs that need them import them when they run.
HEAVY_PACKAGES = {"torch", "torchvision", "scipy", "matplotlib", "sklearn"}


@pytest.mark.parametrize("tier", ["test", "paper"])
def test_parsing_the_workflow_imports_no_heavy_package(tier):
    config = ("--configfile", f"config/{tier}.yaml")
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "snakemake", "--list-rules", *config],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    # -X importtime: one line per module, "import time: <self> | <cumulative> | <name>".
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()}
    assert "sgdconv.config" in imported, result.stderr[-2000:]  # the parse did import sgdconv
    assert not HEAVY_PACKAGES & imported, sorted(HEAVY_PACKAGES & imported)


@pytest.fixture(scope="module")
def paper_dry_run() -> str:
    """The paper tier's dry run with every job printed; --cores above any job's threads, so
    that Snakemake prints them uncapped."""
    result = run_snakemake(ROOT, "-n", "--cores", "1024", "--configfile", "config/paper.yaml")
    text = result.stdout + result.stderr
    assert result.returncode == 0, text[-3000:]
    return text


def paper_slurm_dry_run() -> str:
    result = run_snakemake(
        ROOT,
        *["--profile", "workflow/profiles/slurm"],
        *["-n", "--configfile", "config/paper.yaml", "--quiet", "rules"],
    )
    text = result.stdout + result.stderr
    assert result.returncode == 0, text[-3000:]
    return text


@pytest.mark.parametrize("profile", ["local", "slurm"])
def test_paper_tier_dry_run_builds_the_dag(profile, request):
    text = request.getfixturevalue("paper_dry_run") if profile == "local" else paper_slurm_dry_run()
    # The paper's training runs: ImageNet step schedule, constant lr 0.1, 0.001 and 0.01 (its
    # first 90 epochs of the 300-epoch run), CIFAR-10; and the two anlu_noise runs.
    assert re.search(r"^train\s+7$", text, flags=re.M), text[-3000:]
    # ... and one statistics job per planned checkpoint, listed before anything has trained:
    # ImageNet step + constant 0.1, 0.001 (91 each) + 0.01 for 300 epochs (301), CIFAR-10
    # every 2 of 200 epochs (101), and anlu_noise.
    stats_jobs = int(re.search(r"^estimate_stats\s+(\d+)$", text, flags=re.M).group(1))
    assert stats_jobs >= 3 * 91 + 301 + 101, stats_jobs


def test_paper_tier_jobs_ask_for_the_cpus_of_their_loader_workers(paper_dry_run):
    """A job's threads are its CPU request (--cpus-per-task under the SLURM profile): the
    ImageNet training runs 8 processes with 8 loader workers each (paper.yaml), its statistics
    one process with 8, the CIFAR-10 runs one process with 4. One CPU would starve the GPUs."""
    threads = {}
    for block in re.split(r"\n(?=\[)", paper_dry_run):
        job = re.search(r"^(?:local)?rule (\w+):$", block, flags=re.M)
        run = re.search(r"^    wildcards: run_id=(\w+)", block, flags=re.M)
        if job and run and job.group(1) in ("train", "estimate_stats"):
            count = re.search(r"^    threads: (\d+)$", block, flags=re.M)
            key = (job.group(1), run.group(1))
            threads.setdefault(key, set()).add(int(count.group(1)) if count else 1)
    assert threads[("train", "zhang_nonint_step")] == {8 * (1 + 8)}
    assert threads[("estimate_stats", "zhang_nonint_step")] == {1 + 8}
    assert threads[("train", "zhang_interp_step")] == {1 + 4}
    assert threads[("train", "anlu_noise_interpolating")] == {1}


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
    config = tier_config("test")
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


#: Statistical claims of the vision track that the test tier's toy-sized runs (a dozen epochs
#: of a tiny ResNet, samples of a few hundred draws) cannot resolve: they are computed and
#: reported there like every claim (holds=False with the measured values in the note), and
#: checked at the default tier's sizes (README: artifact status). Every other claim, the exact
#: toy reproductions and the theory track included, must hold in the test tier.
UNRESOLVED_AT_TEST_SIZE = {
    "zhang_loss_stabilizes": "4-epoch phases of 23 steps: eq. (2) still falls by ~10%",
    "zhang_grad_norm_persists": "8-epoch runs: two-checkpoint windows, SE as large as the median",
    "zhang_smaller_lr_larger_grad": "8-epoch constant-lr runs have not reached their level",
    "zhang_smaller_lr_larger_noise": "8 epochs: the weight norm has not balanced the decay",
    "zhang_smaller_lr_larger_sharpness": "8 epochs: the weight norm has not balanced the decay",
    "zhang_moving_average_smoother": "three checkpoint pairs after the first phase",
    "zhang_estimators_converge": "samples of 256 to 1024 draws",
    "zhang_time_average_rate": "three checkpoints per run to fit the slope on",
    # Not a matter of size: the default tier's interpolating run. Its |∇L| levels off near
    # λ|θ| (weight decay 5e-4) at about 1% of its maximum, and which side of 1% it ends on
    # depends on the CPU's rounding (0.0088 on one machine, 0.0114 on another; README).
    "zhang_grad_norm_vanishes_when_interpolating": "plateau at the 1% threshold, CPU-dependent",
}


def test_test_tier_every_claim_holds(test_tier):
    claims = read_claims(test_tier / "tables" / "claims.csv")
    checked = claims[claims["op"] != "report"]
    must_hold = checked[~checked["claim_id"].isin(UNRESOLVED_AT_TEST_SIZE)]
    failing = must_hold[must_hold["holds"] != True]  # noqa: E712
    assert failing.empty, failing[["claim_id", "value", "op", "threshold", "note"]].to_string()
    unresolved = checked[checked["claim_id"].isin(UNRESOLVED_AT_TEST_SIZE)]
    assert unresolved["note"].str.len().gt(0).all()
    assert unresolved["value"].notna().all(), "an unresolved claim must still be measured"


#: The catalogue, docs/ARTIFACTS.md: the single list of artifact and claim ids.
CATALOGUE = read_catalogue(ROOT / "docs" / "ARTIFACTS.md")


def test_every_artifact_and_claim_of_artifacts_md_is_present(test_tier):
    claims = read_claims(test_tier / "tables" / "claims.csv")
    assert set(claims["artifact_id"]) == set(CATALOGUE)
    assert set(claims["claim_id"]) == claim_ids(CATALOGUE)
    for artifact_id, entry in CATALOGUE.items():
        produced = set(claims.loc[claims["artifact_id"] == artifact_id, "claim_id"])
        assert produced == set(entry.claim_ids), artifact_id
    # One row per claim and artifact (the language track's zhang_fig3 and zhang_fig8 share claim
    # ids with the vision artifacts), except eq. (10)'s ratios (three per constant-lr run), the
    # plug-in bias (one per run) and the cost slope of Theorem 4.5 (reported once per d/n).
    counts = claims.groupby(["claim_id", "artifact_id"]).size()
    several = ["zhang_eq10_ratio", "zhang_plugin_bias", "chatterjee_thm45_cost"]
    assert (counts.drop(several, level="claim_id") == 1).all(), counts


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
    # Every caption is valid reStructuredText (docutils reports problems as "(ERROR/3)").
    assert "ERROR/" not in result.stdout + result.stderr, (result.stdout + result.stderr)[-3000:]


def test_a_diverged_run_is_marked_and_the_dag_completes(tmp_path):
    """A run whose loss becomes infinite stops, its planned checkpoints after the divergence
    get empty statistics, and the artifact's figure and claims are still built."""
    workdir = copy_workflow(tmp_path)
    # an overlay over the test tier: the interpolating run diverges in a few steps
    overlay = {"anlu": {"noise": {"interpolating": {"lr": 50.0}}}}
    (workdir / "config" / "diverge.yaml").write_text(yaml.safe_dump(overlay))
    result = run_snakemake(
        workdir,
        "anlu_noise",
        "--cores",
        "2",
        "--configfile",
        "config/test.yaml",
        "config/diverge.yaml",
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    results = workdir / "results" / "test"
    manifest = json.loads((results / "runs/anlu_noise_interpolating/manifest.json").read_text())
    assert manifest["status"] == "diverged"
    stats = pd.read_parquet(results / "runs/anlu_noise_interpolating/stats.parquet")
    assert (stats["status"] == "diverged").all() and list(stats["step"]) == [0]
    claims = read_claims(results / "tables/claims/anlu_noise.csv")
    assert claims["holds"].tolist() == [False]
    assert "interpolating run diverged" in claims["note"].iloc[0]
    assert (results / "figures/anlu_noise.png").stat().st_size > 0
