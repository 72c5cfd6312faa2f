"""Cross-field checks of the workflow config, run at start-up after schema validation.

The schema checks each value on its own; some values only fail against others, and then only
deep inside a job (a sweep size of one micro-batch) or not at all (a milestone after the last
epoch never lowers the learning rate). These rules catch them before any job runs, naming the
keys. Each rule matches keys by name wherever they sit in the tree (any mapping holding both
``milestones`` and ``epochs``, ...) and looks up shared keys (``batch_size``, ``nproc``, the
``data`` section) in the enclosing mappings, so the rules follow the config's layout instead of
restating it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

#: (dotted key, what is wrong with its value)
Problem = tuple[str, str]
#: The enclosing mappings of a node, innermost first, each with its dotted path.
Scope = tuple[tuple[str, Mapping[str, Any]], ...]


def cross_field_problems(config: Mapping[str, Any]) -> list[Problem]:
    """Every cross-field problem of a (schema-valid, defaults filled) config, by key."""
    problems: list[Problem] = []
    for path, node, scope in _mappings(config, "", ()):
        for rule in RULES:
            problems.extend(rule(path, node, scope))
    return sorted(problems)


def _mappings(node: Any, path: str, scope: Scope) -> Iterator[tuple[str, Mapping, Scope]]:
    if isinstance(node, Mapping):
        yield path, node, scope
        for key, value in node.items():
            yield from _mappings(value, _key(path, key), ((path, node), *scope))


def _key(path: str, name: Any) -> str:
    return f"{path}.{name}" if path else str(name)


def _lookup(name: str, path: str, node: Mapping, scope: Scope) -> tuple[str, Any] | None:
    """(dotted key, value) of ``name`` in ``node`` or the nearest enclosing mapping."""
    for where, mapping in ((path, node), *scope):
        if name in mapping and mapping[name] is not None:
            return _key(where, name), mapping[name]
    return None


# --- training runs ------------------------------------------------------------------------------


def _schedule(path: str, node: Mapping, scope: Scope) -> Iterator[Problem]:
    """Milestones inside the run, increasing; checkpoints at most an epoch count apart."""
    epochs = node.get("epochs")
    if not isinstance(epochs, int):
        return
    if isinstance(node.get("milestones"), list):
        milestones = node["milestones"]
        late = [m for m in milestones if m >= epochs]
        if late:
            yield (
                _key(path, "milestones"),
                f"{late} must be < epochs {epochs} ({_key(path, 'epochs')}): a milestone at or "
                "after the last epoch never changes the learning rate",
            )
        elif milestones != sorted(set(milestones)):
            yield _key(path, "milestones"), f"{milestones} must be strictly increasing"
    every = node.get("checkpoint_every")
    if isinstance(every, int | float) and every > epochs:
        yield (
            _key(path, "checkpoint_every"),
            f"{every} must be <= epochs {epochs} ({_key(path, 'epochs')}): the run would keep "
            "only its first and last checkpoints",
        )
    long_epochs = node.get("long_epochs")
    if isinstance(long_epochs, int) and long_epochs < epochs:
        yield _key(path, "long_epochs"), f"{long_epochs} must be >= epochs {epochs}"


def _long_lr(path: str, node: Mapping, scope: Scope) -> Iterator[Problem]:
    if "long_lr" in node and isinstance(node.get("lrs"), list):
        if float(node["long_lr"]) not in [float(lr) for lr in node["lrs"]]:
            yield (
                _key(path, "long_lr"),
                f"{node['long_lr']} must be one of lrs {node['lrs']} ({_key(path, 'lrs')}): the "
                "long run continues the regular run at that learning rate",
            )


def _batches(path: str, node: Mapping, scope: Scope) -> Iterator[Problem]:
    """The global batch splits over the processes and fits in the training set."""
    batch = node.get("batch_size")
    if not isinstance(batch, int):
        return
    nproc = node.get("nproc")
    if isinstance(nproc, int) and batch % nproc:
        yield _key(path, "batch_size"), f"{batch} must be divisible by nproc {nproc}"
    found = _training_examples(path, node, scope)
    if found is not None and batch > found[1]:
        yield (
            _key(path, "batch_size"),
            f"{batch} must be <= the {found[1]} training examples ({found[0]}): an epoch would "
            "have no step",
        )


def _training_examples(path: str, node: Mapping, scope: Scope) -> tuple[str, int] | None:
    """(key, number) of the training examples of a run: its own ``n``, or ``n_train`` (times
    ``copies`` of its corruption) of its ``dataset`` in an enclosing ``data`` section."""
    if isinstance(node.get("n"), int):
        return _key(path, "n"), node["n"]
    dataset, data = node.get("dataset"), _lookup("data", path, node, scope)
    if not isinstance(dataset, str) or data is None or not isinstance(data[1], Mapping):
        return None
    n_train = (data[1].get(dataset) or {}).get("n_train")
    if not isinstance(n_train, int):
        return None
    copies = (node.get("corruption") or {}).get("copies", 1)
    return f"{data[0]}.{dataset}.n_train", n_train * int(copies)


def _sweep_epoch(path: str, node: Mapping, scope: Scope) -> Iterator[Problem]:
    sweep_epoch, step = node.get("sweep_epoch"), node.get("step")
    if isinstance(sweep_epoch, int | float) and isinstance(step, Mapping):
        epochs = step.get("epochs")
        if isinstance(epochs, int) and sweep_epoch > epochs:
            yield (
                _key(path, "sweep_epoch"),
                f"{sweep_epoch} must be <= epochs {epochs} ({_key(path, 'step.epochs')}) of the "
                "run it is taken from",
            )


# --- statistics ---------------------------------------------------------------------------------


def _statistics(path: str, node: Mapping, scope: Scope) -> Iterator[Problem]:
    """Every sample of the statistics holds >= 2 micro-batches: the noise is estimated from
    their spread (sgdconv.stats.estimate_gradient_stats)."""
    stats = node.get("stats")
    if not isinstance(stats, Mapping) or not isinstance(stats.get("sample_size"), int):
        return
    stats_key = _key(path, "stats")
    if stats.get("microbatch"):
        b, source = int(stats["microbatch"]), f"{stats_key}.microbatch"
    else:
        batch = _lookup("batch_size", path, node, scope)
        if batch is None:
            return
        nproc = _lookup("nproc", path, node, scope)
        b = int(batch[1]) // int(nproc[1] if nproc else 1)
        source = f"{batch[0]} {batch[1]}" + (f" / {nproc[0]} {nproc[1]}" if nproc else "")
    m = stats["sample_size"]
    if m // b < 2:
        yield (
            f"{stats_key}.sample_size",
            f"{m} holds {m // b} micro-batch(es) of {b} ({source}); the noise estimate needs "
            f">= 2 (sample_size >= {2 * b})",
        )
    sweep_key = _key(path, "sweep_sizes") if "sweep_sizes" in node else f"{stats_key}.sweep_sizes"
    small = [s for s in node.get("sweep_sizes", stats.get("sweep_sizes")) or () if s // b < 2]
    if small:
        yield (
            sweep_key,
            f"{small} hold fewer than 2 micro-batches of {b} ({source}); each size needs "
            f">= {2 * b}",
        )
    yield from _curvature(stats_key, stats, m // b, b)


def _curvature(stats_key: str, stats: Mapping, count: int, b: int) -> Iterator[Problem]:
    """Curvature directions are micro-batches of the sample beyond the sharpness ones."""
    directions = stats.get("curvature_directions") or 0
    if not directions or count < 2:
        return
    sharp = stats.get("sharpness_sample_size")
    hessian = max(1, min(count, sharp // b)) if sharp else count
    if directions + hessian > count:
        yield (
            f"{stats_key}.curvature_directions",
            f"{directions} + the {hessian} micro-batches of the sharpness exceed the "
            f"{count} micro-batches of {b} in sample_size {stats['sample_size']}",
        )


# --- other paired values ------------------------------------------------------------------------


def _pairs(path: str, node: Mapping, scope: Scope) -> Iterator[Problem]:
    """Windows inside their runs, ranges in order, orthonormal inputs that exist."""
    window, steps = node.get("window"), node.get("steps")
    if isinstance(window, int) and isinstance(steps, int) and window > steps:
        yield _key(path, "window"), f"{window} must be <= steps {steps} ({_key(path, 'steps')})"
    low, high = node.get("middle_low"), node.get("middle_high")
    if isinstance(low, int | float) and isinstance(high, int | float) and low > high:
        yield _key(path, "middle_low"), f"{low} must be <= middle_high {high}"
    span = node.get("middle_range")
    if isinstance(span, list) and len(span) == 2 and span[0] > span[1]:
        yield _key(path, "middle_range"), f"{span} must be [low, high] with low <= high"
    d, n = node.get("d"), node.get("n")
    if node.get("inputs") == "orthonormal" and isinstance(d, int) and isinstance(n, int) and d < n:
        yield (
            _key(path, "d"),
            f"{d} must be >= n {n} ({_key(path, 'n')}): n orthonormal inputs need d >= n",
        )


RULES: tuple[Callable[[str, Mapping, Scope], Iterator[Problem]], ...] = (
    _schedule,
    _long_lr,
    _batches,
    _sweep_epoch,
    _statistics,
    _pairs,
)
