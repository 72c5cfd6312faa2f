"""The grain of the statistics jobs (sgdconv.stats.jobs): planning, tables identical to one job
per checkpoint on a real run, resuming after a kill, and the sharpness's convergence flag."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch

from runs import spec_for
from sgdconv.stats.aggregate import aggregate_statistics
from sgdconv.stats.checkpoint_context import CheckpointContext, StatsSettings
from sgdconv.stats.checkpoint_stats import checkpoint_statistics
from sgdconv.stats.jobs import (
    estimate_stats_job,
    journal_path,
    plan_jobs,
    run_stats_job,
)
from sgdconv.train.engine import train_run
from sgdconv.train.spec import RunSpec

pytestmark = pytest.mark.usefixtures("one_thread")

MLP = {"name": "mlp", "in_features": 36, "hidden": [8], "out_features": 4}


# --- planning ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "per_job", "sizes"),
    [
        (10, 4, [4, 3, 3]),
        (10, 5, [5, 5]),
        (10, 1, [1] * 10),
        (10, 10, [10]),
        (10, 32, [10]),
        (10, "all", [10]),
        (31, 16, [16, 15]),
        (51, 32, [26, 25]),
        (1, "all", [1]),
    ],
)
def test_plan_jobs_is_contiguous_balanced_and_covers_every_step(n, per_job, sizes):
    steps = [7 * k for k in range(n)][::-1]  # any order in, step order out
    jobs = plan_jobs(steps, per_job)
    assert [len(j) for j in jobs] == sizes
    assert [s for job in jobs for s in job] == sorted(steps)


@pytest.mark.parametrize("bad", [0, -2, "some", 2.5, True, None])
def test_plan_jobs_rejects_a_bad_grain(bad):
    with pytest.raises(ValueError, match="checkpoints_per_job"):
        plan_jobs([0, 1, 2], bad)


# --- resuming, with a stand-in for the statistics -----------------------------------------------


class Killed(Exception):
    """Stands for the job being killed (SIGKILL leaves the same files behind)."""


class FakeStats:
    """compute(checkpoint) with a count of calls; raises Killed on the ``kill_at``-th call."""

    def __init__(self, kill_at: int | None = None) -> None:
        self.calls: list[str] = []
        self.kill_at = kill_at

    def __call__(self, checkpoint):
        if self.kill_at is not None and len(self.calls) + 1 == self.kill_at:
            raise Killed
        self.calls.append(str(checkpoint))
        step = int(str(checkpoint).rsplit("_", 1)[1].split(".")[0])
        return pd.DataFrame([{"step": step, "loss": step / 10, "sharpness_converged": True}])


def job_files(tmp_path, steps):
    checkpoints = [str(tmp_path / "checkpoints" / f"step_{s}.pt") for s in steps]
    for path in checkpoints:
        (tmp_path / "checkpoints").mkdir(exist_ok=True)
        open(path, "w").close()
    tables = [str(tmp_path / "stats" / f"step_{s}.parquet") for s in steps]
    return checkpoints, tables, tmp_path / "stats" / f"batch_{steps[0]}.parquet"


def test_a_killed_job_recomputes_only_the_checkpoints_it_had_not_written(tmp_path):
    steps = [0, 5, 10, 15]
    checkpoints, tables, output = job_files(tmp_path, steps)
    first = FakeStats(kill_at=3)
    with pytest.raises(Killed):
        run_stats_job(steps, checkpoints, tables, output, first, settings={"a": 1})
    assert first.calls == checkpoints[:2]
    assert not output.exists() and journal_path(output).exists()
    written = {t: (tmp_path / t).stat().st_mtime_ns for t in tables[:2]}

    rerun = FakeStats()
    batch = run_stats_job(steps, checkpoints, tables, output, rerun, settings={"a": 1})
    assert rerun.calls == checkpoints[2:]  # only the missing ones
    assert {t: (tmp_path / t).stat().st_mtime_ns for t in tables[:2]} == written
    assert list(batch["step"]) == steps
    pd.testing.assert_frame_equal(pd.read_parquet(output), batch)
    for step, table in zip(steps, tables, strict=True):
        assert pd.read_parquet(table)["step"].tolist() == [step]
    assert not journal_path(output).exists()


def test_a_completed_job_rerun_recomputes_everything(tmp_path):
    """A forced re-run (e.g. after the estimator changed) must not reuse the old tables."""
    steps = [0, 5]
    checkpoints, tables, output = job_files(tmp_path, steps)
    run_stats_job(steps, checkpoints, tables, output, FakeStats(), settings={"a": 1})
    again = FakeStats()
    run_stats_job(steps, checkpoints, tables, output, again, settings={"a": 1})
    assert again.calls == checkpoints


@pytest.mark.parametrize("change", ["settings", "checkpoint"])
def test_a_killed_job_rerun_with_other_inputs_recomputes_everything(tmp_path, change):
    steps = [0, 5, 10]
    checkpoints, tables, output = job_files(tmp_path, steps)
    with pytest.raises(Killed):
        run_stats_job(steps, checkpoints, tables, output, FakeStats(kill_at=3), settings={"a": 1})
    settings = {"a": 1}
    if change == "settings":
        settings = {"a": 2}
    else:  # the run was trained again: its checkpoints were rewritten
        with open(checkpoints[0], "w") as fh:
            fh.write("retrained")
    rerun = FakeStats()
    run_stats_job(steps, checkpoints, tables, output, rerun, settings=settings)
    assert rerun.calls == checkpoints


def test_an_unreadable_table_of_a_killed_job_is_recomputed(tmp_path):
    steps = [0, 5, 10]
    checkpoints, tables, output = job_files(tmp_path, steps)
    with pytest.raises(Killed):
        run_stats_job(steps, checkpoints, tables, output, FakeStats(kill_at=3), settings=None)
    with open(tables[1], "wb") as fh:  # e.g. a disk error; atomic writes never leave this
        fh.write(b"not parquet")
    rerun = FakeStats()
    run_stats_job(steps, checkpoints, tables, output, rerun, settings=None)
    assert rerun.calls == checkpoints[1:]
    assert pd.read_parquet(tables[1])["step"].tolist() == [5]


def test_a_job_of_empty_tables_writes_an_empty_batch(tmp_path):
    steps = [0, 5]
    checkpoints, tables, output = job_files(tmp_path, steps)
    empty = pd.DataFrame({"step": pd.Series(dtype="int64")})
    batch = run_stats_job(steps, checkpoints, tables, output, lambda c: empty, settings=None)
    assert batch.empty and list(pd.read_parquet(output).columns) == ["step"]


# --- the real statistics on the tiny run of tests/runs.py ------------------------------------


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("tiny")
    spec = spec_for(tmp, model=MLP, epochs=3, checkpoint_every=1)
    manifest = train_run(spec, tmp / "run", progress=False)
    return tmp / "run", manifest


SETTINGS = {
    "sample_size": 64,
    "microbatch": 16,
    "sharpness_tol": 1e-3,
    "sharpness_max_hvp": 60,
    "one_step_draws": 2,
}


def run_job(run_dir, steps, name, settings=SETTINGS):
    return estimate_stats_job(
        run_dir / "manifest.json",
        settings,
        steps,
        [run_dir / "checkpoints" / f"step_{s}.pt" for s in steps],
        [run_dir / name / f"step_{s}.parquet" for s in steps],
        run_dir / name / f"batch_{steps[0]}.parquet",
    )


def test_one_job_for_all_checkpoints_gives_the_tables_of_one_job_each(tiny_run):
    run_dir, manifest = tiny_run
    steps = [c["step"] for c in manifest["checkpoints"]]
    assert len(steps) == 4
    batched = run_job(run_dir, steps, "batched")
    single = pd.concat([run_job(run_dir, [s], "single") for s in steps], ignore_index=True)
    pd.testing.assert_frame_equal(batched, single)  # exact: same numbers to the last bit
    for s in steps:
        pd.testing.assert_frame_equal(
            pd.read_parquet(run_dir / "batched" / f"step_{s}.parquet"),
            pd.read_parquet(run_dir / "single" / f"step_{s}.parquet"),
        )
    # aggregate_stats joins the jobs' tables whatever the split
    log = pd.read_parquet(run_dir / "train_log.parquet")
    jobs = [batched.iloc[:2], batched.iloc[2:]]
    whole = aggregate_statistics([batched], log, manifest)
    split = aggregate_statistics(jobs, log, manifest)
    pd.testing.assert_frame_equal(whole, split)
    assert whole["sharpness_converged"].dtype == bool


@pytest.mark.parametrize(("tol", "max_hvp", "converged"), [(1e-3, 60, True), (1e-12, 4, False)])
def test_sharpness_converged_is_residual_within_tolerance(tiny_run, tol, max_hvp, converged):
    run_dir, manifest = tiny_run
    path = run_dir / manifest["checkpoints"][-1]["path"]
    settings = StatsSettings(
        sample_size=64, microbatch=16, sharpness_tol=tol, sharpness_max_hvp=max_hvp
    )
    row = checkpoint_statistics(
        CheckpointContext(RunSpec.from_dict(manifest["spec"]), path, settings)
    )
    assert row["sharpness_converged"] is converged
    assert (row["sharpness_residual"] <= tol) is converged
    assert row["sharpness_n_hvp"] <= max_hvp


def test_without_sharpness_the_flag_is_false_and_aggregates_as_a_flag(tiny_run):
    run_dir, manifest = tiny_run
    steps = [c["step"] for c in manifest["checkpoints"]]
    table = run_job(run_dir, steps[:2], "off", {**SETTINGS, "sharpness": False})
    assert not table["sharpness_converged"].any()
    assert table["sharpness_residual"].isna().all()
    empty = pd.DataFrame({"step": pd.Series(dtype="int64")})  # a checkpoint after a divergence
    log = pd.read_parquet(run_dir / "train_log.parquet")
    stats = aggregate_statistics([table, empty], log, manifest)
    assert stats["sharpness_converged"].dtype == bool
    assert math.isnan(stats["sharpness"].iloc[0])
