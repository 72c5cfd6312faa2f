"""The grain of the statistics jobs in the workflow (`compute.checkpoints_per_job`): the dry
run plans the jobs from the config, a bad grain stops the run naming the key, and a batch job
killed mid-way recomputes, when re-run, only the checkpoints it had not written, with tables
identical to one job per checkpoint; and the benchmark that measures the start-up's share of
the job time from a run's logs (benchmarks/workflow_timing.py)."""

from __future__ import annotations

import importlib.util
import os
import re
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
import yaml

from conftest import BIN, ROOT, SNAKEMAKE, copy_workflow, run_snakemake

RUN = "anlu_noise_non_interpolating"
#: An overlay on the test tier: the run above with 5 checkpoints (epochs 0, 2, ..., 8).
RUN_OVERLAY = {"anlu": {"noise": {"non_interpolating": {"epochs": 8, "checkpoint_every": 2}}}}
STEPS = [0, 32, 64, 96, 128]  # 16 steps per epoch (n 64, batch 4)


def overlay(workdir, name, per_job, extra=None):
    config = {"name": name, "compute": {"checkpoints_per_job": per_job}, **(extra or {})}
    path = workdir / "config" / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return ["--configfile", "config/test.yaml", f"config/{name}.yaml"]


def job_counts(workdir, name, per_job):
    result = run_snakemake(
        workdir, "-n", "--quiet", "rules", "--forceall", *overlay(workdir, name, per_job)
    )
    text = result.stdout + result.stderr
    assert result.returncode == 0, text[-3000:]
    return {
        rule: int(count)
        for rule, count in re.findall(r"^(estimate_stats|train)\s+(\d+)$", text, flags=re.M)
    }


@pytest.mark.slow
def test_the_dry_run_plans_the_jobs_from_the_grain(tmp_path):
    workdir = copy_workflow(tmp_path)
    one = job_counts(workdir, "one", 1)
    three = job_counts(workdir, "three", 3)
    whole = job_counts(workdir, "whole", "all")
    assert whole["estimate_stats"] == whole["train"]  # one job per run
    # every run of the test tier has 3 to 5 checkpoints: one or two jobs of at most 3
    assert whole["train"] < three["estimate_stats"] < one["estimate_stats"]
    assert one["estimate_stats"] <= 3 * three["estimate_stats"]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("value", "message"),
    [(0, "0 is less than the minimum of 1"), ("most", "'most' does not match '^all$'")],
)
def test_a_bad_grain_is_rejected_naming_the_key(tmp_path, value, message):
    workdir = copy_workflow(tmp_path)
    result = run_snakemake(workdir, "-n", *overlay(workdir, "bad", value))
    text = result.stdout + result.stderr
    assert result.returncode != 0
    assert f"key 'compute.checkpoints_per_job': {message}" in text, text[-3000:]


def stats_target(name):
    return f"results/{name}/runs/{RUN}/stats.parquet"


@pytest.mark.slow
def test_a_killed_batch_job_recomputes_only_what_it_had_not_written(tmp_path):
    workdir = copy_workflow(tmp_path)
    # Reference: one job per checkpoint, uninterrupted.
    args = overlay(workdir, "single", 1, RUN_OVERLAY)
    result = run_snakemake(workdir, stats_target("single"), "--cores", "2", *args)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    reference = workdir / "results" / "single" / "runs" / RUN

    # One job for the run's five checkpoints, killed (with Snakemake) once it wrote a table.
    args = overlay(workdir, "batched", "all", RUN_OVERLAY)
    stats = workdir / "results" / "batched" / "runs" / RUN / "stats"
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    command = [SNAKEMAKE, stats_target("batched"), "--cores", "2", *args]
    process = subprocess.Popen(
        command,
        cwd=workdir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: the job dies with it
    )
    deadline = time.monotonic() + 600
    written: dict[str, int] = {}
    try:
        while not written and process.poll() is None and time.monotonic() < deadline:
            written = {p.name: p.stat().st_mtime_ns for p in stats.glob("step_*.parquet")}
            time.sleep(0.005)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    assert written, "the job wrote no table before it ended"
    assert not (stats / "batch_0.parquet").exists(), "the job finished before it was killed"
    written = {p.name: p.stat().st_mtime_ns for p in stats.glob("step_*.parquet")}
    assert 0 < len(written) < len(STEPS)

    assert run_snakemake(workdir, "--unlock", *args).returncode == 0
    result = run_snakemake(
        workdir, stats_target("batched"), "--cores", "2", "--rerun-incomplete", *args
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    # The tables written before the kill were kept, and the re-run says it reused them ...
    for name, mtime in written.items():
        assert (stats / name).stat().st_mtime_ns == mtime, name
    log = (workdir / "results" / "batched" / "logs" / "stats" / RUN / "batch_0.log").read_text()
    # one header per attempt ("=== attempt N (time, host) ==="; a finished attempt also ends
    # with "=== attempt N finished ==="): the killed attempt and the re-run
    attempts = re.split(r"^=== attempt \d+ \(.*$", log, flags=re.M)
    assert len(attempts) == 3, log
    reused = sorted(int(s) for s in re.findall(r"step (\d+): reusing", attempts[2]))
    assert reused == sorted(int(re.search(r"\d+", n).group()) for n in written)
    # ... and every table is identical to one job per checkpoint.
    for step in STEPS:
        pd.testing.assert_frame_equal(
            pd.read_parquet(stats / f"step_{step}.parquet"),
            pd.read_parquet(reference / "stats" / f"step_{step}.parquet"),
        )
    pd.testing.assert_frame_equal(
        pd.read_parquet(stats.parent / "stats.parquet"),
        pd.read_parquet(reference / "stats.parquet"),
    )


# --- benchmarks/workflow_timing.py ---------------------------------------------------------

SNAKEMAKE_LOG = """\
Building DAG of jobs...
[Wed Dec  2 06:11:24 2026]
localrule train:
    output: runs/a/manifest.json
    log: logs/train.log
    jobid: 2
    benchmark: bench/train.tsv
[Wed Dec  2 06:11:48 2026]
Finished jobid: 2 (Rule: train)
[Wed Dec  2 06:11:48 2026]
rule estimate_stats:
    log: logs/stats.log
    jobid: 3
[Wed Dec  2 06:11:50 2026]
rule claims_zhang_fig1:
    log: logs/claims.log, logs/other.log
    jobid: 4
[Wed Dec  2 06:12:08 2026]
Finished jobid: 3 (Rule: estimate_stats)
[Wed Dec  2 06:12:10 2026]
Finished job 4.
"""


@pytest.fixture(scope="module")
def workflow_timing():
    spec = importlib.util.spec_from_file_location(
        "workflow_timing", ROOT / "benchmarks" / "workflow_timing.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["workflow_timing"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("workflow_timing", None)


def test_workflow_timing_measures_start_up_from_the_logs(workflow_timing, tmp_path):
    (tmp_path / "logs").mkdir()
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "train.tsv").write_text("s\th:m:s\tmax_rss\n23.5\t0:00:23\t100\n")
    (tmp_path / "logs" / "train.log").write_text(
        "=== attempt 1 (2026-12-02T06:11:27+00:00, vm) ===\nprogress\n"
    )
    # a log that keeps an earlier attempt, from a run before this one
    (tmp_path / "logs" / "stats.log").write_text(
        "=== attempt 1 (2026-12-02T05:00:00+00:00, vm) ===\n"
        "2026-12-02 05:00:09,000 INFO step 0: 9.00 s\n"
        "=== attempt 2 (2026-12-02T06:11:52+00:00, vm) ===\n"
        "2026-12-02 06:11:58,000 INFO step 0: 6.00 s\n"
        "2026-12-02 06:12:00,000 INFO step 5: 2.00 s\n"
        "2026-12-02 06:12:03,000 INFO step 10: 3.00 s\n"
        "2026-12-02 06:12:05,000 INFO step 15: 2.50 s\n"
    )
    jobs = workflow_timing.parse_snakemake_log(SNAKEMAKE_LOG)
    workflow_timing.measure(jobs, tmp_path)
    by_rule = {job.rule: job for job in jobs}
    assert by_rule["train"].seconds == 23.5  # the benchmark file, not the log's 24 s
    assert by_rule["train"].startup == 3
    assert by_rule["estimate_stats"].seconds == 20 and by_rule["estimate_stats"].startup == 4
    assert by_rule["estimate_stats"].warmup == 6 - 2.5  # this attempt's steps only
    assert by_rule["train"].warmup == 0
    assert by_rule["claims_zhang_fig1"].startup is None  # its log has no header
    summary = workflow_timing.summarize(jobs)
    assert summary["wall_s"] == 46
    total = summary["rules"]["TOTAL"]
    assert total["jobs"] == 3 and total["with_header"] == 2
    assert total["startup_share"] == pytest.approx(7 / 43.5, abs=1e-3)
    assert total["startup_warmup_share"] == pytest.approx(10.5 / 43.5, abs=1e-3)
    assert summary["rules"]["claims_<id>"]["startup_share"] is None
    assert "from sgdconv.stats.jobs import" in workflow_timing.import_statement(
        workflow_timing.STATS_SCRIPT
    )
