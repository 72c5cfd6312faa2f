"""Where the job time of a finished workflow run goes: process start-up against computation.

Not a ``bench_*`` script (``run_all.py`` skips it): it reads the logs of a workflow run that
already happened, e.g. the default tier's::

    .venv/bin/snakemake --cores 2                         # the run to measure (a fresh results/)
    .venv/bin/python benchmarks/workflow_timing.py        # its newest .snakemake/log/*.log

For every job of the Snakemake log (``[time]`` + ``rule <name>:`` ... ``Finished jobid: <n>``)
it takes

- the job time: the ``s`` column of the job's ``benchmark:`` file where the rule has one (ms
  resolution), else finish − start in the Snakemake log (1 s resolution);
- the start-up: from the job's start in the Snakemake log to the first line its script writes,
  the ``=== attempt N (time, host) ===`` header of :func:`sgdconv.workflow.rule_logging`, which
  every rule script enters after its imports. It covers the interpreter, Snakemake's script
  preamble and the imports (torch, sgdconv). Both times have 1 s resolution, so one job's
  value is ±1 s, but the errors cancel in sums over many jobs;
- the warm-up of a statistics job: what its first checkpoint takes beyond the median of the
  others (``step <k>: <s> s`` lines of sgdconv.stats.jobs), i.e. imports done lazily on first
  use (building the first torch.optim optimizer imports torch._dynamo, seconds on a CPU) and
  caches filled; a start-up cost too, which the header does not see;

and prints, per rule and in total, the jobs, job-seconds, start-up (+ warm-up) seconds and
their share of the job time, and the run's wall time (first job start to last job end). With
``--imports N`` it also times, N times in fresh interpreters, the imports of the statistics
script ``workflow/scripts/estimate_stats.py`` alone: the start-up of a statistics job, to
second resolution's cross-check. Writes ``benchmarks/out/workflow_timing.json``.
"""

from __future__ import annotations

import argparse
import ast
import datetime as dt
import json
import re
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STATS_SCRIPT = ROOT / "workflow" / "scripts" / "estimate_stats.py"

_STAMP = re.compile(r"^\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]$")
_RULE = re.compile(r"^(?:local)?rule (\S+):$")
_FIELD = re.compile(r"^\s+(jobid|log|benchmark): (.*)$")
_FINISHED = re.compile(r"^Finished (?:jobid: |job )(\d+)")
_HEADER = re.compile(r"^=== attempt \d+ \((\S+), ", flags=re.MULTILINE)
_STEP_TIME = re.compile(r" step \d+: (\d+(?:\.\d+)?) s$", flags=re.MULTILINE)


@dataclass
class Job:
    rule: str
    jobid: int
    start: dt.datetime
    end: dt.datetime | None = None
    log: str | None = None
    benchmark: str | None = None
    seconds: float | None = None  # job time
    startup: float | None = None  # process start-up (None: no rule_logging header found)
    warmup: float = 0.0  # a statistics job's first checkpoint beyond the others' median


def parse_snakemake_log(text: str) -> list[Job]:
    """The jobs of a Snakemake log, with start, finish, log and benchmark paths."""
    jobs: dict[int, Job] = {}
    pending: Job | None = None
    stamp: dt.datetime | None = None
    for line in text.splitlines():
        if m := _STAMP.match(line):
            stamp = dt.datetime.strptime(" ".join(m.group(1).split()), "%a %b %d %H:%M:%S %Y")
            pending = None
        elif (m := _RULE.match(line)) and stamp is not None:
            pending = Job(m.group(1), -1, stamp)
        elif pending is not None and (m := _FIELD.match(line)):
            key, value = m.groups()
            if key == "jobid":
                pending.jobid = int(value)
                jobs[pending.jobid] = pending
            else:
                setattr(pending, key, value.split(", ")[0])
        elif (m := _FINISHED.match(line)) and stamp is not None:
            job = jobs.get(int(m.group(1)))
            if job is not None:
                job.end = stamp
    return [job for job in jobs.values() if job.end is not None]


def attempt_after(log_text: str, start: dt.datetime) -> tuple[dt.datetime, str] | None:
    """The first attempt whose header is at or after ``start`` (a log keeps the attempts of
    earlier runs of the job): its time, as naive local time like the Snakemake log's, and its
    text."""
    headers = list(_HEADER.finditer(log_text))
    for i, m in enumerate(headers):
        when = dt.datetime.fromisoformat(m.group(1)).replace(tzinfo=None)
        if when >= start:
            end = headers[i + 1].start() if i + 1 < len(headers) else len(log_text)
            return when, log_text[m.start() : end]
    return None


def warmup_seconds(attempt_text: str) -> float:
    """The first checkpoint's time beyond the median of the others' (0 with fewer than 2)."""
    times = [float(t) for t in _STEP_TIME.findall(attempt_text)]
    if len(times) < 2:
        return 0.0
    return max(times[0] - statistics.median(times[1:]), 0.0)


def benchmark_seconds(path: Path) -> float | None:
    try:
        header, values, *_ = path.read_text().splitlines()
    except (FileNotFoundError, ValueError):
        return None
    row = dict(zip(header.split("\t"), values.split("\t"), strict=False))
    try:
        return float(row["s"])
    except (KeyError, ValueError):
        return None


def measure(jobs: list[Job], workdir: Path) -> None:
    """Fill in each job's time and start-up from its benchmark file and its log."""
    for job in jobs:
        assert job.end is not None
        bench = benchmark_seconds(workdir / job.benchmark) if job.benchmark else None
        job.seconds = bench if bench is not None else (job.end - job.start).total_seconds()
        if job.log:
            try:
                text = (workdir / job.log).read_text(errors="replace")
            except FileNotFoundError:
                continue
            attempt = attempt_after(text, job.start)
            if attempt is not None and attempt[0] <= job.end:
                job.startup = min((attempt[0] - job.start).total_seconds(), job.seconds)
                job.warmup = warmup_seconds(attempt[1])


def summarize(jobs: list[Job]) -> dict:
    """Per rule (figure_<id> and claims_<id> pooled) and in total: jobs, job-seconds, start-up
    and warm-up seconds over the jobs with a header, and their share of those jobs' time."""
    groups: dict[str, list[Job]] = defaultdict(list)
    for job in jobs:
        groups[re.sub(r"^(figure|claims)_.*", r"\1_<id>", job.rule)].append(job)
    groups["TOTAL"] = list(jobs)

    def row(members: list[Job]) -> dict:
        timed = [j for j in members if j.startup is not None]
        job_s = sum(j.seconds or 0.0 for j in members)
        timed_s = sum(j.seconds or 0.0 for j in timed)
        startup = sum(j.startup for j in timed)  # type: ignore[misc]
        warmup = sum(j.warmup for j in timed)
        return {
            "jobs": len(members),
            "job_s": round(job_s, 1),
            "with_header": len(timed),
            "startup_s": round(startup, 1),
            "warmup_s": round(warmup, 1),
            "startup_share": round(startup / timed_s, 3) if timed_s else None,
            "startup_warmup_share": round((startup + warmup) / timed_s, 3) if timed_s else None,
        }

    starts = [j.start for j in jobs]
    ends = [j.end for j in jobs if j.end is not None]
    wall = (max(ends) - min(starts)).total_seconds() if jobs else 0.0
    return {"rules": {name: row(members) for name, members in groups.items()}, "wall_s": wall}


def import_statement(script: Path) -> str:
    """The module-level imports of a rule script, as one line of Python."""
    tree = ast.parse(script.read_text())
    nodes = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    return "; ".join(ast.unparse(n) for n in nodes)


def time_imports(script: Path, repeat: int) -> list[float]:
    """Wall seconds of a fresh interpreter running only the script's imports, ``repeat`` times."""
    code = import_statement(script)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
        times.append(time.perf_counter() - t0)
    return times


def newest_log(workdir: Path) -> Path:
    logs = sorted((workdir / ".snakemake" / "log").glob("*.snakemake.log"))
    if not logs:
        raise SystemExit(f"no Snakemake log under {workdir / '.snakemake' / 'log'}")
    return logs[-1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, default=ROOT, help="where snakemake ran")
    parser.add_argument("--log", type=Path, help="Snakemake log (default: the newest)")
    parser.add_argument("--imports", type=int, default=3, help="timings of the stats imports")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/out/workflow_timing.json")
    args = parser.parse_args(argv)

    log = args.log or newest_log(args.workdir)
    jobs = parse_snakemake_log(log.read_text(errors="replace"))
    measure(jobs, args.workdir)
    summary = summarize(jobs)
    summary["log"] = str(log)
    if args.imports > 0:
        times = time_imports(STATS_SCRIPT, args.imports)
        summary["stats_imports_s"] = {"min": min(times), "median": statistics.median(times)}

    print(f"{log}: {len(jobs)} jobs, wall {summary['wall_s'] / 60:.1f} min")
    print(
        f"{'rule':<24}{'jobs':>6}{'job-s':>9}{'start-up s':>12}{'share':>7}"
        f"{'warm-up s':>11}{'both':>7}"
    )

    def percent(x: float | None) -> str:
        return "" if x is None else f"{100 * x:.0f}%"

    for name, r in sorted(summary["rules"].items(), key=lambda kv: (kv[0] == "TOTAL", kv[0])):
        print(
            f"{name:<24}{r['jobs']:>6}{r['job_s']:>9.0f}{r['startup_s']:>12.0f}"
            f"{percent(r['startup_share']):>7}{r['warmup_s']:>11.0f}"
            f"{percent(r['startup_warmup_share']):>7}"
        )
    if "stats_imports_s" in summary:
        s = summary["stats_imports_s"]
        print(f"imports of estimate_stats.py alone: {s['median']:.2f} s (min {s['min']:.2f} s)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    summary["jobs"] = [
        {k: (str(v) if isinstance(v, dt.datetime) else v) for k, v in asdict(j).items()}
        for j in jobs
    ]
    args.out.write_text(json.dumps(summary, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
