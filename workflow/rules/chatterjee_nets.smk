"""chatterjee_thm41, chatterjee_thm45: the deep networks of Chatterjee (2022), Section 4.
Theorem 4.1 (initialization, local Łojasiewicz certificate, GD to zero loss) and Theorem 4.5
(LeCun initialization: fraction of seeds converging vs n at fixed d/n, Remark 4.8)."""

from sgdconv.chatterjee.workload import cluster_minutes, thm41_work, thm45_work

NETS_THM41 = config["chatterjee"]["thm41"]
NETS_THM45 = config["chatterjee"]["thm45"]


rule simulate_chatterjee_thm41:
    output:
        configs=out("theory/chatterjee_thm41_configs.parquet"),
        curves=out("theory/chatterjee_thm41_curves.parquet"),
        trials=out("theory/chatterjee_thm41_trials.parquet"),
    params:
        settings=NETS_THM41,
        seed=seed_for(4100),
    conda:
        ENV
    log:
        log("simulate/chatterjee_thm41.log"),
    resources:
        mem_mb=2000,
        runtime=cluster_minutes(thm41_work(NETS_THM41)),
    script:
        "../scripts/simulate_chatterjee_thm41.py"


rule simulate_chatterjee_thm45:
    output:
        fractions=out("theory/chatterjee_thm45_fractions.parquet"),
        runs=out("theory/chatterjee_thm45_runs.parquet"),
    params:
        settings=NETS_THM45,
        seed=seed_for(4145),
    conda:
        ENV
    log:
        log("simulate/chatterjee_thm45.log"),
    resources:
        mem_mb=4000,
        runtime=cluster_minutes(thm45_work(NETS_THM45)),
    script:
        "../scripts/simulate_chatterjee_thm45.py"


register_artifact(
    "chatterjee_thm41",
    "chatterjee",
    tables={
        "configs": "theory/chatterjee_thm41_configs.parquet",
        "curves": "theory/chatterjee_thm41_curves.parquet",
        "trials": "theory/chatterjee_thm41_trials.parquet",
    },
    params={"tol": NETS_THM41["tol"], "max_steps": NETS_THM41["max_steps"]},
)

register_artifact(
    "chatterjee_thm45",
    "chatterjee",
    tables={
        "fractions": "theory/chatterjee_thm45_fractions.parquet",
        "runs": "theory/chatterjee_thm45_runs.parquet",
    },
    params={"tol": NETS_THM45["tol"], "max_steps": NETS_THM45["max_steps"]},
)
