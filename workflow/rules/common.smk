"""Shared pieces of the workflow: config validation, paths, the artifact registry and
target lists. Every other rule file is included after this one."""

import json
from dataclasses import dataclass, field

from snakemake.exceptions import WorkflowError

from sgdconv.config import ConfigError, load_schema, validate_config
from sgdconv.provenance import config_hash


# --- configuration ------------------------------------------------------------------------
# Strict schema validation before any job: unknown keys, wrong types and out-of-range values
# stop the run with a message naming the key; missing keys take the schema's defaults.
try:
    validate_config(config, load_schema(f"{workflow.basedir}/workflow/schemas/config.schema.yaml"))
except ConfigError as error:
    raise WorkflowError(str(error)) from None

RESULTS = f"results/{config['name']}"


def out(path):
    """Path of an output of this tier: results/<name>/<path>."""
    return f"{RESULTS}/{path}"


def log(path):
    return f"{RESULTS}/logs/{path}"


def seed_for(offset):
    """The config seed combined with a fixed per-experiment offset (distinct random streams)."""
    return int(config["seed"]) + int(offset)


def section_hash(*keys):
    """Hash of one config section: a param that re-runs a rule when (only) its settings change."""
    node = config
    for key in keys:
        node = node[key]
    return config_hash(node)[:16]


# --- software -----------------------------------------------------------------------------
# Every rule runs in the project's one environment (the venv `make` builds, or the conda
# environment of environment.yml); `conda:` documents it and serves `--sdm conda`.
ENV = "../../environment.yml"


# --- resources ----------------------------------------------------------------------------
# Memory in MB and runtime in minutes, for cluster executors; partitions/accounts go in profiles.
SMALL = {"mem_mb": 2000, "runtime": 10}


# --- artifact registry --------------------------------------------------------------------


@dataclass
class Artifact:
    """One figure of ARTIFACTS.md: the tidy tables it is drawn from and its claims' settings.

    ``tables`` maps names (as the notebook and the claim function see them) to paths under
    results/<name>/; ``params`` are passed to both the notebook and the claim function.
    """

    artifact_id: str
    paper: str
    tables: dict
    params: dict = field(default_factory=dict)

    @property
    def figure(self):
        return out(f"figures/{self.artifact_id}.png")

    @property
    def targets(self):
        aid = self.artifact_id
        return [
            out(f"figures/{aid}.png"),
            out(f"figures/{aid}.pdf"),
            out(f"notebooks/{aid}.ipynb"),
            out(f"tables/claims/{aid}.csv"),
        ]


ARTIFACTS = {}
PAPERS = ("zhang", "chatterjee", "anlu")


def register_artifact(artifact_id, paper, tables, params=None):
    """Declare an artifact; rules/figures.smk and rules/claims.smk create its rules."""
    if paper not in PAPERS:
        raise ValueError(f"unknown paper {paper!r} for {artifact_id}")
    if not artifact_id.startswith(f"{paper}_"):
        raise ValueError(f"artifact id {artifact_id!r} must start with {paper}_")
    ARTIFACTS[artifact_id] = Artifact(
        artifact_id, paper, {k: out(v) for k, v in tables.items()}, dict(params or {})
    )


def paper_targets(paper):
    return [t for a in ARTIFACTS.values() if a.paper == paper for t in a.targets]


def all_targets():
    return [
        *(t for a in ARTIFACTS.values() for t in a.targets),
        out("tables/claims.csv"),
        out("tables/claims.md"),
        out("provenance.json"),
    ]


def as_json(value):
    """Config values as a JSON string param (stable, hashable, readable in logs)."""
    return json.dumps(value, sort_keys=True)
