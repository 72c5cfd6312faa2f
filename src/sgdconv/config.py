"""Strict validation of the workflow config against ``workflow/schemas/config.schema.yaml``.

The schema is split into one file per paper or track, joined with relative ``$ref``s. Before
validating we inline those references, so that the schema's ``default`` values are filled in
at every depth (jsonschema's validators do not descend into ``$ref`` when filling defaults).
A failure raises :class:`ConfigError` naming the offending key as a dotted path. A config
that matches the schema then goes through the cross-field checks of
:mod:`sgdconv.config_checks` (values that only fail against each other).
"""

from __future__ import annotations

import copy
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from sgdconv.config_checks import cross_field_problems


class ConfigError(ValueError):
    """The config does not match the schema; ``key`` is the dotted path of the culprit."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"Invalid config: key '{key}': {message}")
        self.key = key


def load_schema(path: str | Path) -> dict[str, Any]:
    """Load a YAML/JSON schema and inline every relative ``$ref`` (``file#/json/pointer``)."""
    path = Path(path).resolve()
    documents: dict[Path, Any] = {}  # every file parsed once, however many $refs point into it
    return _inline(_read(path, documents), path.parent, None, (), documents)


def _read(path: Path, documents: dict[Path, Any]) -> Any:
    if path not in documents:
        # The C loader where PyYAML has one: the schema is parsed once in every Snakemake start.
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        documents[path] = yaml.load(path.read_text(), Loader=loader)
    return documents[path]


def _inline(
    node: Any, base: Path, root: Any, seen: tuple[str, ...], documents: dict[Path, Any]
) -> Any:
    if isinstance(node, list):
        return [_inline(item, base, root, seen, documents) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        ref = node["$ref"]
        file_part, _, pointer = ref.partition("#")
        if ref in seen:
            raise ValueError(f"cyclic $ref {ref}")
        if file_part:
            target_path = (base / file_part).resolve()
            document = _read(target_path, documents)
            target_base = target_path.parent
        else:
            document, target_base = root, base
        target = _resolve_pointer(document, pointer)
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        # A nested "$schema" would make jsonschema switch to a plain validator class for
        # this subtree, which fills no defaults.
        merged.pop("$schema", None)
        return _inline(merged, target_base, document, (*seen, ref), documents)
    root = node if root is None else root
    return {
        key: (value if key == "$defs" else _inline(value, base, root, seen, documents))
        for key, value in node.items()
        if key != "$defs"
    }


def _resolve_pointer(document: Any, pointer: str) -> Any:
    node = {k: v for k, v in document.items() if k != "$schema"}
    for part in filter(None, pointer.split("/")):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return copy.deepcopy(node)


def _with_defaults(validator_class: type) -> type:
    """A validator that fills each missing property that has a ``default``."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, MutableMapping):
            for name, subschema in properties.items():
                if "default" in subschema and name not in instance:
                    instance[name] = copy.deepcopy(subschema["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


_Validator = _with_defaults(jsonschema.Draft202012Validator)


def validate_config(config: MutableMapping[str, Any], schema: dict[str, Any]) -> None:
    """Validate ``config`` in place (filling defaults), then check its values against each
    other; raise :class:`ConfigError` on failure."""
    errors = sorted(_Validator(schema).iter_errors(config), key=lambda e: list(e.absolute_path))
    if not errors:
        _check_cross_fields(config)
        return
    error = jsonschema.exceptions.best_match(errors)
    path = [str(p) for p in error.absolute_path]
    if error.validator == "additionalProperties":
        # jsonschema reports the parent object; name the unknown key itself.
        known = set(error.schema.get("properties", {}))
        unknown = sorted(set(error.instance) - known)
        path += unknown[:1]
    raise ConfigError(".".join(path) or "<top level>", error.message)


def _check_cross_fields(config: MutableMapping[str, Any]) -> None:
    problems = cross_field_problems(config)
    if problems:
        (key, message), *others = problems
        if others:
            message += "; also " + "; ".join(f"{k}: {m}" for k, m in others)
        raise ConfigError(key, message)
