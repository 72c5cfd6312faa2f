"""Cross-field checks of the config: values the schema accepts one by one but that cannot work
together stop the run at start-up with a message naming the key.

Each case finds the mapping it edits by the keys it holds (not by its path), so the cases
follow the config's layout."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest
import yaml
from snakemake.utils import update_config

from conftest import ROOT
from sgdconv.config import ConfigError, load_schema, validate_config
from sgdconv.config_checks import cross_field_problems
from sgdconv.zhang.experiments import num_train

SCHEMA = load_schema(ROOT / "workflow" / "schemas" / "config.schema.yaml")


def default_tier() -> dict:
    """config/config.yaml: the default tier, complete."""
    return yaml.safe_load((ROOT / "config" / "config.yaml").read_text())


def mappings(node: Any, path: str = "") -> Iterator[tuple[str, dict]]:
    if isinstance(node, Mapping):
        yield path, node
        for key, value in node.items():
            yield from mappings(value, f"{path}.{key}" if path else key)


def find(config: dict, *keys: str, where: Callable[[dict], bool] = lambda node: True):
    """(path, mapping) of the first mapping holding ``keys`` (and satisfying ``where``)."""
    for path, node in mappings(config):
        if all(k in node for k in keys) and where(node):
            return path, node
    pytest.fail(f"no mapping of the default tier holds {keys}")


def rejected(config: dict) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        validate_config(config, copy.deepcopy(SCHEMA))
    return info.value


def filled() -> dict:
    """The default tier with the schema's defaults filled in (as the checks see it)."""
    config = default_tier()
    validate_config(config, copy.deepcopy(SCHEMA))
    return config


def test_every_tier_passes_the_checks():
    """As Snakemake sees the tiers: each file merged over the default tier."""
    for name in ("test", "paper"):
        config = default_tier()
        update_config(config, yaml.safe_load((ROOT / "config" / f"{name}.yaml").read_text()))
        validate_config(config, copy.deepcopy(SCHEMA))
    assert cross_field_problems(filled()) == []


def test_milestone_beyond_the_epochs():
    config = default_tier()
    path, node = find(config, "milestones", "epochs")
    node.update(epochs=12, milestones=[4, 80])
    error = rejected(config)
    assert error.key == f"{path}.milestones"
    assert str(error).startswith(
        f"Invalid config: key '{path}.milestones': [80] must be < epochs 12"
    )


def test_milestones_out_of_order():
    config = default_tier()
    path, node = find(config, "milestones", "epochs")
    node.update(epochs=12, milestones=[8, 4])
    assert rejected(config).key == f"{path}.milestones"


def test_checkpoint_cadence_longer_than_the_run():
    config = default_tier()
    path, node = find(config, "checkpoint_every", "epochs")
    node.update(checkpoint_every=node["epochs"] + 1)
    error = rejected(config)
    assert error.key == f"{path}.checkpoint_every" and "must be <= epochs" in str(error)


def test_sweep_size_of_one_microbatch():
    config = filled()
    path, node = find(config, "sweep_sizes", "batch_size")
    b = node["batch_size"] // node.get("nproc", 1)
    node["sweep_sizes"] = [b, 4 * b]
    error = rejected(config)
    assert error.key == f"{path}.sweep_sizes"
    assert f"[{b}] hold fewer than 2 micro-batches of {b}" in str(error)


def test_sample_of_one_microbatch():
    config = filled()
    path, node = find(config, "stats", "batch_size")
    b = node["batch_size"] // node.get("nproc", 1)
    node["stats"]["sample_size"] = b + 1
    node.pop("sweep_sizes", None)
    error = rejected(config)
    assert error.key == f"{path}.stats.sample_size"
    assert f"holds 1 micro-batch(es) of {b}" in str(error)


def test_explicit_microbatch_too_large_for_the_sample():
    config = filled()
    path, node = find(config, "stats", "batch_size")
    node.pop("sweep_sizes", None)
    node["stats"].update(microbatch=node["stats"]["sample_size"])
    error = rejected(config)
    assert error.key == f"{path}.stats.sample_size" and ".stats.microbatch" in str(error)


def test_batch_larger_than_the_training_set():
    config = default_tier()
    path, node = find(config, "batch_size", "n")
    node["batch_size"] = node["n"] + 1
    assert rejected(config).key == f"{path}.batch_size"
    config = default_tier()
    path, node = find(config, "batch_size", "dataset", where=lambda n: n["dataset"] == "digits")
    # one more than the examples the run trains on (n_train × the corrupted copies of each)
    node["batch_size"] = num_train(config["zhang"]["vision"], path.rsplit(".", 1)[-1]) + 1
    # every problem is reported (a batch this large also breaks the statistics sample's
    # micro-batches, which may come first); the batch's own line names the data set's size
    message = str(rejected(config))
    assert f"'{path}.batch_size'" in message and "digits.n_train" in message


def test_batch_not_divisible_by_the_processes():
    config = filled()
    path, node = find(config, "batch_size", "nproc")
    node.update(batch_size=10, nproc=4)
    assert rejected(config).key == f"{path}.batch_size"


def test_long_run_shorter_than_the_regular_one_or_at_another_lr():
    config = default_tier()
    path, node = find(config, "long_epochs", "epochs")
    node["long_epochs"] = node["epochs"] - 1
    assert rejected(config).key == f"{path}.long_epochs"
    config = default_tier()
    path, node = find(config, "long_lr", "lrs")
    node["long_lr"] = 0.777
    assert rejected(config).key == f"{path}.long_lr"


def test_sweep_epoch_after_the_run():
    config = filled()
    path, node = find(config, "sweep_epoch", "step")
    node["sweep_epoch"] = node["step"]["epochs"] + 1
    assert rejected(config).key == f"{path}.sweep_epoch"


def test_window_longer_than_the_run():
    config = default_tier()
    path, node = find(config, "window", "steps")
    node["window"] = node["steps"] + 1
    assert rejected(config).key == f"{path}.window"


def test_orthonormal_inputs_need_d_at_least_n():
    config = default_tier()
    path, node = find(config, "d", "n", "inputs", where=lambda n: n["inputs"] == "orthonormal")
    node["d"] = node["n"] - 1
    assert rejected(config).key == f"{path}.d"


def test_several_problems_are_reported_together():
    config = default_tier()
    path, node = find(config, "milestones", "epochs")
    node.update(epochs=12, milestones=[80])
    window_path, window = find(config, "window", "steps")
    window["window"] = window["steps"] + 1
    message = str(rejected(config))
    assert f"{path}.milestones" in message and f"{window_path}.window" in message
