"""Config validation: the tiers' files are valid, defaults are filled through $ref, and every
kind of mistake names its key."""

from __future__ import annotations

import copy

import pytest
import yaml

from conftest import ROOT
from sgdconv.config import ConfigError, load_schema, validate_config

SCHEMA = load_schema(ROOT / "workflow" / "schemas" / "config.schema.yaml")


def tier(name: str) -> dict:
    return yaml.safe_load((ROOT / "config" / f"{name}.yaml").read_text())


@pytest.mark.parametrize("name", ["test", "config", "paper"])
def test_every_tier_is_valid(name):
    validate_config(tier(name), copy.deepcopy(SCHEMA))


def test_refs_are_inlined_and_defaults_filled_at_depth():
    assert "$ref" not in str(SCHEMA)
    config = tier("test")
    del config["zhang"]["synthetic"]["steps"]
    validate_config(config, SCHEMA)
    assert config["zhang"]["synthetic"]["steps"] == 2000


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
