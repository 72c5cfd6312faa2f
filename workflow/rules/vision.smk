"""The vision track of Zhang et al.: ResNets trained with SGD, their statistics at every
checkpoint, and the artifacts zhang_fig1, fig2, fig5, fig6, fig7, thm43, eq10.

Runs (sgdconv.zhang.experiments): `nonint` (the ImageNet role: a model that cannot fit its
data) with a step schedule and constant learning rates, and `interp` (the CIFAR-10 role: a model
that interpolates) with a step schedule. The data come from zhang.vision.data: ImageNet and
CIFAR-10 from disk (paper tier), or scikit-learn's digits (offline tiers).
"""

from sgdconv.zhang.experiments import constant_lr_views, num_train, vision_runs


VISION = config["zhang"]["vision"]


# --- data -----------------------------------------------------------------------------------


rule prepare_digits:
    output:
        out("data/digits.npz"),
    params:
        n_train=VISION["data"]["digits"]["n_train"],
        seed=seed_for(90),
    log:
        log("data/digits.log"),
    resources:
        **SMALL,
    conda:
        ENV
    script:
        "../scripts/prepare_digits.py"


# ImageNet and CIFAR-10 are read from the configured paths (never declared as inputs, so a dry
# run does not look at them); these jobs check the layout once and fail naming the config key.
rule check_imagenet:
    output:
        out("data/imagenet.json"),
    params:
        root=VISION["data"]["imagenet"]["root"],
        key="zhang.vision.data.imagenet.root",
    log:
        log("data/imagenet.log"),
    resources:
        **SMALL,
    conda:
        ENV
    script:
        "../scripts/check_vision_data.py"


rule check_cifar10:
    output:
        out("data/cifar10.json"),
    params:
        root=VISION["data"]["cifar10"]["root"],
        key="zhang.vision.data.cifar10.root",
        download=VISION["data"]["cifar10"]["download"],
        verify_md5=VISION["data"]["cifar10"]["verify_md5"],
    log:
        log("data/cifar10.log"),
    resources:
        mem_mb=2000,
        runtime=60,
    conda:
        ENV
    script:
        "../scripts/check_vision_data.py"


DATA_FILES = {
    "digits": out("data/digits.npz"),
    "imagenet": out("data/imagenet.json"),
    "cifar10": out("data/cifar10.json"),
}


# --- runs -----------------------------------------------------------------------------------

VISION_RUNS = vision_runs(
    VISION,
    seeds={
        "nonint": seed_for(100),
        "nonint_stats": seed_for(101),
        "interp": seed_for(200),
        "interp_stats": seed_for(201),
    },
    device=config["compute"]["device"],
    paths=DATA_FILES,
)

for _rid, _run in VISION_RUNS.items():
    _exp = VISION[_run["experiment"]]
    _resources = dict(_exp["train_resources"])
    if _run["role"] == "long":
        _resources["runtime"] = _resources["runtime"] * _run["epochs"] // _exp["constant"]["epochs"]
    register_run(
        _rid,
        _run["spec"],
        num_train=num_train(VISION, _run["experiment"]),
        stats=_run["stats"],
        inputs=[DATA_FILES[_exp["dataset"]]],
        resources=_resources,
        stats_resources=_exp["stats_resources"],
    )


STEP = {e: f"zhang_{e}_step" for e in ("nonint", "interp")}
VIEWS = constant_lr_views(VISION)
# The distinct constant-lr runs (the long lr's regular-length view is part of its long run).
CONSTANT_RUNS = [
    {"name": f"run{i}", "run_id": rid, "lr": run["lr"]}
    for i, (rid, run) in enumerate(
        (rid, run) for rid, run in VISION_RUNS.items() if run["role"] in ("constant", "long")
    )
]


# --- derived tables -------------------------------------------------------------------------


rule zhang_thm43_table:
    input:
        **{run["name"]: run_file(run["run_id"], "stats.parquet") for run in CONSTANT_RUNS},
    output:
        out("vision/zhang_thm43.parquet"),
    params:
        runs=CONSTANT_RUNS,
        kind="thm43",
    log:
        log("vision/zhang_thm43.log"),
    resources:
        **SMALL,
    conda:
        ENV
    script:
        "../scripts/vision_table.py"


rule zhang_eq10_table:
    input:
        **{run["name"]: run_file(run["run_id"], "stats.parquet") for run in CONSTANT_RUNS},
    output:
        out("vision/zhang_eq10.parquet"),
    params:
        runs=CONSTANT_RUNS,
        kind="eq10",
    log:
        log("vision/zhang_eq10.log"),
    resources:
        **SMALL,
    conda:
        ENV
    script:
        "../scripts/vision_table.py"


# --- artifacts ------------------------------------------------------------------------------

_NONINT_STEP = VISION["nonint"]["step"]
register_artifact(
    "zhang_fig1",
    "zhang",
    tables={
        "stats": f"runs/{STEP['nonint']}/stats.parquet",
        "train_log": f"runs/{STEP['nonint']}/train_log.parquet",
    },
    params={
        "epochs": _NONINT_STEP["epochs"],
        "milestones": list(_NONINT_STEP["milestones"]),
        "lr": _NONINT_STEP["lr"],
    },
)

register_artifact(
    "zhang_fig2",
    "zhang",
    tables={f"run{i}": f"runs/{v['run_id']}/stats.parquet" for i, v in enumerate(VIEWS)},
    params={
        "views": [
            {
                "table": f"run{i}",
                "run_id": v["run_id"],
                "lr": v["lr"],
                "epochs": v["epochs"],
                "long": v["view"].endswith("_long"),
            }
            for i, v in enumerate(VIEWS)
        ],
    },
)

register_artifact(
    "zhang_fig5",
    "zhang",
    tables={
        "stats": f"runs/{STEP['nonint']}/stats.parquet",
        "train_log": f"runs/{STEP['nonint']}/train_log.parquet",
    },
    params={
        "first_milestone": min(_NONINT_STEP["milestones"]),
        "milestones": list(_NONINT_STEP["milestones"]),
        "momentum": VISION["nonint"]["momentum"],
    },
)

register_artifact(
    "zhang_fig6",
    "zhang",
    tables={"stats": f"runs/{STEP['interp']}/stats.parquet"},
    params={"milestones": list(VISION["interp"]["step"]["milestones"])},
)

register_artifact(
    "zhang_fig7",
    "zhang",
    tables={"sweep": f"runs/{STEP['nonint']}/sample_size_sweep.parquet"},
    params={"chosen_size": VISION["nonint"]["stats"]["sample_size"]},
)

register_artifact(
    "zhang_thm43",
    "zhang",
    tables={"thm43": "vision/zhang_thm43.parquet"},
)

register_artifact(
    "zhang_eq10",
    "zhang",
    tables={"eq10": "vision/zhang_eq10.parquet"},
    params={"momentum": VISION["nonint"]["momentum"]},
)
