"""The SLURM profile as a user meets it, on a real single-node cluster (tools/slurm-local/setup.sh;
`.ci/run` starts one). Skipped when no cluster is up, unless SGDCONV_REQUIRE_SLURM=1 (CI).

One run of the test tier through workflow/profiles/slurm, with only its `EDIT` lines edited (the
partitions set to `debug`, the account line deleted, the squeue status command uncommented), is
stopped the documented way (Ctrl-C, then scancel by run ID) while jobs are queued, then started
again; in the second run a training job is scancelled after it has written a checkpoint. Then: the
stop left no job queued, the profile's `retries` resubmitted the cancelled job (which resumes from
its checkpoint), whose rule log keeps both attempts, every table equals the local run's, the
jobs on tables (aggregation, claims, figures) ran in Snakemake itself and the computations as
SLURM jobs, and no job of either run is left in squeue.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import BIN, ROOT, SNAKEMAKE, copy_workflow, run_snakemake

pytestmark = [pytest.mark.slow, pytest.mark.slurm]

PROFILE = ROOT / "workflow" / "profiles" / "slurm" / "config.yaml"
PARTITION = "debug"  # the partition of tools/slurm-local
#: squeue states of a job that still holds or waits for resources.
ACTIVE = "pending,running,suspended,configuring,completing,requeued,resizing"
#: Status checks every few seconds instead of the plugin's 40 s: the test tier's jobs are short.
FAST_STATUS = ("--slurm-init-seconds-before-status-checks", "5")
RUN_TIMEOUT = 1800  # seconds, per snakemake invocation (about 6 min on a quiet 2-core machine)


def _cluster_problem() -> str | None:
    """Why no local SLURM cluster can run jobs, or None when one can."""
    if shutil.which("sinfo") is None or shutil.which("squeue") is None:
        return "no SLURM client (sinfo, squeue); start one with: sudo tools/slurm-local/setup.sh"
    try:
        result = subprocess.run(
            ["sinfo", "-h", "-p", PARTITION, "-o", "%T"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except subprocess.TimeoutExpired:
        return "sinfo timed out (slurmctld down?); sudo tools/slurm-local/setup.sh"
    states = result.stdout.split()
    if result.returncode != 0 or not states:
        problem = (result.stderr or "no such partition").strip()
        return f"no SLURM partition {PARTITION!r} ({problem}); sudo tools/slurm-local/setup.sh"
    if not any(state.rstrip("*~#").startswith(("idle", "mixed")) for state in states):
        return f"no idle node in partition {PARTITION!r} (states: {', '.join(states)})"
    return None


def edited_profile(dest: Path) -> Path:
    """The profile with only its EDIT lines edited, as the README tells a user on this cluster."""
    lines = []
    for line in PROFILE.read_text().splitlines():
        if re.search(r"#\s*EDIT\b", line):
            if re.match(r"\s*slurm_partition:", line):
                line = re.sub(r'"[^"]*"', f'"{PARTITION}"', line, count=1)
            elif re.match(r"\s*slurm_account:", line):
                continue  # no accounting on this cluster: no account to give
            elif re.match(r"#\s*slurm-status-command:\s*squeue", line):
                line = line.lstrip("# ")  # this cluster has no accounting database
            else:
                pytest.fail(f"the test does not know how to edit this EDIT line: {line!r}")
        lines.append(line)
    text = "\n".join(lines) + "\n"
    profile = yaml.safe_load(text)
    assert profile["slurm-status-command"] == "squeue"
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "config.yaml").write_text(text)
    return dest


def squeue(name: str, states: str = "all") -> list[dict[str, str]]:
    """Jobs of one Snakemake run: the executor names every job of a run by its run ID."""
    result = subprocess.run(
        ["squeue", "-h", "--name", name, "-t", states, "-o", "%i|%k|%T"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    rows = [line.split("|") for line in result.stdout.splitlines() if line.strip()]
    return [{"id": row[0], "comment": row[1], "state": row[2]} for row in rows]


class Run:
    """`snakemake --profile ...` in its own process group, as from a terminal."""

    def __init__(self, workdir: Path, profile: Path, log: Path) -> None:
        self.log = log
        env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
        self._file = log.open("w")
        self.process = subprocess.Popen(
            [
                SNAKEMAKE,
                "--profile",
                str(profile),
                "--configfile",
                "config/test.yaml",
                *FAST_STATUS,
            ],
            cwd=workdir,
            env=env,
            stdout=self._file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # A shell without job control starts background commands with SIGINT ignored, and
            # Python keeps it so; a terminal user's snakemake has the default handler.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        self.run_id = self._wait_for_run_id()

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def _wait_for_run_id(self, timeout: float = 180) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(r"SLURM run ID: (\S+)", self.text())
            if found:
                return found.group(1)
            if self.process.poll() is not None:
                break
            time.sleep(0.5)
        self.stop()
        pytest.fail(f"no SLURM run ID from snakemake:\n{self.text()[-4000:]}")

    def interrupt(self) -> None:
        """Ctrl-C in the terminal: SIGINT to the foreground process group."""
        os.killpg(self.process.pid, signal.SIGINT)

    def wait(self, timeout: float) -> int:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            pytest.fail(f"snakemake did not finish within {timeout} s:\n{self.text()[-4000:]}")
        finally:
            self._file.close()

    def stop(self) -> None:
        """Clean up after a failed test: the documented stop, then scancel by run ID."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(timeout=120)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
        if getattr(self, "run_id", None):
            subprocess.run(["scancel", "--name", self.run_id], timeout=60, check=False)


def wait_for(run: Run, predicate, what: str, timeout: float):
    """Poll squeue for the run's jobs until ``predicate(jobs)`` returns something true."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate(squeue(run.run_id))
        if found:
            return found
        if run.process.poll() is not None:
            pytest.fail(f"snakemake exited before {what}:\n{run.text()[-4000:]}")
        time.sleep(0.5)
    run.stop()
    pytest.fail(f"no {what} within {timeout} s:\n{run.text()[-4000:]}")


def wait_until_gone(run_id: str, timeout: float = 120) -> list[dict[str, str]]:
    """The run's jobs still queued or running once scancel has had ``timeout`` s to end them."""
    deadline = time.monotonic() + timeout
    while (active := squeue(run_id, ACTIVE)) and time.monotonic() < deadline:
        time.sleep(1)
    return active


def is_train(job: dict[str, str]) -> bool:
    return job["comment"].startswith("rule_train_")


def training_run_id(job: dict[str, str]) -> str:
    """The run a `train` job trains (the executor's comment: rule_<rule>_wildcards_<values>)."""
    return job["comment"].removeprefix("rule_train_wildcards_")


def cancel_a_training_job_mid_run(run: Run, results: Path) -> dict[str, str]:
    """scancel a `train` job once it has written a checkpoint after an earlier one (so that its
    retry resumes from a checkpoint); a job that finishes before that does not count."""
    seen_running: dict[str, float] = {}  # job id -> when first seen running

    def checkpointed_train_job(jobs):
        now = time.time()
        for job in jobs:
            if not is_train(job) or job["state"] != "RUNNING":
                continue
            since = seen_running.setdefault(job["id"], now)
            folder = results / "runs" / training_run_id(job) / "checkpoints"
            checkpoints = list(folder.glob("step_*.pt")) if folder.is_dir() else []
            if len(checkpoints) >= 2 and max(c.stat().st_mtime for c in checkpoints) > since:
                return job
        return None

    while True:
        job = wait_for(run, checkpointed_train_job, "train job past a checkpoint", timeout=900)
        subprocess.run(["scancel", job["id"]], timeout=60, check=True)

        def final_state(jobs, job_id=job["id"]):
            state = next((j["state"] for j in jobs if j["id"] == job_id), None)
            return state if state in {"CANCELLED", "COMPLETED", "FAILED"} else None

        if wait_for(run, final_state, f"end of job {job['id']}", timeout=120) == "CANCELLED":
            return job
        seen_running[job["id"]] = float("inf")  # finished first: never pick it again


@pytest.fixture(scope="module")
def profile(tmp_path_factory) -> Path:
    problem = _cluster_problem()
    if problem:
        if os.environ.get("SGDCONV_REQUIRE_SLURM") == "1":
            pytest.fail(f"SGDCONV_REQUIRE_SLURM=1 but {problem}")
        pytest.skip(problem)
    return edited_profile(tmp_path_factory.mktemp("profile"))


@pytest.fixture(scope="module")
def slurm_runs(profile, tmp_path_factory) -> dict:
    """Stop a run of the test tier while jobs are queued, run it again, and scancel one of its
    training jobs mid-run. Returns what the tests check."""
    tmp = tmp_path_factory.mktemp("slurm")
    workdir = copy_workflow(tmp / "workdir")
    runs: list[Run] = []
    try:
        first = Run(workdir, profile, tmp / "interrupted.log")
        runs.append(first)
        wait_for(
            first,
            lambda jobs: len(jobs) >= 3 and any(j["state"] == "RUNNING" for j in jobs),
            "running and queued jobs",
            timeout=300,
        )
        # The documented stop: Ctrl-C once, and once snakemake has exited, scancel by run ID the
        # jobs whose submission was under way at the Ctrl-C (the executor submits from threads).
        first.interrupt()
        interrupted_rc = first.wait(timeout=300)
        left_by_ctrl_c = squeue(first.run_id, ACTIVE)
        subprocess.run(["scancel", "--name", first.run_id], timeout=60, check=True)
        left_queued = wait_until_gone(first.run_id)

        second = Run(workdir, profile, tmp / "run.log")
        runs.append(second)
        cancelled = cancel_a_training_job_mid_run(second, workdir / "results" / "test")
        # The resubmitted job, seen in squeue well within MinJobAge of the cancelled one.
        wait_for(
            second,
            lambda jobs: any(
                j["comment"] == cancelled["comment"] and j["state"] == "COMPLETED" for j in jobs
            ),
            "retry of the cancelled job",
            timeout=600,
        )
        attempt_jobs = [j for j in squeue(second.run_id) if j["comment"] == cancelled["comment"]]
        returncode = second.wait(timeout=RUN_TIMEOUT)
        if returncode != 0:
            pytest.fail(f"the SLURM run failed:\n{second.text()[-6000:]}")
    except BaseException:
        for run in runs:
            run.stop()  # leave no job behind for the next test session
        raise
    return {
        "workdir": workdir,
        "results": workdir / "results" / "test",
        "interrupted_rc": interrupted_rc,
        "interrupted_log": first.text(),
        "run_log": second.text(),
        "left_by_ctrl_c": left_by_ctrl_c,
        "left_queued": left_queued,
        "cancelled": cancelled,
        "attempt_jobs": sorted(attempt_jobs, key=lambda job: int(job["id"])),
        "active_after": squeue(first.run_id, ACTIVE) + squeue(second.run_id, ACTIVE),
    }


SOURCES = ("Snakefile", "environment.yml", "config", "workflow")


def sources_digest(workdir: Path) -> str:
    """What a run of the workflow in ``workdir`` reads besides the installed package."""
    digest = hashlib.sha256()
    for name in SOURCES:
        for path in sorted(p for p in (workdir / name).rglob("*") if p.is_file()):
            if "__pycache__" not in path.parts:
                digest.update(str(path.relative_to(workdir)).encode() + path.read_bytes())
        if (workdir / name).is_file():
            digest.update((workdir / name).read_bytes())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def local_results(request, slurm_runs, tmp_path_factory) -> Path:
    """The test tier run locally from the same sources as the SLURM run: the end-to-end tests'
    run where it has them (a tree edited meanwhile has not), else a run of its own."""
    sources = slurm_runs["workdir"]
    try:
        tier = request.getfixturevalue("test_tier")
    except pytest.FixtureLookupError:
        tier = None
    if tier is not None and sources_digest(tier.parent.parent) == sources_digest(sources):
        return tier
    workdir = tmp_path_factory.mktemp("local")
    for name in SOURCES:
        copy = shutil.copytree if (sources / name).is_dir() else shutil.copy2
        copy(sources / name, workdir / name)
    result = run_snakemake(workdir, "--cores", "2", "--configfile", "config/test.yaml")
    assert result.returncode == 0, result.stderr[-4000:]
    return workdir / "results" / "test"


def test_ctrl_c_then_scancel_by_run_id_leaves_no_job(slurm_runs):
    assert slurm_runs["interrupted_rc"] != 0, slurm_runs["interrupted_log"][-3000:]
    assert "Terminating processes on user request" in slurm_runs["interrupted_log"]
    # Ctrl-C alone cancels the jobs Snakemake had registered (left_by_ctrl_c: those it had not).
    assert slurm_runs["left_queued"] == [], (
        slurm_runs["left_by_ctrl_c"],
        slurm_runs["left_queued"],
    )


def test_a_cancelled_training_job_is_retried_and_its_log_keeps_both_attempts(slurm_runs):
    retries = yaml.safe_load(PROFILE.read_text())["retries"]
    assert retries >= 1
    cancelled = slurm_runs["cancelled"]
    attempts = slurm_runs["attempt_jobs"]
    assert [j["state"] for j in attempts] == ["CANCELLED", "COMPLETED"], attempts
    assert attempts[0]["id"] == cancelled["id"]
    run_id = training_run_id(cancelled)
    log = (slurm_runs["results"] / "logs" / "train" / f"{run_id}.log").read_text()
    # Every attempt since the job last succeeded (one more if the Ctrl-C also hit this job).
    headers = re.findall(r"^=== attempt (\d+) \(", log, flags=re.MULTILINE)
    assert len(headers) >= 2, log[-3000:]
    assert headers == [str(n) for n in range(1, len(headers) + 1)], log[-3000:]


def test_every_table_equals_the_local_run(slurm_runs, local_results):
    slurm_results = slurm_runs["results"]
    tables = sorted(p.relative_to(local_results) for p in local_results.rglob("*.parquet"))
    assert tables == sorted(p.relative_to(slurm_results) for p in slurm_results.rglob("*.parquet"))
    assert len(tables) > 20
    for table in tables:
        pd.testing.assert_frame_equal(
            pd.read_parquet(slurm_results / table),
            pd.read_parquet(local_results / table),
            check_exact=True,
            obj=str(table),
        )
    claims = Path("tables") / "claims.csv"
    pd.testing.assert_frame_equal(
        pd.read_csv(slurm_results / claims), pd.read_csv(local_results / claims), check_exact=True
    )


def test_jobs_on_tables_run_where_snakemake_runs_and_the_rest_as_slurm_jobs(slurm_runs):
    """Snakemake logs a job it runs itself as `localrule <name>:`, one it submits as `rule`."""
    text = slurm_runs["interrupted_log"] + slurm_runs["run_log"]
    local = set(re.findall(r"^localrule (\w+):", text, flags=re.MULTILINE))
    submitted = set(re.findall(r"^rule (\w+):", text, flags=re.MULTILINE))
    on_tables = {rule for rule in local | submitted if rule.startswith(("claims_", "figure_"))}
    assert len(on_tables) > 20, sorted(local | submitted)
    on_tables |= {"aggregate_stats", "language_aggregate", "zhang_eq10_table", "collect_claims"}
    assert on_tables <= local, sorted(on_tables - local)
    computing = {"train", "estimate_stats", "train_language", "simulate_anlu_thm31"}
    assert computing <= submitted, sorted(computing - submitted)
    assert not local & submitted, sorted(local & submitted)


def test_no_job_of_the_runs_is_left_in_squeue(slurm_runs):
    assert slurm_runs["active_after"] == []


def test_every_gpu_job_of_the_paper_tier_goes_to_the_gpu_partition():
    """The profile lists the rules whose jobs ask for GPUs; a rule missing from the list would
    send its GPU jobs to the CPU partition, where SLURM refuses them. Needs no cluster."""
    profile = yaml.safe_load(PROFILE.read_text())
    gpu_partition = profile["set-resources"]["train"]["slurm_partition"]
    cpu_partition = profile["default-resources"]["slurm_partition"]
    assert gpu_partition != cpu_partition
    assert "cpus_per_task" not in str(profile) and "gpu:" not in PROFILE.read_text()
    result = run_snakemake(
        ROOT, "--profile", "workflow/profiles/slurm", "-n", "--configfile", "config/paper.yaml"
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    jobs = re.findall(
        r"^(?:local)?rule (\w+):\n(?:    .*\n)*?    resources: (.*)$", output, flags=re.M
    )
    assert len(jobs) > 500, output[-3000:]
    misrouted = set()
    for rule, line in jobs:
        resources = dict(item.split("=", 1) for item in line.split(", "))
        if int(resources.get("gpu", 0)) > 0 and resources["slurm_partition"] != gpu_partition:
            misrouted.add(rule)
    assert not misrouted, f"add to the profile's set-resources (GPU partition): {misrouted}"
