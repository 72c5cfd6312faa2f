"""One papermill rule per registered artifact: tidy tables -> figures/<id>.png|.pdf and the
executed notebook. The notebook is workflow/notebooks/<id>.ipynb; its caption for
`snakemake --report` is workflow/report/<id>.rst."""

for _artifact in ARTIFACTS.values():

    rule:
        name:
            f"figure_{_artifact.artifact_id}"
        input:
            **_artifact.tables,
            notebook=f"workflow/notebooks/{_artifact.artifact_id}.ipynb",
        output:
            png=report(
                out(f"figures/{_artifact.artifact_id}.png"),
                caption=f"../report/{_artifact.artifact_id}.rst",
                category=_artifact.paper,
                labels={"artifact": _artifact.artifact_id, "tier": config["name"]},
            ),
            pdf=out(f"figures/{_artifact.artifact_id}.pdf"),
            notebook=out(f"notebooks/{_artifact.artifact_id}.ipynb"),
        params:
            tables=list(_artifact.tables),
            settings=_artifact.params,
            tier=config["name"],
        conda:
            ENV
        log:
            log(f"figures/{_artifact.artifact_id}.log"),
        resources:
            **SMALL,
        script:
            "../scripts/render_figure.py"

    # `snakemake <artifact_id>` builds the figure and checks its claims.
    rule:
        name:
            _artifact.artifact_id
        input:
            _artifact.targets,
        default_target: False
