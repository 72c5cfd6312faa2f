"""Statistics of the registered training runs at their checkpoints (sgdconv.stats through
sgdconv.train.statistics; Zhang et al. eq. (1)-(3), App. A.2):

estimate_stats            one job per checkpoint          runs/<id>/stats/step_<k>.parquet
aggregate_stats           one job per run                 runs/<id>/stats.parquet
estimator_vs_sample_size  one checkpoint of the run        runs/<id>/sample_size_sweep.parquet

The checkpoints a run has are read from its manifest once `train` (a snakemake checkpoint) is
done, so a diverged run simply has fewer statistics jobs. Settings per run come from the run
registry (rules/training.smk).
"""


rule estimate_stats:
    input:
        checkpoint=out("runs/{run_id}/checkpoints/step_{step}.pt"),
        manifest=out("runs/{run_id}/manifest.json"),
        data=lambda wildcards: registered_run(wildcards.run_id)["inputs"],
    output:
        out("runs/{run_id}/stats/step_{step}.parquet"),
    wildcard_constraints:
        step=r"\d+",
    params:
        settings=run_stats_settings,
    log:
        log("stats/{run_id}/step_{step}.log"),
    resources:
        mem_mb=run_stats_resource("mem_mb"),
        runtime=run_stats_resource("runtime"),
        gpu=run_stats_resource("gpu"),
    conda:
        ENV
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
    resources:
        **SMALL,
    conda:
        ENV
    script:
        "../scripts/aggregate_stats.py"


rule estimator_vs_sample_size:
    input:
        checkpoint=run_sweep_checkpoint,
        manifest=out("runs/{run_id}/manifest.json"),
        data=lambda wildcards: registered_run(wildcards.run_id)["inputs"],
    output:
        out("runs/{run_id}/sample_size_sweep.parquet"),
    params:
        settings=run_stats_settings,
    log:
        log("stats/{run_id}/sample_size_sweep.log"),
    resources:
        mem_mb=run_stats_resource("mem_mb"),
        runtime=run_stats_resource("sweep_runtime"),
        gpu=run_stats_resource("gpu"),
    conda:
        ENV
    script:
        "../scripts/estimator_vs_sample_size.py"
