"""Statistics of the registered training runs at their checkpoints (sgdconv.stats through
sgdconv.stats.checkpoint_context and its siblings; Zhang et al. eq. (1)-(3), App. A.2):

estimate_stats            compute.checkpoints_per_job     runs/<id>/stats/batch_<first>.parquet
                          checkpoints of a run a job      (+ runs/<id>/stats/step_<k>.parquet)
aggregate_stats           one job per run                 runs/<id>/stats.parquet
estimator_vs_sample_size  a checkpoint of the run         runs/<id>/sample_size_sweep/step_<k>.parquet

The checkpoints are planned from the config (rules/training.smk) and split into the jobs of
`estimate_stats` (sgdconv.stats.jobs.plan_jobs; a job is named by its first step), so the dry
run lists every job. Offline a job takes many checkpoints, which spares a process start-up per
checkpoint; the paper tier takes one, so that a cluster runs them in parallel. A job writes one
table per checkpoint, `step_<k>.parquet`, as soon as it is computed, and their concatenation,
its declared output, last. The per-checkpoint tables and the checkpoints are params, not
inputs or outputs: snakemake must never delete them (a killed job then recomputes only the
checkpoints it had not finished, sgdconv.stats.jobs), and the manifest, an output of `train`,
orders the jobs after it. A run that diverged before a planned checkpoint has an empty
statistics table there. Settings per run come from the run registry.
"""


rule estimate_stats:
    input:
        manifest=out("runs/{run_id}/manifest.json"),
        data=lambda wildcards: registered_run(wildcards.run_id)["inputs"],
    output:
        out("runs/{run_id}/stats/batch_{first}.parquet"),
    log:
        log("stats/{run_id}/batch_{first}.log"),
    benchmark:
        out("benchmarks/stats/{run_id}/batch_{first}.tsv")
    wildcard_constraints:
        first=r"\d+",
    conda:
        ENV
    threads: run_stats_resource("cpus")
    resources:
        mem_mb=run_stats_resource("mem_mb"),
        runtime=stats_job_runtime,
        gpu=run_stats_resource("gpu"),
    params:
        steps=stats_job_steps,
        checkpoints=stats_job_checkpoints,
        tables=stats_job_tables,
        settings=run_stats_settings,
    script:
        "../scripts/estimate_stats.py"


rule aggregate_stats:
    input:
        stats=run_stats_files,
        train_log=out("runs/{run_id}/train_log.parquet"),
        manifest=out("runs/{run_id}/manifest.json"),
    output:
        out("runs/{run_id}/stats.parquet"),
    log:
        log("stats/{run_id}/aggregate.log"),
    benchmark:
        out("benchmarks/stats/{run_id}/aggregate.tsv")
    # Joining a run's tables takes seconds: on a cluster Snakemake runs it itself.
    localrule: True
    conda:
        ENV
    resources:
        **SMALL,
    script:
        "../scripts/aggregate_stats.py"


rule estimator_vs_sample_size:
    input:
        manifest=out("runs/{run_id}/manifest.json"),
        data=lambda wildcards: registered_run(wildcards.run_id)["inputs"],
    output:
        out("runs/{run_id}/sample_size_sweep/step_{step}.parquet"),
    log:
        log("stats/{run_id}/sample_size_sweep_{step}.log"),
    benchmark:
        out("benchmarks/stats/{run_id}/sample_size_sweep_{step}.tsv")
    wildcard_constraints:
        step=r"\d+",
    conda:
        ENV
    threads: run_stats_resource("cpus")
    resources:
        mem_mb=run_stats_resource("mem_mb"),
        runtime=run_stats_resource("sweep_runtime"),
        gpu=run_stats_resource("gpu"),
    params:
        checkpoint=lambda wildcards: run_checkpoint(wildcards.run_id, wildcards.step),
        settings=run_stats_settings,
    script:
        "../scripts/estimator_vs_sample_size.py"
