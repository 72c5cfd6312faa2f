"""The `train` rule: one job per registered run (the run registry is in rules/common.smk).

A track registers each training run it needs with `register_run(run_id, spec, num_train=...,
stats=...)`; `train` is one job per run, writing `runs/<run_id>/{train_log.parquet,manifest.json}`.
The engine also writes `runs/<run_id>/checkpoints/step_<k>.pt` itself: they are not declared
outputs, so snakemake never deletes them when it re-runs a killed (incomplete) job, and the
engine resumes from the last one. Their steps are planned from the config (the declared size of
the training set, the batch, the epochs and the checkpoint cadence), so the whole DAG, with the
statistics jobs of every checkpoint (rules/stats.smk), is known before anything trains; a run that
diverges writes only a prefix of them, and the statistics of the missing ones are empty.
"""


rule train:
    input:
        lambda wildcards: registered_run(wildcards.run_id)["inputs"],
    output:
        log=out("runs/{run_id}/train_log.parquet"),
        manifest=out("runs/{run_id}/manifest.json"),
    log:
        log("train/{run_id}.log"),
    benchmark:
        out("benchmarks/train/{run_id}.tsv")
    conda:
        ENV
    threads: _run_resource("cpus")
    resources:
        mem_mb=_run_resource("mem_mb"),
        runtime=_run_resource("runtime"),
        gpu=_run_resource("gpu"),
    params:
        spec=lambda wildcards: registered_run(wildcards.run_id)["spec"],
    script:
        "../scripts/train.py"
