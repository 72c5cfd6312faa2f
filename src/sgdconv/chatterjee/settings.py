"""Typed settings of the Chatterjee Section-4 experiments, read once from the config.

Each experiment's config section (``chatterjee.thm41``, ``chatterjee.thm45``) becomes a frozen
dataclass at the entry point of its simulation: :func:`from_mapping` rejects unknown and missing
keys and converts every value to its field's type once, so the science below never reads a
``Mapping[str, Any]`` or casts. The module is torch-free (the workload estimates of the rule
files build these objects while Snakemake builds the DAG).

:func:`from_mapping` is generic (the An & Lu settings of :mod:`sgdconv.anlu.settings` use it too).
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from sgdconv.lojasiewicz.effort import SearchEffort

T = TypeVar("T")


def from_mapping(cls: type[T], values: Mapping[str, Any] | T, where: str | None = None) -> T:
    """The frozen dataclass ``cls`` built from a config mapping (an instance passes through).

    Unknown keys and missing required keys raise ``ValueError`` naming them (with the dotted
    path ``where``); each value is converted to its field's annotated type: ``int`` (integral
    numbers only), ``float``, ``str``, ``bool``, ``tuple[X, ...]``, fixed tuples, ``X | None``
    and nested dataclasses. Lists from YAML become tuples, so the result is hashable.
    """
    if isinstance(values, cls):
        return values
    where = where or cls.__name__
    if not isinstance(values, Mapping):
        raise TypeError(f"{where}: expected a mapping, got {type(values).__name__}")
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    names = [f.name for f in fields]
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise ValueError(f"{where}: unknown keys {unknown}; the keys are {names}")
    missing = [
        f.name
        for f in fields
        if f.name not in values
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ValueError(f"{where}: missing keys {missing}")
    hints = typing.get_type_hints(cls)
    return cls(**{k: _convert(hints[k], v, f"{where}.{k}") for k, v in values.items()})


def _convert(hint: Any, value: Any, where: str) -> Any:
    """``value`` as the type ``hint`` (see :func:`from_mapping`)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return from_mapping(hint, value, where)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _convert(inner, value, where)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise TypeError(f"{where}: expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise ValueError(f"{where}: expected {len(args)} values, got {len(value)}")
        pairs = enumerate(zip(args, value, strict=True))
        return tuple(_convert(a, v, f"{where}[{i}]") for i, (a, v) in pairs)
    if hint is bool:
        if not isinstance(value, bool):
            raise TypeError(f"{where}: expected true or false, got {value!r}")
        return value
    if hint is int or hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(f"{where}: expected a number, got {value!r}")
        if hint is int:
            if not float(value).is_integer():
                raise ValueError(f"{where}: expected an integer, got {value!r}")
            return int(value)
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise TypeError(f"{where}: expected a string, got {value!r}")
        return value
    raise TypeError(f"{where}: unsupported field type {hint!r}")


def _require(problems: list[str], ok: bool, message: str) -> None:
    if not ok:
        problems.append(message)


def _raise(where: str, problems: list[str]) -> None:
    if problems:
        raise ValueError(f"{where}: " + "; ".join(problems))


@dataclass(frozen=True)
class Thm41Settings:
    """``chatterjee_thm41``: the configurations (depth × width × activation) on n inputs in
    R^d, the middle-weight range, the A ladder (a_start · a_factor^j, j < a_trials), the step
    ladder (eta_max / A² / eta_factor^j, j < eta_rungs), GD's budget and tolerance, and the
    certificate search's effort (:mod:`sgdconv.chatterjee.nets` explains the A/η rule)."""

    depths: tuple[int, ...]
    widths: tuple[int, ...]
    activations: tuple[str, ...]
    leaky_slope: float
    n: int
    d: int
    inputs: str
    middle_range: tuple[float, float]
    delta_two_layer: float
    a_start: float
    a_factor: float
    a_trials: int
    epsilon: float
    eta_max: float
    eta_factor: float
    eta_rungs: int
    max_steps: int
    tol: float
    divergence_factor: float
    search: SearchEffort

    def __post_init__(self) -> None:
        p: list[str] = []
        _require(p, min(self.depths, default=0) >= 2, "depths must be >= 2 (L >= 2)")
        _require(p, self.d >= self.n >= 1, "Theorem 4.1 needs d >= n >= 1")
        _require(p, 0 < self.middle_range[0] <= self.middle_range[1], "need 0 < lo <= hi")
        _require(p, 0.0 < self.epsilon < 1.0, "epsilon must lie in (0, 1)")
        _require(p, self.a_factor > 1 and self.eta_factor > 1, "ladder factors must be > 1")
        _require(p, min(self.a_trials, self.eta_rungs, self.max_steps) >= 1, "counts >= 1")
        _require(p, 0 < self.tol < 1 and self.divergence_factor > 1, "need 0 < tol < 1")
        _raise("chatterjee.thm41", p)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | Thm41Settings) -> Thm41Settings:
        return from_mapping(cls, values, "chatterjee.thm41")

    def configurations(self) -> list[tuple[int, int, str]]:
        """(depth, width, activation) of every configuration, in table order."""
        return [
            (depth, width, act)
            for depth in self.depths
            for width in self.widths
            for act in self.activations
        ]


@dataclass(frozen=True)
class Thm45Settings:
    """``chatterjee_thm45``: for each ratio d/n of ``d_over_n`` and each n of ``ns``, d =
    ⌈(d/n)·n⌉ Gaussian inputs and ``seeds`` LeCun initializations N(0, c/d_{l−1}) of a net with
    the fixed hidden ``widths`` and the smooth leaky ReLU; each seed runs the step ladder
    eta_max / eta_factor^j (j < eta_rungs) for at most ``max_steps`` iterations. The seeds are
    spread evenly over ``datasets`` independent draws of the data (1: one data set, the
    theorem's probability over the weights; ``seeds``: a data set per seed, averaging over the
    data as Remark 4.8 does). Ratios below 1 are outside Theorem 4.5's hypothesis (the inputs
    cannot be linearly independent)."""

    ns: tuple[int, ...]
    d_over_n: tuple[float, ...]
    datasets: int
    widths: tuple[int, ...]
    leaky_slope: float
    c: float
    inputs: str
    seeds: int
    eta_max: float
    eta_factor: float
    eta_rungs: int
    max_steps: int
    tol: float
    divergence_factor: float
    ci_level: float
    ci_method: str

    def __post_init__(self) -> None:
        p: list[str] = []
        _require(p, len(self.ns) >= 2 and min(self.ns) >= 1, "need at least two n >= 1")
        _require(p, len(self.d_over_n) >= 1 and min(self.d_over_n) > 0, "d_over_n must be > 0")
        _require(p, self.inputs == "gaussian", "inputs must be 'gaussian' (d < n is swept)")
        _require(p, self.c > 0 and self.eta_factor > 1, "need c > 0 and eta_factor > 1")
        _require(p, min(self.seeds, self.eta_rungs, self.max_steps) >= 1, "counts >= 1")
        _require(p, 0 < self.tol < 1 and 0 < self.ci_level < 1, "need tol, ci_level in (0, 1)")
        _require(
            p,
            self.datasets >= 1 and self.seeds % self.datasets == 0,
            "datasets must divide seeds",
        )
        _raise("chatterjee.thm45", p)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | Thm45Settings) -> Thm45Settings:
        """A single number for ``d_over_n`` is one ratio."""
        if isinstance(values, Mapping) and isinstance(values.get("d_over_n"), int | float):
            values = {**values, "d_over_n": [values["d_over_n"]]}
        return from_mapping(cls, values, "chatterjee.thm45")

    def input_dimension(self, n: int, d_over_n: float) -> int:
        """d = ⌈(d/n) · n⌉ (rounded first, so 1.0 · n is exactly n)."""
        return math.ceil(round(d_over_n * n, 9))
