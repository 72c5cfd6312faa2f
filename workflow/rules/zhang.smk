"""Zhang, Li, Sra & Jadbabaie (ICML 2022): every artifact of the paper.

- zhang_fig4: gradient descent on f = 100 sin θ1 sin θ2 (Section 3.4), exact in every tier.
- The vision track: ResNets trained with SGD (rules/training.smk), their statistics at every
  checkpoint (rules/stats.smk), and zhang_fig1, fig2, fig5, fig6, fig7, thm43, eq10. Runs
  (sgdconv.zhang.experiments.vision_runs): `nonint` (the ImageNet role: a model that cannot fit
  its data) with a step schedule and constant learning rates, and `interp` (the CIFAR-10 role: a
  model that interpolates) with a step schedule. Data: ImageNet and CIFAR-10 from disk (paper
  tier) or scikit-learn's digits (offline tiers).
"""

from sgdconv.zhang import claims as zhang_claims
from sgdconv.zhang import sine
from sgdconv.zhang.experiments import constant_lr_views, vision_runs

SYNTHETIC = config["zhang"]["synthetic"]
VISION = config["zhang"]["vision"]


# --- zhang_fig4 -----------------------------------------------------------------------------


rule simulate_zhang_fig4:
    output:
        out("synthetic/zhang_fig4.parquet"),
    log:
        log("simulate/zhang_fig4.log"),
    benchmark:
        out("benchmarks/simulate/zhang_fig4.tsv")
    conda:
        ENV
    resources:
        **SMALL,
    params:
        settings=SYNTHETIC,
    script:
        "../scripts/simulate_zhang_fig4.py"


artifact(
    "zhang_fig4",
    tables={"trajectories": "synthetic/zhang_fig4.parquet"},
    params={
        "lr_converging": SYNTHETIC["lrs"][0],
        "lr_oscillating": SYNTHETIC["lrs"][1],
        "window": SYNTHETIC["window"],
        "amplitude": SYNTHETIC["amplitude"],
    },
    notebook="workflow/notebooks/zhang_fig4.py",
    claims=sine.claims,
)


rule zhang_fig4:
    input:
        ARTIFACTS["zhang_fig4"].targets,


# --- vision data ----------------------------------------------------------------------------


rule prepare_digits:
    output:
        out("data/digits.npz"),
    log:
        log("data/digits.log"),
    benchmark:
        out("benchmarks/data/digits.tsv")
    conda:
        ENV
    resources:
        **SMALL,
    params:
        n_train=VISION["data"]["digits"]["n_train"],
        seed=seed("zhang_digits"),
    script:
        "../scripts/prepare_digits.py"


# ImageNet and CIFAR-10 are read from the configured paths (never declared as inputs, so a dry
# run does not look at them); these jobs check the layout once and fail naming the config key.
rule check_imagenet:
    output:
        out("data/imagenet.json"),
    log:
        log("data/imagenet.log"),
    conda:
        ENV
    resources:
        **SMALL,
    params:
        root=VISION["data"]["imagenet"]["root"],
        key="zhang.vision.data.imagenet.root",
    script:
        "../scripts/check_vision_data.py"


rule check_cifar10:
    output:
        out("data/cifar10.json"),
    log:
        log("data/cifar10.log"),
    conda:
        ENV
    resources:
        mem_mb=2000,
        runtime=60,
    params:
        root=VISION["data"]["cifar10"]["root"],
        key="zhang.vision.data.cifar10.root",
        download=VISION["data"]["cifar10"]["download"],
        verify_md5=VISION["data"]["cifar10"]["verify_md5"],
    script:
        "../scripts/check_vision_data.py"


# --- vision runs (rules/training.smk trains them, rules/stats.smk measures them) ------------

VISION_RUNS = vision_runs(
    VISION,
    seeds={
        "nonint": seed("zhang_nonint"),
        "nonint_stats": seed("zhang_nonint_stats"),
        "interp": seed("zhang_interp"),
        "interp_stats": seed("zhang_interp_stats"),
    },
    device=config["compute"]["device"],
    paths={
        "digits": out("data/digits.npz"),
        "imagenet": out("data/imagenet.json"),
        "cifar10": out("data/cifar10.json"),
    },
)
register_runs(VISION_RUNS)

STEP_RUN = {e: f"zhang_{e}_step" for e in ("nonint", "interp")}
# Fig. 2's columns, by role: lr0.1, lr0.03, ..., lr0.01_long (a view of a run's first epochs).
VIEWS = constant_lr_views(VISION)
# The distinct constant-lr runs, by role (the long lr's regular-length view is part of its
# long run).
CONSTANT_RUNS = [
    {"name": v["view"], "run_id": v["run_id"], "lr": v["lr"]}
    for v in VIEWS
    if VISION_RUNS[v["run_id"]]["epochs"] == v["epochs"]
]


# --- derived tables -------------------------------------------------------------------------


rule zhang_thm43_table:
    input:
        **{run["name"]: run_file(run["run_id"], "stats.parquet") for run in CONSTANT_RUNS},
    output:
        out("vision/zhang_thm43.parquet"),
    log:
        log("vision/zhang_thm43.log"),
    benchmark:
        out("benchmarks/vision/zhang_thm43.tsv")
    conda:
        ENV
    resources:
        **SMALL,
    params:
        runs=CONSTANT_RUNS,
        kind="thm43",
    script:
        "../scripts/vision_table.py"


rule zhang_eq10_table:
    input:
        **{run["name"]: run_file(run["run_id"], "stats.parquet") for run in CONSTANT_RUNS},
    output:
        out("vision/zhang_eq10.parquet"),
    log:
        log("vision/zhang_eq10.log"),
    benchmark:
        out("benchmarks/vision/zhang_eq10.tsv")
    conda:
        ENV
    resources:
        **SMALL,
    params:
        runs=CONSTANT_RUNS,
        kind="eq10",
    script:
        "../scripts/vision_table.py"


# --- vision artifacts -----------------------------------------------------------------------

NONINT_STEP = VISION["nonint"]["step"]
NONINT_STEP_TABLES = {
    "stats": f"runs/{STEP_RUN['nonint']}/stats.parquet",
    "train_log": f"runs/{STEP_RUN['nonint']}/train_log.parquet",
}

artifact(
    "zhang_fig1",
    tables=NONINT_STEP_TABLES,
    params={
        "epochs": NONINT_STEP["epochs"],
        "milestones": list(NONINT_STEP["milestones"]),
        "lr": NONINT_STEP["lr"],
    },
    notebook="workflow/notebooks/zhang_fig1.py",
    claims=zhang_claims.claims_fig1,
)


rule zhang_fig1:
    input:
        ARTIFACTS["zhang_fig1"].targets,


artifact(
    "zhang_fig2",
    tables={v["view"]: f"runs/{v['run_id']}/stats.parquet" for v in VIEWS},
    params={
        "views": [
            {
                "table": v["view"],
                "run_id": v["run_id"],
                "lr": v["lr"],
                "epochs": v["epochs"],
                "long": v["view"].endswith("_long"),
            }
            for v in VIEWS
        ],
    },
    notebook="workflow/notebooks/zhang_fig2.py",
    claims=zhang_claims.claims_fig2,
)


rule zhang_fig2:
    input:
        ARTIFACTS["zhang_fig2"].targets,


artifact(
    "zhang_fig5",
    tables=NONINT_STEP_TABLES,
    params={
        "first_milestone": min(NONINT_STEP["milestones"]),
        "milestones": list(NONINT_STEP["milestones"]),
        "momentum": VISION["nonint"]["momentum"],
    },
    notebook="workflow/notebooks/zhang_fig5.py",
    claims=zhang_claims.claims_fig5,
)


rule zhang_fig5:
    input:
        ARTIFACTS["zhang_fig5"].targets,


artifact(
    "zhang_fig6",
    tables={"stats": f"runs/{STEP_RUN['interp']}/stats.parquet"},
    params={"milestones": list(VISION["interp"]["step"]["milestones"])},
    notebook="workflow/notebooks/zhang_fig6.py",
    claims=zhang_claims.claims_fig6,
)


rule zhang_fig6:
    input:
        ARTIFACTS["zhang_fig6"].targets,


artifact(
    "zhang_fig7",
    tables={"sweep": f"runs/{STEP_RUN['nonint']}/sample_size_sweep.parquet"},
    params={"chosen_size": VISION["nonint"]["stats"]["sample_size"]},
    notebook="workflow/notebooks/zhang_fig7.py",
    claims=zhang_claims.claims_fig7,
)


rule zhang_fig7:
    input:
        ARTIFACTS["zhang_fig7"].targets,


artifact(
    "zhang_thm43",
    tables={"thm43": "vision/zhang_thm43.parquet"},
    notebook="workflow/notebooks/zhang_thm43.py",
    claims=zhang_claims.claims_thm43,
)


rule zhang_thm43:
    input:
        ARTIFACTS["zhang_thm43"].targets,


artifact(
    "zhang_eq10",
    tables={"eq10": "vision/zhang_eq10.parquet"},
    params={"momentum": VISION["nonint"]["momentum"]},
    notebook="workflow/notebooks/zhang_eq10.py",
    claims=zhang_claims.claims_eq10,
)


rule zhang_eq10:
    input:
        ARTIFACTS["zhang_eq10"].targets,
