"""Claims: one table per declared artifact (its claim function on its tidy tables, through
sgdconv.claims.evaluate), then the collected tables/claims.csv and tables/claims.md, and
provenance.json."""

for _artifact in ARTIFACTS.values():

    rule:
        name:
            f"claims_{_artifact.artifact_id}"
        input:
            **_artifact.tables,
        output:
            out(f"tables/claims/{_artifact.artifact_id}.csv"),
        log:
            log(f"claims/{_artifact.artifact_id}.log"),
        benchmark:
            out(f"benchmarks/claims/{_artifact.artifact_id}.tsv")
        # Checking claims reads small tidy tables for a second or two: on a cluster Snakemake
        # runs it itself rather than queue a job that starts Snakemake twice.
        localrule: True
        conda:
            ENV
        resources:
            **SMALL,
        params:
            artifact_id=_artifact.artifact_id,
            claims=_artifact.claims,
            tables=list(_artifact.tables),
            params=_artifact.params,
        script:
            "../scripts/check_claims.py"


rule collect_claims:
    input:
        [out(f"tables/claims/{aid}.csv") for aid in ARTIFACTS],
    output:
        csv=out("tables/claims.csv"),
        md=out("tables/claims.md"),
        # the report shows the table itself (an HTML page), not only a download
        html=report(
            out("tables/claims.html"),
            caption="../report/claims.rst",
            category="claims",
            labels={"table": "claims", "tier": config["name"]},
        ),
    log:
        log("claims/collect.log"),
    conda:
        ENV
    resources:
        **SMALL,
    params:
        tier=config["name"],
    script:
        "../scripts/collect_claims.py"


rule provenance:
    output:
        out("provenance.json"),
    log:
        log("provenance.log"),
    conda:
        ENV
    resources:
        **SMALL,
    params:
        config_sha256=config_hash(config),
    script:
        "../scripts/write_provenance.py"


localrules:
    collect_claims,
    provenance,
