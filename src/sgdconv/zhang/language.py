"""The training runs of the language track (Zhang et al. 2022, Sec. 3.2, Fig. 3; App. A.2,
Fig. 8), as run specs built from the ``zhang.language`` config.

The paper's columns of Fig. 3: Transformer-XL trained with a cosine schedule from lr 2.5e-4, and
with constant lrs 5e-5, 1e-4 and 2.5e-4; every run shares its initialization and data order
(one seed), so they differ only in the schedule. Fig. 8 is the estimator sweep at one
checkpoint (and at the final one) of the ``sweep.run`` run. The statistics of each run are
taken at every planned checkpoint, ``checkpoints_per_job`` checkpoints per job (1 at paper scale,
where each is a GPU job; more offline, where a job's start-up would cost more than its work).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sgdconv.data.errors import DataError
from sgdconv.data.wikitext_files import LAYOUT, SPLITS, split_file
from sgdconv.train.lm_spec import LMRunSpec, lm_checkpoint_steps
from sgdconv.train.spec import nearest_checkpoint

#: The config key of the WikiText-103 directory (named in every error about it).
WT103_KEY = "zhang.language.data.wikitext103.root"


def lm_run_id(schedule: str, lr: float) -> str:
    """``zhang_lm_cosine_lr0.00025``, ``zhang_lm_constant_lr5e-05``."""
    return f"zhang_lm_{schedule}_lr{lr:g}"


def lm_data_spec(language: Mapping[str, Any], corpus: str) -> dict[str, Any]:
    """The ``data`` entry of the run specs: the offline corpus at ``corpus`` (what
    ``prepare_corpus`` writes) or WikiText-103 from the config."""
    data = language["data"]
    if data["source"] == "offline":
        return {"name": "wikitext", "path": corpus, "key": f"zhang.language.data (corpus {corpus})"}
    if data["source"] == "wikitext103":
        return {"name": "wikitext", "path": str(data["wikitext103"]["root"]), "key": WT103_KEY}
    raise ValueError(f"unknown zhang.language.data.source {data['source']!r}")


def lm_stats_settings(language: Mapping[str, Any], seed: int, sweep: bool) -> dict[str, Any]:
    """The :class:`~sgdconv.stats.lm_checkpoint.LMStatsSettings` of a run (with the sweep's
    sizes for the sweep run)."""
    settings = {**language["stats"], "seed": int(seed)}
    if sweep:
        sw = language["sweep"]
        settings.update(
            sweep_sizes=[int(m) for m in sw["sizes"]],
            sweep_sharpness_sizes=[int(m) for m in sw["sharpness_sizes"]],
            authors_batches=[int(k) for k in sw["authors_batches"]],
            authors_start=int(sw.get("authors_start", 0)),
        )
    return settings


def language_runs(
    language: Mapping[str, Any],
    *,
    seeds: Mapping[str, int],
    device: str,
    corpus: str,
    inputs: list[str],
) -> dict[str, dict[str, Any]]:
    """All runs of the language track: ``run_id -> {"spec", "stats", "schedule", "lr",
    "steps", "chunks", "sweep_steps", "inputs", "resources", "stats_resources"}``.

    ``seeds``: ``train`` (initialization, dropout) and ``stats`` (the statistics sample);
    ``corpus``: the offline corpus directory; ``inputs``: the files the runs depend on.
    ``chunks``: the checkpoint steps of each statistics job; ``sweep_steps``: the checkpoints
    of Fig. 8's sweep (the one nearest ``sweep.step`` and the last; empty for other runs).
    """
    base = {
        "model": {"name": "transformer_xl", **language["model"]},
        "data": lm_data_spec(language, corpus),
        **{k: language[k] for k in ("batch_size", "tgt_len", "mem_len", "max_steps", "clip")},
        **{k: language[k] for k in ("checkpoint_every", "eval_batch_size", "nproc")},
        "seed": int(seeds["train"]),
        "device": device,
    }
    schedules = [("cosine", float(language["cosine"]["lr"]))]
    schedules += [("constant", float(lr)) for lr in language["constant"]["lrs"]]
    per_job = int(language["checkpoints_per_job"])
    sweep = language["sweep"]
    runs: dict[str, dict[str, Any]] = {}
    for schedule, lr in schedules:
        run_id = lm_run_id(schedule, lr)
        spec = LMRunSpec.from_dict(
            {**base, "run_id": run_id, "lr": lr, "schedule": {"name": schedule}}
        )
        steps = lm_checkpoint_steps(spec)
        is_sweep = schedule == sweep["run"]
        runs[run_id] = {
            "spec": spec.to_dict(),
            "stats": lm_stats_settings(language, seeds["stats"], is_sweep),
            "schedule": schedule,
            "lr": lr,
            "steps": steps,
            "chunks": [steps[i : i + per_job] for i in range(0, len(steps), per_job)],
            "sweep_steps": sweep_steps(steps, int(sweep["step"])) if is_sweep else [],
            "inputs": list(inputs),
            # CPUs (the rules' threads): one per training process; the corpus is in memory.
            "resources": {**language["train_resources"], "cpus": int(language["nproc"])},
            "stats_resources": {**language["stats_resources"], "cpus": 1},
        }
    if sum(run["schedule"] == sweep["run"] for run in runs.values()) != 1:
        raise ValueError("zhang.language.sweep.run must name exactly one run (cosine)")
    return runs


def sweep_steps(steps: list[int], step: int) -> list[int]:
    """The planned checkpoint nearest ``step`` and the last one (once if they coincide)."""
    return sorted({nearest_checkpoint(steps, 1, step), max(steps)})


def check_wikitext_layout(root: str | None, key: str = WT103_KEY) -> dict[str, Any]:
    """The sizes of the three WT103 files under ``root``; a :class:`DataError` naming the config
    ``key`` and the expected layout when ``root`` is unset, missing or incomplete (the files
    are read by the training and statistics jobs)."""
    if not root:
        raise DataError(key, "no path is set (the paper tier reads WikiText-103 from it)", LAYOUT)
    folder = Path(root)
    if not folder.is_dir():
        raise DataError(key, f"directory {str(folder)!r} does not exist", LAYOUT)
    missing = [split_file(s) for s in SPLITS if not (folder / split_file(s)).is_file()]
    if missing:
        raise DataError(key, f"{str(folder)!r} lacks {', '.join(missing)}", LAYOUT)
    return {s: (folder / split_file(s)).stat().st_size for s in SPLITS}
