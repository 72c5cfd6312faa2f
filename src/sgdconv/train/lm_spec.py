"""The run spec of a language-model run: Transformer-XL trained as Zhang et al. (2022, Sec. 3.2)
train it, with the official code of Dai et al. (2019) (``pytorch/train.py``).

The official recipe: Adam (PyTorch defaults), ``lr`` with a per-step ``cosine`` schedule to
``eta_min`` over ``max_step`` steps or ``constant``, no warm-up, gradient clipping at ``clip``,
``batch_size`` contiguous streams of segments of ``tgt_len`` tokens, a memory of ``mem_len``
carried from segment to segment and reset at every epoch (the official ``train()`` starts each
epoch with ``mems = tuple()``). A spec is plain data (it travels through snakemake params and
JSON files); the model and the data are ``{"name": ..., **kwargs}`` entries of
:mod:`sgdconv.models.registry` and :mod:`sgdconv.data.base`. The model entry leaves out
``vocab_size``, ``tgt_len`` and ``mem_len``: the engine fills them from the data and the spec.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

LM_SCHEDULES = ("constant", "cosine")


@dataclass(frozen=True)
class LMRunSpec:
    """One language-model run (module docstring). Defaults: the official WT103 base recipe.

    ``batch_size`` is the *global* number of streams (split over ``nproc`` processes);
    ``max_steps`` optimizer steps; checkpoints at step 0, every ``checkpoint_every`` steps and
    at the last step (:func:`lm_checkpoint_steps`: known before training, so the workflow plans
    one statistics job per checkpoint); ``keep_optimizer``: the Adam states of only the last
    that many checkpoints are kept (0: all), since at paper scale each is twice the model.
    """

    run_id: str
    model: Mapping[str, Any]
    data: Mapping[str, Any]
    batch_size: int = 60
    tgt_len: int = 150
    mem_len: int = 150
    max_steps: int = 200_000
    lr: float = 2.5e-4
    schedule: Mapping[str, Any] = field(default_factory=lambda: {"name": "cosine"})
    clip: float = 0.25
    checkpoint_every: int = 500
    seed: int = 1111
    device: str = "cpu"
    nproc: int = 1
    eval_batch_size: int = 10
    eval_tgt_len: int | None = None
    keep_optimizer: int = 2

    def __post_init__(self) -> None:
        problems = []
        if self.schedule.get("name") not in LM_SCHEDULES:
            problems.append(f"schedule name must be one of {LM_SCHEDULES}, got {self.schedule}")
        if min(self.batch_size, self.tgt_len, self.max_steps, self.nproc) < 1:
            problems.append("batch_size, tgt_len, max_steps and nproc must be >= 1")
        if self.mem_len < 0 or self.keep_optimizer < 0:
            problems.append("mem_len and keep_optimizer must be >= 0")
        if self.batch_size % self.nproc:
            problems.append(f"batch_size {self.batch_size} not divisible by nproc {self.nproc}")
        if self.lr <= 0 or self.clip <= 0 or self.checkpoint_every < 1:
            problems.append("lr and clip must be > 0, checkpoint_every >= 1")
        if "name" not in self.model or "name" not in self.data:
            problems.append("model and data need a 'name'")
        reserved = {"vocab_size", "tgt_len", "mem_len"} & set(self.model)
        if reserved:
            problems.append(f"the model entry must not set {sorted(reserved)} (filled in)")
        if problems:
            raise ValueError(f"run {self.run_id!r}: " + "; ".join(problems))

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any]) -> LMRunSpec:
        known = {f.name for f in fields(cls)}
        unknown = set(spec) - known
        if unknown:
            raise ValueError(f"unknown language-model run spec keys {sorted(unknown)}")
        return cls(**{k: _plain(v) for k, v in spec.items()})

    def to_dict(self) -> dict[str, Any]:
        return _plain(asdict(self))

    def model_kwargs(self, vocab_size: int) -> dict[str, Any]:
        """The model entry with the data's vocabulary and the spec's segment lengths."""
        return {
            **self.model,
            "vocab_size": int(vocab_size),
            "tgt_len": self.tgt_len,
            "mem_len": self.mem_len,
        }

    def training_hash(self) -> str:
        """Hash of everything that changes the trajectory (not the process count, nor how many
        optimizer states are kept)."""
        d = self.to_dict()
        for key in ("nproc", "keep_optimizer"):
            d.pop(key)
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def _plain(value: Any) -> Any:
    """Mappings/sequences (e.g. snakemake's Namedlist, tuples) as plain dicts/lists."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def lm_checkpoint_steps(spec: LMRunSpec) -> list[int]:
    """Steps with a checkpoint: 0, every ``checkpoint_every`` steps, and ``max_steps``."""
    return sorted(
        {0, spec.max_steps, *range(spec.checkpoint_every, spec.max_steps, spec.checkpoint_every)}
    )
