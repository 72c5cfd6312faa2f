"""Claims: one table per artifact (computed by sgdconv.claims from its tidy tables), then the
collected tables/claims.csv and tables/claims.md, and provenance.json."""

for _artifact in ARTIFACTS.values():

    rule:
        name:
            f"claims_{_artifact.artifact_id}"
        input:
            **_artifact.tables,
        output:
            out(f"tables/claims/{_artifact.artifact_id}.csv"),
        params:
            artifact_id=_artifact.artifact_id,
            tables=list(_artifact.tables),
            settings=_artifact.params,
        conda:
            ENV
        log:
            log(f"claims/{_artifact.artifact_id}.log"),
        resources:
            **SMALL,
        script:
            "../scripts/check_claims.py"


rule collect_claims:
    input:
        [out(f"tables/claims/{aid}.csv") for aid in ARTIFACTS],
    output:
        csv=report(
            out("tables/claims.csv"),
            caption="../report/claims.rst",
            category="claims",
        ),
        md=out("tables/claims.md"),
    params:
        tier=config["name"],
    conda:
        ENV
    log:
        log("claims/collect.log"),
    resources:
        **SMALL,
    script:
        "../scripts/collect_claims.py"


rule provenance:
    output:
        out("provenance.json"),
    params:
        config_sha256=config_hash(config),
    conda:
        ENV
    log:
        log("provenance.log"),
    resources:
        **SMALL,
    script:
        "../scripts/write_provenance.py"


localrules:
    collect_claims,
    provenance,
