"""The vision runs built from each tier's config: the paper tier carries the papers' exact
settings; every tier's specs are valid run specs."""

from __future__ import annotations

import pytest

from conftest import ROOT, tier_config
from sgdconv.config import load_schema, validate_config
from sgdconv.train.spec import RunSpec
from sgdconv.zhang.experiments import constant_lr_views, vision_runs

SEEDS = {"nonint": 1, "nonint_stats": 2, "interp": 3, "interp_stats": 4}
PATHS = {"digits": "d.npz", "imagenet": "i.json", "cifar10": "c.json"}


def tier(name: str) -> dict:
    config = tier_config(name)
    validate_config(config, load_schema(ROOT / "workflow" / "schemas" / "config.schema.yaml"))
    return config


@pytest.mark.parametrize("name", ["test", "config", "paper"])
def test_every_tier_builds_valid_specs(name):
    config = tier(name)
    runs = vision_runs(
        config["zhang"]["vision"], seeds=SEEDS, device=config["compute"]["device"], paths=PATHS
    )
    assert set(runs) >= {"zhang_nonint_step", "zhang_interp_step"}
    for run_id, run in runs.items():
        spec = RunSpec.from_dict({**run["spec"], "run_id": run_id})
        assert spec.batch_size % spec.nproc == 0
    # Fig. 2's views: one per constant lr plus the long run; the long lr's regular view is
    # the long run itself (its first epochs).
    views = constant_lr_views(config["zhang"]["vision"])
    assert [v["run_id"] for v in views if v["run_id"] not in runs] == []
    assert views[-1]["epochs"] > views[0]["epochs"]


def test_paper_tier_has_the_papers_settings():
    config = tier("paper")
    runs = vision_runs(config["zhang"]["vision"], seeds=SEEDS, device="cuda", paths=PATHS)
    step = runs["zhang_nonint_step"]["spec"]
    assert step["model"] == {"name": "resnet101", "num_classes": 1000}
    assert step["data"]["name"] == "imagenet"
    assert (step["batch_size"], step["lr"], step["momentum"], step["weight_decay"]) == (
        256,
        0.1,
        0.9,
        1e-4,
    )
    assert step["epochs"] == 90 and step["schedule"]["milestones"] == [30, 60]
    assert step["schedule"]["gamma"] == 0.1
    constant = {r["lr"]: r["epochs"] for r in runs.values() if r["role"] in ("constant", "long")}
    assert constant == {0.1: 90, 0.01: 300, 0.001: 90}
    assert {v["lr"]: v["epochs"] for v in constant_lr_views(config["zhang"]["vision"])[:-1]} == {
        0.1: 90,
        0.01: 90,
        0.001: 90,
    }
    assert runs["zhang_nonint_step"]["stats"]["sample_size"] == 160_000
    cifar = runs["zhang_interp_step"]["spec"]
    assert cifar["model"] == {"name": "cifar_resnet18", "num_classes": 10}
    assert cifar["data"]["name"] == "cifar10" and "download" not in cifar["data"]
    assert (cifar["batch_size"], cifar["lr"], cifar["momentum"], cifar["weight_decay"]) == (
        128,
        0.1,
        0.9,
        5e-4,
    )
    assert cifar["epochs"] == 200 and cifar["schedule"]["milestones"] == [100, 150]


def test_paper_tier_jobs_ask_for_a_cpu_per_process_and_loader_worker():
    """ImageNet: 8 DDP processes with 8 loader workers each (paper.yaml) need 8 x 9 CPUs; a
    statistics job is one process with its workers; the offline tiers load no workers."""
    runs = vision_runs(tier("paper")["zhang"]["vision"], seeds=SEEDS, device="cuda", paths=PATHS)
    for run_id, run in runs.items():
        imagenet = run["experiment"] == "nonint"
        assert run["resources"]["cpus"] == (8 * (1 + 8) if imagenet else 1 + 4), run_id
        assert run["stats_resources"]["cpus"] == (1 + 8 if imagenet else 1 + 4), run_id
    config = tier("config")
    for run in vision_runs(
        config["zhang"]["vision"], seeds=SEEDS, device="cpu", paths=PATHS
    ).values():
        assert run["resources"]["cpus"] == run["stats_resources"]["cpus"] == 1


def test_long_lr_must_be_one_of_the_lrs():
    config = tier("test")
    vision = config["zhang"]["vision"]
    vision["nonint"]["constant"]["long_lr"] = 0.5
    with pytest.raises(ValueError, match="long_lr"):
        vision_runs(vision, seeds=SEEDS, device="cpu", paths=PATHS)


def test_roles_measure_what_their_artifacts_use():
    config = tier("config")
    runs = vision_runs(config["zhang"]["vision"], seeds=SEEDS, device="cpu", paths=PATHS)
    step = runs["zhang_nonint_step"]["stats"]
    assert step["one_step_draws"] == 0 and step["curvature_directions"] == 0
    assert step.get("eq3", True) is True
    for run in runs.values():
        if run["role"] in ("constant", "long"):
            assert run["stats"]["eq3"] is False and run["stats"]["sweep_sizes"] == []


def test_sweep_sizes_must_include_the_per_checkpoint_sizes():
    config = tier("test")
    vision = config["zhang"]["vision"]
    vision["nonint"]["sweep_sizes"] = [vision["nonint"]["stats"]["sample_size"] * 2, 10**6]
    with pytest.raises(ValueError, match="sweep_sizes"):
        vision_runs(vision, seeds=SEEDS, device="cpu", paths=PATHS)
