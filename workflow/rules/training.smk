"""The run registry and the `train` rule (the generic training engine, sgdconv.train).

A track registers each training run it needs with `register_run(run_id, spec, num_train=...,
stats=...)`; `train` is one job per run, writing `runs/<run_id>/{train_log.parquet,manifest.json}`.
The engine also writes `runs/<run_id>/checkpoints/step_<k>.pt` itself: they are not declared
outputs, so snakemake never deletes them when it re-runs a killed (incomplete) job, and the
engine resumes from the last one. Their steps are planned from the config (the declared size of
the training set, the batch, the epochs and the checkpoint cadence), so the whole DAG, one
statistics job per checkpoint (rules/stats.smk), is known before anything trains; a run that
diverges writes only a prefix of them, and the statistics of the missing ones are empty.
"""

from sgdconv.train.spec import RunSpec, nearest_checkpoint, planned_checkpoint_steps


RUNS = {}


def register_run(
    run_id, spec, *, num_train, stats, inputs=(), resources=None, stats_resources=None
):
    """Declare a training run.

    spec: a sgdconv.train.RunSpec as a dict (without run_id and num_train): model, data, loss,
        optimizer, schedule, epochs, checkpoint cadence, seed, device, nproc.
    num_train: the number of training examples the data have (the engine checks it).
    stats: sgdconv.train.statistics.StatsSettings as a dict (sample size, sharpness, ...).
    inputs: files the run reads (e.g. prepared data), produced by other rules.
    resources: mem_mb, runtime (minutes) and gpu of the train job (gpu: processes = GPUs).
    stats_resources: mem_mb, runtime, sweep_runtime and gpu of its statistics jobs.
    """
    if run_id in RUNS:
        raise WorkflowError(f"run {run_id!r} is registered twice")
    full_spec = RunSpec.from_dict({**spec, "run_id": run_id, "num_train": int(num_train)})
    resources = {"mem_mb": 2000, "runtime": 30, "gpu": 0, **(resources or {})}
    RUNS[run_id] = {
        "spec": full_spec.to_dict(),
        "steps": planned_checkpoint_steps(full_spec),
        "steps_per_epoch": int(num_train) // full_spec.batch_size,
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


def run_checkpoint(run_id, step):
    """Where the engine writes the checkpoint of `step` (a param of the statistics jobs)."""
    return run_file(run_id, f"checkpoints/step_{step}.pt")


# --- input functions of the statistics rules (rules/stats.smk) ------------------------------


def run_stats_resource(name):
    """Resource `name` of the statistics jobs of a run (an input function)."""
    return lambda wildcards: registered_run(wildcards.run_id)["stats_resources"][name]


def run_stats_settings(wildcards):
    """The StatsSettings dict of a run (a params function)."""
    return registered_run(wildcards.run_id)["stats"]


def run_stats_files(wildcards):
    """One stats table per planned checkpoint of the run."""
    return [
        run_file(wildcards.run_id, f"stats/step_{step}.parquet")
        for step in registered_run(wildcards.run_id)["steps"]
    ]


def run_sweep_checkpoint(wildcards):
    """The checkpoint of the sweep: the planned one nearest the run's `sweep_epoch` (default:
    the last)."""
    run = registered_run(wildcards.run_id)
    step = nearest_checkpoint(run["steps"], run["steps_per_epoch"], run["stats"].get("sweep_epoch"))
    return run_checkpoint(wildcards.run_id, step)


def _run_resource(name):
    return lambda wildcards: registered_run(wildcards.run_id)["resources"][name]


rule train:
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
