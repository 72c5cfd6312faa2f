"""Shared pieces of the workflow: config validation, paths, the artifact registry and
target lists. Every other rule file is included after this one."""

from dataclasses import dataclass, field

from snakemake.exceptions import WorkflowError

from sgdconv.config import ConfigError, load_schema, validate_config
from sgdconv.provenance import config_hash
from sgdconv.seeds import seed_for
from sgdconv.stats.jobs import plan_jobs
from sgdconv.train.spec import RunSpec, planned_checkpoint_steps

# --- configuration ------------------------------------------------------------------------
# Strict schema validation before any job: unknown keys, wrong types and out-of-range values
# stop the run with a message naming the key; missing keys take the schema's defaults.
try:
    validate_config(config, load_schema(f"{workflow.basedir}/workflow/schemas/config.schema.yaml"))
except ConfigError as error:
    raise WorkflowError(str(error)) from None

RESULTS = f"results/{config['name']}"


def out(path):
    """Path of an output of this tier: results/<name>/<path>."""
    return f"{RESULTS}/{path}"


def log(path):
    return f"{RESULTS}/logs/{path}"


def seed(stream, extra=0):
    """The seed of a named random stream (the offsets are in sgdconv.seeds.SEED_OFFSETS)."""
    return seed_for(config, stream, extra)


# --- software -----------------------------------------------------------------------------
# Every rule runs in the project's one environment (the venv `make` builds, or the conda
# environment of environment.yml); `conda:` documents it and serves `--sdm conda`.
ENV = "../../environment.yml"


# --- resources ----------------------------------------------------------------------------
# Memory in MB and runtime in minutes, for cluster executors; partitions/accounts go in profiles.
SMALL = {"mem_mb": 2000, "runtime": 10}


# --- artifact registry --------------------------------------------------------------------


@dataclass
class Artifact:
    """One artifact of docs/ARTIFACTS.md, declared once in its paper's rule file.

    ``tables`` maps names (as the notebook and the claim function see them) to paths under
    results/<name>/; ``params`` go unchanged to the notebook (its ``params`` parameter) and to
    the claim function; ``notebook`` is the py:percent figure source; ``claims`` the claim
    function, ``(tables, params) -> list[Claim]``, named as ``"module:function"``.
    """

    artifact_id: str
    paper: str
    tables: dict
    params: dict
    notebook: str
    claims: str

    @property
    def targets(self):
        aid = self.artifact_id
        return [
            out(f"figures/{aid}.png"),
            out(f"figures/{aid}.pdf"),
            out(f"notebooks/{aid}.ipynb"),
            out(f"tables/claims/{aid}.csv"),
        ]


ARTIFACTS = {}
PAPERS = ("zhang", "chatterjee", "anlu")


def artifact(artifact_id, *, tables, notebook, claims, params=None):
    """Declare an artifact: rules/figures.smk and rules/claims.smk create its `figure_<id>` and
    `claims_<id>` rules; `rule <id>` (in the paper's rule file) builds both.

    claims: the claim function itself (imported in the rule file, so go-to-definition works).
    """
    paper = artifact_id.split("_", 1)[0]
    if paper not in PAPERS:
        raise WorkflowError(f"artifact id {artifact_id!r} must start with one of {PAPERS}")
    if artifact_id in ARTIFACTS:
        raise WorkflowError(f"artifact {artifact_id!r} is declared twice")
    ARTIFACTS[artifact_id] = Artifact(
        artifact_id,
        paper,
        {k: out(v) for k, v in tables.items()},
        dict(params or {}),
        notebook,
        f"{claims.__module__}:{claims.__qualname__}",
    )
    return ARTIFACTS[artifact_id].targets


def paper_targets(paper):
    return [t for a in ARTIFACTS.values() if a.paper == paper for t in a.targets]


def all_targets():
    return [
        *(t for a in ARTIFACTS.values() for t in a.targets),
        out("tables/claims.csv"),
        out("tables/claims.md"),
        out("provenance.json"),
    ]


# --- run registry (rules/training.smk, rules/stats.smk) --------------------------------------
# A track registers each training run it needs; `train` is one job per run, and the statistics
# rules plan the run's checkpoints from its spec, `compute.checkpoints_per_job` of them a job.

RUNS = {}


def register_runs(runs):
    """Declare training runs: ``run_id -> {"spec", "num_train", "stats", "inputs",
    "resources", "stats_resources"}``, as the experiment functions in src/ build them
    (sgdconv.zhang.experiments.vision_runs, sgdconv.anlu.noise.noise_runs).

    spec: a sgdconv.train.RunSpec as a dict (without run_id and num_train).
    num_train: the number of training examples the data have (the engine checks it).
    stats: sgdconv.stats.checkpoint_context.StatsSettings as a dict.
    inputs: files the run reads (e.g. prepared data), produced by other rules.
    resources: mem_mb, runtime (minutes), gpu (processes = GPUs) and cpus (the rule's threads:
    processes and their data-loading workers) of the train job.
    stats_resources: mem_mb, runtime (of one checkpoint's statistics), sweep_runtime, gpu and
    cpus of its statistics jobs.
    """
    for run_id, run in runs.items():
        if run_id in RUNS:
            raise WorkflowError(f"run {run_id!r} is registered twice")
        num_train = int(run["num_train"])
        spec = RunSpec.from_dict({**run["spec"], "run_id": run_id, "num_train": num_train})
        steps = planned_checkpoint_steps(spec)
        RUNS[run_id] = {
            "spec": spec.to_dict(),
            "steps": steps,
            # the checkpoints of each estimate_stats job, by the job's first step
            "stats_jobs": {
                job[0]: job for job in plan_jobs(steps, config["compute"]["checkpoints_per_job"])
            },
            "steps_per_epoch": num_train // spec.batch_size,
            "stats": dict(run["stats"]),
            "inputs": list(run.get("inputs", ())),
            "resources": {"mem_mb": 2000, "runtime": 30, "gpu": 0, "cpus": 1}
            | dict(run.get("resources", {})),
            "stats_resources": {
                "mem_mb": 2000,
                "runtime": 10,
                "sweep_runtime": 30,
                "gpu": 0,
                "cpus": 1,
            }
            | dict(run.get("stats_resources", {})),
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


def stats_job_steps(wildcards):
    """The checkpoint steps of the estimate_stats job of a run that starts at `first`."""
    jobs = registered_run(wildcards.run_id)["stats_jobs"]
    try:
        return jobs[int(wildcards.first)]
    except KeyError:
        raise WorkflowError(
            f"no statistics job of run {wildcards.run_id!r} starts at step {wildcards.first} "
            f"(jobs start at {sorted(jobs)})"
        ) from None


def stats_job_checkpoints(wildcards):
    """The checkpoints of an estimate_stats job (a param: the engine writes them)."""
    return [run_checkpoint(wildcards.run_id, step) for step in stats_job_steps(wildcards)]


def stats_job_tables(wildcards):
    """Where an estimate_stats job writes the table of each of its checkpoints (a param: they
    outlive a killed job, see sgdconv.stats.jobs)."""
    steps = stats_job_steps(wildcards)
    return [run_file(wildcards.run_id, f"stats/step_{step}.parquet") for step in steps]


def stats_job_runtime(wildcards):
    """Minutes of an estimate_stats job: the run's per-checkpoint runtime times its checkpoints."""
    per_checkpoint = registered_run(wildcards.run_id)["stats_resources"]["runtime"]
    return per_checkpoint * len(stats_job_steps(wildcards))


def run_stats_settings(wildcards):
    """The StatsSettings dict of a run (a params function)."""
    return registered_run(wildcards.run_id)["stats"]


def run_stats_files(wildcards):
    """The output of each estimate_stats job of the run (its checkpoints' rows)."""
    return [
        run_file(wildcards.run_id, f"stats/batch_{first}.parquet")
        for first in registered_run(wildcards.run_id)["stats_jobs"]
    ]


def _run_resource(name):
    return lambda wildcards: registered_run(wildcards.run_id)["resources"][name]
