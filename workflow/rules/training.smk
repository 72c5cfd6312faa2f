"""The run registry and the `train` rule (the generic training engine, sgdconv.train).

A track registers each training run it needs with `register_run(run_id, spec, stats=...)`;
`train` is one job per run, `runs/<run_id>/{train_log.parquet,manifest.json}`. It is a snakemake
*checkpoint*: the engine itself writes `runs/<run_id>/checkpoints/step_<k>.pt` (not declared
outputs, so snakemake never deletes them when it re-runs a killed, incomplete job: the engine
resumes from the last one), and the statistics rules (rules/stats.smk) read the manifest to fan
out one job per checkpoint that exists (a diverged run simply has fewer).
"""

import json


RUNS = {}


def register_run(run_id, spec, *, stats, inputs=(), resources=None, stats_resources=None):
    """Declare a training run.

    spec: a sgdconv.train.RunSpec as a dict (without run_id): model, data, loss, optimizer,
        schedule, epochs, checkpoint cadence, seed, device, nproc.
    stats: sgdconv.train.statistics.StatsSettings as a dict (sample size, sharpness, ...).
    inputs: files the run reads (e.g. prepared data), produced by other rules.
    resources: mem_mb, runtime (minutes) and gpu of the train job (gpu: processes = GPUs).
    stats_resources: mem_mb, runtime, sweep_runtime and gpu of its statistics jobs.
    """
    if run_id in RUNS:
        raise WorkflowError(f"run {run_id!r} is registered twice")
    resources = {"mem_mb": 2000, "runtime": 30, "gpu": 0, **(resources or {})}
    RUNS[run_id] = {
        "spec": {**spec, "run_id": run_id},
        "stats": dict(stats),
        "inputs": list(inputs),
        "resources": resources,
        "stats_resources": {"mem_mb": 2000, "runtime": 10, "sweep_runtime": 30, "gpu": 0}
        | dict(stats_resources or {}),
    }


def registered_run(run_id):
    try:
        return RUNS[run_id]
    except KeyError:
        raise WorkflowError(
            f"no training run {run_id!r} is registered (known: {sorted(RUNS)})"
        ) from None


def run_file(run_id, name):
    """results/<tier>/runs/<run_id>/<name>"""
    return out(f"runs/{run_id}/{name}")


def run_manifest(run_id):
    """The manifest of a finished `train` job (raises snakemake's IncompleteCheckpointException
    before, which makes the caller's input function wait for the run)."""
    with open(checkpoints.train.get(run_id=run_id).output.manifest) as fh:
        return json.load(fh)


def run_checkpoint_steps(run_id):
    return [c["step"] for c in run_manifest(run_id)["checkpoints"]]


# --- input functions of the statistics rules (rules/stats.smk) ------------------------------


def run_stats_resource(name):
    """Resource `name` of the statistics jobs of a run (an input function)."""
    return lambda wildcards: registered_run(wildcards.run_id)["stats_resources"][name]


def run_stats_settings(wildcards):
    """The StatsSettings dict of a run (a params function)."""
    return registered_run(wildcards.run_id)["stats"]


def run_stats_files(wildcards):
    """One stats table per checkpoint the run has (after `train`)."""
    return [
        run_file(wildcards.run_id, f"stats/step_{step}.parquet")
        for step in run_checkpoint_steps(wildcards.run_id)
    ]


def run_sweep_checkpoint(wildcards):
    """The checkpoint of the sweep: nearest the run's `sweep_epoch` (default: the last)."""
    from sgdconv.train.statistics import sweep_checkpoint

    epoch = registered_run(wildcards.run_id)["stats"].get("sweep_epoch")
    step = sweep_checkpoint(run_manifest(wildcards.run_id), epoch)
    return run_file(wildcards.run_id, f"checkpoints/step_{step}.pt")


def _run_resource(name):
    return lambda wildcards: registered_run(wildcards.run_id)["resources"][name]


checkpoint train:
    input:
        lambda wildcards: registered_run(wildcards.run_id)["inputs"],
    output:
        log=out("runs/{run_id}/train_log.parquet"),
        manifest=out("runs/{run_id}/manifest.json"),
    params:
        spec=lambda wildcards: registered_run(wildcards.run_id)["spec"],
    log:
        log("train/{run_id}.log"),
    benchmark:
        out("benchmarks/train/{run_id}.tsv")
    threads: 1
    resources:
        mem_mb=_run_resource("mem_mb"),
        runtime=_run_resource("runtime"),
        gpu=_run_resource("gpu"),
    conda:
        ENV
    script:
        "../scripts/train.py"
