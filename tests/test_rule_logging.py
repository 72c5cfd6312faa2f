"""rule_logging: the rule's log file keeps every attempt of a retried job since it last
succeeded, although Snakemake deletes a job's log before each attempt (and does not tell the
script which attempt it is), including an attempt killed by its scheduler."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

from sgdconv import workflow
from sgdconv.workflow import attempts_path, rule_logging

SLURM_RUN = workflow._slurm_run  # before the fixture below replaces it


@pytest.fixture(autouse=True)
def outside_slurm(monkeypatch):
    """As run by `snakemake --cores`, even where the tests themselves run in a SLURM job."""
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    monkeypatch.setattr(workflow, "_slurm_run", lambda: None)


def in_slurm_job(monkeypatch, run: str, job: str) -> None:
    """Inside job ``job`` of the SLURM run ``run`` (the name squeue reports for the job)."""
    monkeypatch.setenv("SLURM_JOB_ID", job)
    monkeypatch.setattr(workflow, "_slurm_run", lambda: run)


def smk_for(log: Path) -> SimpleNamespace:
    """The parts of Snakemake's ``snakemake`` script object that rule_logging reads."""
    return SimpleNamespace(log=[str(log)], rule="train", config={})


def snakemake_prepares(log: Path) -> None:
    """What Snakemake does before every attempt of a job (Job.prepare): delete its log."""
    log.unlink(missing_ok=True)


def attempts(log: Path) -> list[str]:
    """The attempt lines of a log: '1' for a header, '1 finished' for its end."""
    return re.findall(r"^=== attempt (\d+(?: finished)?)", log.read_text(), flags=re.MULTILINE)


def fail(log: Path, message: str = "diverged") -> None:
    with pytest.raises(RuntimeError), rule_logging(smk_for(log)):
        raise RuntimeError(message)


def test_one_attempt_has_a_header_and_an_end(tmp_path):
    log = tmp_path / "logs" / "train.log"
    with rule_logging(smk_for(log)) as logger:
        logger.info("training")
        print("progress 50%", file=sys.stderr)
    lines = log.read_text().splitlines()
    assert re.fullmatch(r"=== attempt 1 \(\d{4}-\d\d-\d\dT[\d:]+[+-][\d:]+, .+\) ===", lines[0])
    assert "training" in lines[1]
    assert lines[2] == "progress 50%"
    assert lines[3] == "=== attempt 1 finished ==="
    assert Path(attempts_path(log)).read_text() == log.read_text()


def test_a_failed_then_retried_job_keeps_both_attempts(tmp_path):
    log = tmp_path / "train.log"
    with pytest.raises(RuntimeError), rule_logging(smk_for(log)) as logger:
        logger.info("first try")
        raise RuntimeError("out of memory")
    snakemake_prepares(log)
    with rule_logging(smk_for(log)) as logger:
        logger.info("second try")
    text = log.read_text()
    order = ["=== attempt 1 (", "first try", "RuntimeError: out of memory"]
    order += ["=== attempt 2 (", "second try", "=== attempt 2 finished ==="]
    positions = [text.index(part) for part in order]
    assert positions == sorted(positions), text


def test_an_attempt_killed_by_the_scheduler_survives_in_the_retry_log(tmp_path):
    """scancel ends the job without any cleanup (here: os._exit in a child process)."""
    log = tmp_path / "train.log"
    killed = textwrap.dedent(
        f"""
        import os, sys
        from types import SimpleNamespace
        from sgdconv.workflow import rule_logging
        smk = SimpleNamespace(log=[{str(log)!r}], rule="train", config={{}})
        with rule_logging(smk) as logger:
            logger.info("step 7 of 20")
            sys.stderr.write("epoch 1:  35%|###")  # a progress bar, cut mid-line
            sys.stderr.flush()
            os._exit(143)
        """
    )
    result = subprocess.run([sys.executable, "-c", killed], capture_output=True, text=True)
    assert result.returncode == 143, result.stderr
    snakemake_prepares(log)
    with rule_logging(smk_for(log)) as logger:
        logger.info("resumed from step 7")
    lines = log.read_text().splitlines()
    assert lines[0].startswith("=== attempt 1 (")
    assert "step 7 of 20" in lines[1]
    assert lines[2] == "epoch 1:  35%|###"
    assert lines[3].startswith("=== attempt 2 (")
    assert "resumed from step 7" in lines[4]


def test_after_a_success_the_next_run_of_the_job_starts_at_attempt_1(tmp_path):
    log = tmp_path / "train.log"
    for _ in range(2):
        fail(log)
        snakemake_prepares(log)
    with rule_logging(smk_for(log)):
        pass
    assert attempts(log) == ["1", "2", "3", "3 finished"]
    snakemake_prepares(log)  # e.g. --forcerun: a new run of a job that succeeded
    with rule_logging(smk_for(log)) as logger:
        logger.info("new run")
    assert attempts(log) == ["1", "1 finished"]
    assert "diverged" not in log.read_text()


def test_in_a_slurm_run_a_job_cancelled_after_its_script_keeps_that_attempt(tmp_path, monkeypatch):
    """scancel (or a time limit) while Snakemake checks the outputs: the script finished, the
    job failed, and the same run retries it. A later run of the job starts afresh."""
    log = tmp_path / "train.log"
    in_slurm_job(monkeypatch, "run-a", "351")
    with rule_logging(smk_for(log)) as logger:
        logger.info("trained")
    assert log.read_text().splitlines()[0].endswith(", SLURM job 351) ===")
    snakemake_prepares(log)
    in_slurm_job(monkeypatch, "run-a", "368")
    with rule_logging(smk_for(log)):
        pass
    assert attempts(log) == ["1", "1 finished", "2", "2 finished"]
    assert "=== attempt 1 finished in SLURM run run-a ===" in log.read_text()
    snakemake_prepares(log)
    in_slurm_job(monkeypatch, "run-b", "402")
    with rule_logging(smk_for(log)):
        pass
    assert attempts(log) == ["1", "1 finished"]


def test_the_slurm_run_is_the_job_name_squeue_reports(monkeypatch):
    """Inside the job step SLURM_JOB_NAME is srun's ("python"), not the run's ID: ask squeue."""
    slurm_run = SLURM_RUN.__wrapped__  # without the cache
    assert slurm_run() is None  # outside SLURM
    monkeypatch.setenv("SLURM_JOB_ID", "12345")
    monkeypatch.setenv("SLURM_JOB_NAME", "python")
    replies = {"12345": "0791f209-4163-454d\n"}

    def squeue(command, **kwargs):
        job = command[command.index("--jobs") + 1]
        if job in replies:
            return subprocess.CompletedProcess(command, 0, replies[job], "")
        return subprocess.CompletedProcess(command, 1, "", "Invalid job id specified")

    monkeypatch.setattr(workflow.subprocess, "run", squeue)
    assert slurm_run() == "0791f209-4163-454d"
    monkeypatch.setenv("SLURM_JOB_ID", "999")  # e.g. squeue no longer knows it
    assert slurm_run() is None


def test_handlers_and_stderr_are_restored(tmp_path):
    before = list(logging.getLogger().handlers)
    stderr = sys.stderr
    with rule_logging(smk_for(tmp_path / "a.log")):
        assert sys.stderr is not stderr
    assert sys.stderr is stderr
    assert logging.getLogger().handlers == before
