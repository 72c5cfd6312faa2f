"""Config validation: the tiers' files are valid, defaults are filled through $ref, and every
kind of mistake names its key."""

from __future__ import annotations

import copy

import pytest

from conftest import ROOT, tier_config
from sgdconv.config import ConfigError, load_schema, validate_config

SCHEMA = load_schema(ROOT / "workflow" / "schemas" / "config.schema.yaml")


def tier(name: str) -> dict:
    return tier_config(name)


@pytest.mark.parametrize("name", ["test", "config", "paper"])
def test_every_tier_is_valid(name):
    validate_config(tier(name), copy.deepcopy(SCHEMA))


def test_refs_are_inlined_and_defaults_filled_at_depth():
    assert "$ref" not in str(SCHEMA)
    config = tier("test")
    # an optional key that no tier sets: its default comes from a $ref'd definition
    assert "bn_mode" not in config["zhang"]["vision"]["nonint"]["stats"]
    validate_config(config, SCHEMA)
    assert config["zhang"]["vision"]["nonint"]["stats"]["bn_mode"] == "train"


def test_schema_defaults_do_not_restate_the_default_tier():
    """A default that the default tier overrides wherever it applies is dead text that drifts
    (issue 8): every default of the schema is used by the default tier somewhere (a definition
    shared by two places may be set in one and defaulted in the other)."""
    used: dict[str, set[bool]] = {}

    def walk(schema, config, path):
        for key, sub in (schema.get("properties") or {}).items():
            present = isinstance(config, dict) and key in config
            if "default" in sub and sub["default"] != {}:
                used.setdefault(f"{key}: {sub.get('description')}", set()).add(not present)
            if present:
                walk(sub, config[key], [*path, key])
            elif isinstance(sub.get("default"), dict):  # a defaulted block: its keys are defaults
                walk(sub, sub["default"], [*path, key])

    walk(SCHEMA, tier("config"), [])
    restated = sorted(name for name, uses in used.items() if uses == {False})
    assert not restated, restated


def test_every_property_is_documented():
    def walk(node, path):
        if isinstance(node, dict):
            for key, sub in node.get("properties", {}).items():
                assert "description" in sub or "$comment" in sub or sub.get("type") == "object", (
                    f"{'.'.join([*path, key])} has no description"
                )
                walk(sub, [*path, key])
            if "items" in node:
                walk(node["items"], path)

    walk(SCHEMA, [])


@pytest.mark.parametrize(
    ("edit", "key"),
    [
        (lambda c: c.update(extra=1), "extra"),
        (lambda c: c["zhang"]["synthetic"].update(steps=1.5), "zhang.synthetic.steps"),
        (lambda c: c["zhang"]["synthetic"].update(lrs=[0.1]), "zhang.synthetic.lrs"),
        (lambda c: c.update(seed=-1), "seed"),
        (lambda c: c.update(name="a/b"), "name"),
    ],
)
def test_mistakes_name_the_key(edit, key):
    config = tier("test")
    edit(config)
    with pytest.raises(ConfigError) as info:
        validate_config(config, SCHEMA)
    assert info.value.key == key


@pytest.mark.parametrize("name", ["test", "config", "paper"])
def test_every_tier_builds_its_dag(name):
    """Every key the rule files read is set by the tier or a schema default (a removed default
    shows here as a KeyError while the DAG is built)."""
    from conftest import run_snakemake

    args = [] if name == "config" else ["--configfile", f"config/{name}.yaml"]
    result = run_snakemake(ROOT, "-n", "--quiet", "rules", *args)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
