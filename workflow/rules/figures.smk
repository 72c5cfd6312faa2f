"""One papermill rule per declared artifact: tidy tables -> figures/<id>.png|.pdf and the
executed notebook. The figure source is the py:percent script the declaration names
(workflow/notebooks/<id>.py, converted with jupytext); its caption for `snakemake --report` is
workflow/report/<id>.rst."""

for _artifact in ARTIFACTS.values():

    rule:
        name:
            f"figure_{_artifact.artifact_id}"
        input:
            **_artifact.tables,
            notebook=_artifact.notebook,
        output:
            png=report(
                out(f"figures/{_artifact.artifact_id}.png"),
                caption=f"../report/{_artifact.artifact_id}.rst",
                category=_artifact.paper,
                labels={"artifact": _artifact.artifact_id, "tier": config["name"]},
            ),
            pdf=out(f"figures/{_artifact.artifact_id}.pdf"),
            notebook=out(f"notebooks/{_artifact.artifact_id}.ipynb"),
        log:
            log(f"figures/{_artifact.artifact_id}.log"),
        benchmark:
            out(f"benchmarks/figures/{_artifact.artifact_id}.tsv")
        # Plotting small tidy tables takes seconds: on a cluster Snakemake runs it itself rather
        # than queue a job that starts Snakemake twice (README, "Cluster use").
        localrule: True
        conda:
            ENV
        resources:
            **SMALL,
        params:
            tables=list(_artifact.tables),
            params=_artifact.params,
            tier=config["name"],
        script:
            "../scripts/render_figure.py"
