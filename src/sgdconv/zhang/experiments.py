"""The training runs of the vision track, as run specs built from the ``zhang.vision`` config.

Two experiments (Zhang et al. Section 2-3 and Appendix A.1):

* ``nonint`` (the ImageNet role: a model that cannot fit its data) — a step-schedule run
  (Figs. 1, 5, 7) and constant-lr runs (Fig. 2, Thm. 4.3, eq. (10)); the longer run at
  ``long_lr`` is the continuation of the regular-length run at that lr (the paper "continues the
  second row experiment for 300 epochs"): one run of ``long_epochs`` whose first ``epochs``
  epochs are the regular-length run (same seed, same data order, constant lr: identical);
* ``interp`` (the CIFAR-10 role: a model that interpolates) — a step-schedule run (Fig. 6).

Every run of an experiment shares its initialization and data order (one seed), so the runs of
Fig. 2 differ only in the learning rate.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: in_channels, num_classes of each data set.
DATASET_SHAPES = {"digits": (1, 10), "imagenet": (3, 1000), "cifar10": (3, 10)}


def run_id(experiment: str, role: str, lr: float | None = None) -> str:
    """Stable run ids: ``zhang_nonint_step``, ``zhang_nonint_lr0.1``, ``zhang_nonint_lr0.01_long``,
    ``zhang_interp_step``."""
    if role == "step":
        return f"zhang_{experiment}_step"
    suffix = "_long" if role == "long" else ""
    return f"zhang_{experiment}_lr{lr:g}{suffix}"


def data_spec(
    vision: Mapping[str, Any], experiment: str, paths: Mapping[str, str]
) -> dict[str, Any]:
    """The ``data`` entry of the run specs of ``experiment`` (``nonint`` or ``interp``)."""
    exp = vision[experiment]
    dataset = exp["dataset"]
    cfg = vision["data"][dataset]
    key = f"zhang.vision.data.{dataset}"
    if dataset == "digits":
        corruption = exp["corruption"]
        return {
            "name": "digits",
            "path": paths["digits"],
            "key": f"{key} (prepared file {paths['digits']})",
            "shift": int(corruption["shift"]),
            "noise_std": float(corruption["noise_std"]),
            "fresh": bool(corruption["fresh"]),
            "corruption_seed": int(corruption["seed"]),
            "copies": int(corruption.get("copies", 1)),
        }
    if dataset == "imagenet":
        return {
            "name": "imagenet",
            "root": cfg["root"],
            "key": f"{key}.root",
            "workers": int(cfg["workers"]),
            "crop": int(cfg["crop"]),
            "resize": int(cfg["resize"]),
        }
    if dataset == "cifar10":
        return {
            "name": "cifar10",
            "root": cfg["root"],
            "key": f"{key}.root",
            "workers": int(cfg["workers"]),
            "augment": bool(exp.get("augment", True)),
        }
    raise ValueError(f"unknown dataset {dataset!r} for zhang.vision.{experiment}")


#: CIFAR-10 has 50,000 training images.
CIFAR10_TRAIN = 50_000


def num_train(vision: Mapping[str, Any], experiment: str) -> int:
    """The number of training examples of ``experiment``'s data, from the config (the
    workflow plans the checkpoints from it; the engine checks it against the data)."""
    exp = vision[experiment]
    dataset = exp["dataset"]
    if dataset == "digits":
        return int(vision["data"]["digits"]["n_train"]) * int(exp["corruption"].get("copies", 1))
    if dataset == "imagenet":
        return int(vision["data"]["imagenet"]["num_train"])
    if dataset == "cifar10":
        return CIFAR10_TRAIN
    raise ValueError(f"unknown dataset {dataset!r} for zhang.vision.{experiment}")


def model_spec(vision: Mapping[str, Any], experiment: str) -> dict[str, Any]:
    exp = vision[experiment]
    in_channels, num_classes = DATASET_SHAPES[exp["dataset"]]
    model = dict(exp["model"])
    name = model["name"]
    if name == "small_resnet":
        spec = {"name": name, "channels": list(model["channels"]), "in_channels": in_channels}
        if model.get("strides"):
            spec["strides"] = list(model["strides"])
        return {**spec, "num_classes": num_classes}
    return {"name": name, "num_classes": num_classes}


def _base(vision, experiment, paths, seed, device) -> dict[str, Any]:
    exp = vision[experiment]
    return {
        "model": model_spec(vision, experiment),
        "data": data_spec(vision, experiment, paths),
        "loss": "cross_entropy",
        "batch_size": int(exp["batch_size"]),
        "momentum": float(exp["momentum"]),
        "weight_decay": float(exp["weight_decay"]),
        "seed": int(seed),
        "device": device,
        "nproc": int(exp["nproc"]),
    }


#: What each role's artifacts use, and so what its statistics jobs compute: the step runs feed
#: Figs. 1, 5, 6 and 7 (eq. (3), no one-step change or curvature), the constant-lr runs Fig. 2,
#: Thm. 4.3 and eq. (10) (the one-step change and the curvature of eq. (10), no eq. (3)).
ROLE_STATS = {
    "step": {"one_step_draws": 0, "curvature_directions": 0},
    "constant": {"eq3": False},
}


def role_stats(stats: Mapping[str, Any], role: str) -> dict[str, Any]:
    """The statistics settings of a run of ``role`` (``step`` or ``constant``, the long run
    included): the experiment's ``stats`` with what the role's artifacts do not use switched
    off (:data:`ROLE_STATS`)."""
    return {**stats, **ROLE_STATS[role]}


def check_sweep_sizes(exp: Mapping[str, Any]) -> None:
    """Fig. 7's claim compares the estimates at the sizes the per-checkpoint statistics use
    (``stats.sample_size``, ``stats.sharpness_sample_size``) with those at the largest size:
    both must be swept sizes, below the largest."""
    sizes = sorted(int(m) for m in exp.get("sweep_sizes", []))
    if not sizes:
        return
    stats = exp["stats"]
    for key in ("sample_size", "sharpness_sample_size"):
        size = stats.get(key)
        if size is not None and (int(size) not in sizes or int(size) >= sizes[-1]):
            raise ValueError(
                f"zhang.vision.nonint.sweep_sizes {sizes} must include stats.{key} = {size} "
                "below its largest size (Fig. 7 tests the change from it to the largest)"
            )


def vision_runs(
    vision: Mapping[str, Any],
    *,
    seeds: Mapping[str, int],
    device: str,
    paths: Mapping[str, str],
) -> dict[str, dict[str, Any]]:
    """All runs of the vision track: ``run_id -> {"spec", "stats", "experiment", "role",
    "lr", "epochs", "num_train", "inputs", "resources", "stats_resources"}`` (what the
    workflow's run registry takes).

    ``seeds``: ``nonint``, ``interp`` (training) and ``nonint_stats``, ``interp_stats``;
    ``paths``: the file each data set's runs depend on (``digits``, ``imagenet``, ``cifar10``).
    """
    runs: dict[str, dict[str, Any]] = {}
    check_sweep_sizes(vision["nonint"])
    for experiment in ("nonint", "interp"):
        exp = vision[experiment]
        base = _base(vision, experiment, paths, seeds[experiment], device)
        stats = {
            **{k: v for k, v in exp["stats"].items()},
            "seed": int(seeds[f"{experiment}_stats"]),
        }
        step = exp["step"]
        rid = run_id(experiment, "step")
        runs[rid] = {
            "spec": {
                **base,
                "lr": float(step["lr"]),
                "epochs": int(step["epochs"]),
                "schedule": {
                    "name": "step",
                    "milestones": [int(m) for m in step["milestones"]],
                    "gamma": float(step["gamma"]),
                },
                "checkpoint_every": float(step["checkpoint_every"]),
            },
            "stats": {
                **role_stats(stats, "step"),
                "sweep_sizes": [int(s) for s in exp.get("sweep_sizes", [])],
                "sweep_epoch": exp.get("sweep_epoch"),
            },
            "experiment": experiment,
            "role": "step",
            "lr": float(step["lr"]),
            "epochs": int(step["epochs"]),
        }
        if experiment != "nonint":
            continue
        constant = exp["constant"]
        long_lr = float(constant["long_lr"])
        if long_lr not in [float(lr) for lr in constant["lrs"]]:
            raise ValueError("zhang.vision.nonint.constant.long_lr must be one of its lrs")
        for lr in constant["lrs"]:
            lr = float(lr)
            long = lr == long_lr
            epochs = int(constant["long_epochs"] if long else constant["epochs"])
            runs[run_id(experiment, "long" if long else "constant", lr)] = {
                "spec": {
                    **base,
                    "lr": lr,
                    "epochs": epochs,
                    "schedule": {"name": "constant"},
                    "checkpoint_every": float(constant["checkpoint_every"]),
                },
                "stats": {**role_stats(stats, "constant"), "sweep_sizes": []},
                "experiment": experiment,
                "role": "long" if long else "constant",
                "lr": lr,
                "epochs": epochs,
            }
    for run in runs.values():
        _add_resources(run, vision, paths)
    return runs


def _add_resources(run: dict[str, Any], vision: Mapping[str, Any], paths: Mapping[str, str]):
    """What the workflow's run registry needs beside the spec: resources, data size, inputs."""
    exp = vision[run["experiment"]]
    resources = dict(exp["train_resources"])
    if run["role"] == "long":  # the long run's time request scales with its epochs
        resources["runtime"] = resources["runtime"] * run["epochs"] // exp["constant"]["epochs"]
    # The CPUs a job asks for (the rule's threads: --cpus-per-task on SLURM): every training
    # process and each of its data-loading workers, so that ImageNet's 8 processes x 8 workers
    # are not squeezed onto one CPU. PyTorch's own threads stay compute.torch_threads.
    workers = int(run["spec"]["data"].get("workers", 0))
    resources["cpus"] = int(run["spec"]["nproc"]) * (1 + workers)
    run["resources"] = resources
    run["stats_resources"] = {**exp["stats_resources"], "cpus": 1 + workers}
    run["num_train"] = num_train(vision, run["experiment"])
    run["inputs"] = [paths[exp["dataset"]]]


def constant_lr_views(vision: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The columns of Fig. 2: ``{"view", "run_id", "lr", "epochs"}`` — one per constant lr over
    ``epochs`` (the long lr's taken from the first epochs of the long run) and the long run."""
    constant = vision["nonint"]["constant"]
    long_lr = float(constant["long_lr"])
    views = []
    for lr in constant["lrs"]:
        lr = float(lr)
        rid = run_id("nonint", "long" if lr == long_lr else "constant", lr)
        views.append(
            {"view": f"lr{lr:g}", "run_id": rid, "lr": lr, "epochs": int(constant["epochs"])}
        )
    views.append(
        {
            "view": f"lr{long_lr:g}_long",
            "run_id": run_id("nonint", "long", long_lr),
            "lr": long_lr,
            "epochs": int(constant["long_epochs"]),
        }
    )
    return views
