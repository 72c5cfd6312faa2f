"""What parsing the workflow costs on top of Snakemake's own start-up.

Every Snakemake invocation parses the Snakefile: a dry run, a local run, and on a cluster every
job twice (the batch script's ``snakemake`` and the job step's, both started by the SLURM
executor). The baseline is Snakemake's own start-up, importing ``snakemake.api``, which no
workflow can avoid; the measured command is ``snakemake --list-rules`` with a tier's config,
which imports Snakemake, parses the Snakefile and the rule files (and everything they import)
and validates the config, but builds no DAG. Repeated alternately; medians of wall time.

    python benchmarks/bench_workflow_parse.py [--repeats 5] [--quick]

Also lists the heavy packages (torch, scipy, ...) that the parse imports: none is expected
(tests/workflow/test_workflow.py checks it). Writes benchmarks/out/bench_workflow_parse.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "torchvision", "scipy", "matplotlib", "sklearn")
TIERS = ("test", "paper")


def wall(command: list[str]) -> tuple[float, str]:
    """Wall seconds of ``command`` run in the repository root, and its stderr."""
    start = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)
    return time.perf_counter() - start, result.stderr


def heavy_imports(tier: str) -> list[str]:
    """The packages of HEAVY that parsing the workflow with ``tier``'s config imports."""
    command = [sys.executable, "-X", "importtime", "-m", "snakemake", "--list-rules"]
    _, stderr = wall([*command, "--configfile", f"config/{tier}.yaml"])
    imported = {line.rsplit("|", 1)[-1].strip() for line in stderr.splitlines()}
    return sorted(imported & set(HEAVY))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="two repeats")
    args = parser.parse_args(argv)
    repeats = 2 if args.quick else args.repeats

    baseline = [sys.executable, "-c", "import snakemake.api"]
    list_rules = [sys.executable, "-m", "snakemake", "--list-rules", "--configfile"]
    parse = {tier: [*list_rules, f"config/{tier}.yaml"] for tier in TIERS}
    times: dict[str, list[float]] = {"baseline": [], **{tier: [] for tier in TIERS}}
    for _ in range(repeats):  # alternate, so that a change of load hits every command alike
        times["baseline"].append(wall(baseline)[0])
        for tier, command in parse.items():
            times[tier].append(wall(command)[0])
    medians = {name: statistics.median(values) for name, values in times.items()}

    result = {"repeats": repeats, "median_s": medians, "tiers": {}}
    print(f"Snakemake's own start-up (import snakemake.api): {medians['baseline']:.2f} s")
    print("tier    parse (list-rules)   / start-up   parse beyond start-up   heavy imports")
    for tier in TIERS:
        ratio = medians[tier] / medians["baseline"]
        extra = medians[tier] - medians["baseline"]
        heavy = heavy_imports(tier)
        result["tiers"][tier] = {"ratio": ratio, "extra_s": extra, "heavy_imports": heavy}
        print(
            f"{tier:6s}  {medians[tier]:8.2f} s {ratio:17.2f}x {extra:17.2f} s"
            f"   {', '.join(heavy) or 'none'}"
        )
    out = ROOT / "benchmarks" / "out" / "bench_workflow_parse.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
