"""Statistics of a saved checkpoint of a language-model run (Zhang et al. 2022, Sec. 3.2, Fig. 3
and App. A.2, Fig. 8), for the language track's statistics rules.

At checkpoint k the job rebuilds the model and the training streams from the run's spec and
evaluates, on a fixed sample of segment positions (the same at every checkpoint; their memory
rebuilt at θ_k, :mod:`sgdconv.stats.segments`):

* the loss L_S, |∇L| (unbiased for the training streams' population of segments, and the
  paper's plug-in |ḡ|) and σ of eq. (1), with jackknife standard errors, in the mode of
  ``grad_mode`` (``train``: dropout as SGD sees it, as the authors' scripts), and σ/√B, the
  noise of SGD's minibatch of B segments (the authors' scale);
* the sharpness λ_max in eval mode (as the authors), on the sample's first
  ``sharpness_sample_size`` segments;
* the validation loss in eval mode, the official ``evaluate()``: the validation streams in
  order, memory carried, mean NLL per token (at most ``val_max_steps`` segments; 0: all).

:func:`lm_sample_size_sweep` is Fig. 8: the estimates against the sample size in tokens, with
the authors' estimator beside the plug-in and unbiased ones.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from sgdconv.data.base import MicroBatches, mix_seed
from sgdconv.data.wikitext import LMStreams, burn_in_segments
from sgdconv.stats.segments import (
    SegmentLoss,
    authors_lm_stats,
    segment_nll,
    segment_population,
    segment_sample,
)
from sgdconv.train.checkpoint import CorruptCheckpointError, load_checkpoint
from sgdconv.train.lm_engine import build_streams, init_lm
from sgdconv.train.lm_spec import LMRunSpec
from sgdconv.train.schedules import lr_at

logger = logging.getLogger(__name__)

Z = 2.0  # the 2-SE bands of the tables
SWEEP_COLUMNS = ["n_samples", "n_tokens", "quantity", "estimator", "value", "se"]


@dataclass(frozen=True)
class LMStatsSettings:
    """How the statistics of a language-model run are taken (sizes in segments).

    ``sweep_sizes``/``sweep_sharpness_sizes``: the sample sizes of Fig. 8's sweep (the
    sharpness only at the second, smaller list); ``authors_batches``: its K values of the
    authors' estimator (K training batches, from segment ``authors_start``)."""

    sample_size: int = 512
    microbatch: int = 16
    grad_mode: str = "train"
    sharpness: bool = True
    sharpness_sample_size: int = 64
    sharpness_method: str = "lanczos"
    sharpness_tol: float = 1e-2
    sharpness_max_hvp: int = 20
    val_max_steps: int = 0
    seed: int = 0
    sweep_sizes: Sequence[int] = ()
    sweep_sharpness_sizes: Sequence[int] = ()
    authors_batches: Sequence[int] = ()
    authors_start: int = 0

    def __post_init__(self) -> None:
        if self.grad_mode not in ("train", "eval"):
            raise ValueError(f"grad_mode must be 'train' or 'eval', got {self.grad_mode!r}")
        if self.sample_size < 2 * self.microbatch:
            raise ValueError("sample_size must hold at least two micro-batches")

    @classmethod
    def from_dict(cls, settings: Mapping[str, Any]) -> LMStatsSettings:
        known = {f.name for f in fields(cls)}
        unknown = set(settings) - known
        if unknown:
            raise ValueError(f"unknown language-model stats settings {sorted(unknown)}")
        values = {k: tuple(v) if isinstance(v, list | tuple) else v for k, v in settings.items()}
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


class LMCheckpoint:
    """A run's spec, streams and one loaded checkpoint, ready for statistics."""

    def __init__(
        self,
        spec: LMRunSpec,
        checkpoint: str | Path,
        settings: LMStatsSettings,
        *,
        streams: LMStreams | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        self.spec, self.settings = spec, settings
        self.device = torch.device(device)
        self.streams = streams if streams is not None else build_streams(spec)
        self.spe = self.streams.n_segments
        state = load_checkpoint(checkpoint, map_location=self.device)
        self.step = int(state["step"])
        self.status = "completed"
        self.model = init_lm(spec, self.streams.n_token, self.device)
        self.model.load_state_dict(state["model"])
        self.burn_in = burn_in_segments(self.model.n_layer, spec.mem_len, spec.tgt_len)
        self.wrapper = SegmentLoss(self.model, self.burn_in)

    @property
    def epoch(self) -> float:
        return self.step / self.spe

    @property
    def lr(self) -> float:
        """The learning rate of the update from this checkpoint (of the last step at the end)."""
        k = min(self.step, self.spec.max_steps - 1)
        return lr_at(self.spec.schedule, self.spec.lr, self.spe, self.spec.max_steps, k)

    @property
    def population(self) -> int:
        return segment_population(self.streams, self.burn_in)

    def sample(self, size: int | None = None) -> MicroBatches:
        """The run's fixed sample of segment positions (the same at every checkpoint)."""
        s = self.settings
        size = s.sample_size if size is None else size
        seed = mix_seed("lm-stats", s.seed)
        batches = segment_sample(self.streams, size, s.microbatch, seed, self.burn_in)
        batches.device = self.device
        return batches


def open_lm_checkpoints(
    manifest_path: str | Path, checkpoints: Sequence[str | Path], settings: Mapping[str, Any]
) -> Iterator[LMCheckpoint]:
    """An :class:`LMCheckpoint` for each of a finished run's planned ``checkpoints`` (its data
    read once), skipping those a diverged run never wrote. A checkpoint missing from a
    completed run, or corrupt, raises an error naming the file."""
    manifest = json.loads(Path(manifest_path).read_text())
    spec = LMRunSpec.from_dict(manifest["spec"])
    stats = LMStatsSettings.from_dict(settings)
    streams = None
    for path in checkpoints:
        if not Path(path).is_file():
            if manifest["status"] == "diverged":
                logger.info("%s diverged before %s", spec.run_id, path)
                continue
            raise FileNotFoundError(
                f"{path}: checkpoint missing although run {spec.run_id} completed; re-run its "
                "train_language job (it resumes from the last checkpoint before it)"
            )
        streams = streams if streams is not None else build_streams(spec)
        try:
            ctx = LMCheckpoint(spec, path, stats, streams=streams, device=spec.device)
        except CorruptCheckpointError as error:
            hint = (
                f"Remove {Path(path).parent.parent} and re-run snakemake: the run trains again "
                "(its earlier checkpoints are not rewritten in place)"
            )
            raise error.with_hint(hint) from None
        ctx.status = manifest["status"]
        yield ctx


def gradient_rows(ctx: LMCheckpoint, batches: MicroBatches) -> tuple[dict[str, float], Any]:
    """The quantities of eq. (1) on ``batches`` (``grad_mode``), as row entries."""
    from sgdconv.stats import estimate_gradient_stats

    wrapper = ctx.wrapper.train(ctx.settings.grad_mode == "train")
    st = estimate_gradient_stats(wrapper, segment_nll, batches, population_size=ctx.population)
    b = ctx.spec.batch_size
    # 2-SE bounds of |∇L| from the unbiased squared estimate and its SE (a clipped estimate
    # keeps its upper bound); from |∇L| ± 2 SE where the squared estimate has no SE
    sq_se = getattr(st, "grad_norm_sq_se", math.nan)
    if math.isfinite(sq_se):
        lcb = math.sqrt(max(st.grad_norm_sq - Z * sq_se, 0.0))
        ucb = math.sqrt(max(st.grad_norm_sq + Z * sq_se, 0.0))
    else:
        lcb, ucb = max(st.grad_norm - Z * st.grad_norm_se, 0.0), st.grad_norm + Z * st.grad_norm_se
    return {
        "loss": st.loss,
        "loss_se": st.loss_se,
        "grad_norm": st.grad_norm,
        "grad_norm_se": st.grad_norm_se,
        "grad_norm_sq": st.grad_norm_sq,
        "grad_norm_sq_se": sq_se,
        "grad_norm_lcb": lcb,
        "grad_norm_ucb": ucb,
        "grad_norm_plugin": st.grad_norm_plugin,
        "noise_norm": st.noise_norm,
        "noise_norm_se": st.noise_norm_se,
        "noise_norm_sq": st.noise_norm_sq,
        "noise_norm_minibatch": st.noise_norm / math.sqrt(b),
        "noise_norm_minibatch_se": st.noise_norm_se / math.sqrt(b),
        "n_samples": st.n_samples,
        "n_tokens": st.n_samples * ctx.spec.tgt_len,
        "population_size": float(ctx.population),
        "microbatch_size": st.microbatch_size,
    }, st


def lm_sharpness(ctx: LMCheckpoint, batches: MicroBatches) -> Any:
    """λ_max of the Hessian of the loss on ``batches`` in eval mode (the same start vector at
    every checkpoint): a :class:`sgdconv.stats.HessianEig`."""
    from sgdconv.stats import top_hessian_eigenvalue

    s = ctx.settings
    return top_hessian_eigenvalue(
        ctx.wrapper.eval(),
        segment_nll,
        batches,
        method=s.sharpness_method,
        tol=s.sharpness_tol,
        max_hvp=s.sharpness_max_hvp,
        seed=mix_seed("lm-sharpness", s.seed),
    )


def validation_loss(ctx: LMCheckpoint) -> float:
    """The official ``evaluate()``: eval mode, the validation streams in order from empty
    memory (of length ``mem_len + tgt_len − eval_tgt_len``), mean NLL per token."""
    streams = ctx.streams.validation()
    if streams is None:
        return math.nan
    model, limit = ctx.model.eval(), ctx.settings.val_max_steps
    mem_len = model.mem_len
    model.mem_len = ctx.spec.mem_len + ctx.spec.tgt_len - streams.tgt_len
    total, count, mems = 0.0, 0, None
    try:
        with torch.no_grad():
            for i, (x, y) in enumerate(streams):
                if limit and i >= limit:
                    break
                nll, mems = model(x.to(ctx.device), y.to(ctx.device), mems)
                total, count = total + float(nll.sum()), count + nll.numel()
    finally:
        model.mem_len = mem_len
    return total / count


def lm_checkpoint_statistics(ctx: LMCheckpoint) -> dict[str, Any]:
    """One row of the run's statistics at this checkpoint (module docstring)."""
    s = ctx.settings
    sample = ctx.sample()
    row: dict[str, Any] = {"step": ctx.step, "epoch": ctx.epoch, "lr": ctx.lr}
    row.update(gradient_rows(ctx, sample)[0])
    row.update(batch_size=ctx.spec.batch_size, tgt_len=ctx.spec.tgt_len)
    row.update(sharpness=math.nan, sharpness_residual=math.nan, sharpness_n_hvp=0)
    if s.sharpness:
        count = max(1, min(sample.count, s.sharpness_sample_size // sample.size))
        eig = lm_sharpness(ctx, sample.truncated(count))
        row.update(sharpness=eig.value, sharpness_residual=eig.residual, sharpness_n_hvp=eig.n_hvp)
    row["val_loss"] = validation_loss(ctx)
    return row


def lm_sample_size_sweep(ctx: LMCheckpoint) -> pd.DataFrame:
    """Fig. 8: the estimates at this checkpoint on nested samples of ``sweep_sizes`` segments
    (``plugin``: the sample's loss, |ḡ|, σ_S and λ_max, the last at ``sweep_sharpness_sizes``;
    ``unbiased``: |∇L|, σ, and σ/√B as ``noise_norm_minibatch``), and the authors' estimator
    from K = ``authors_batches`` training batches (loss, |ḡ|, and its minibatch noise as
    ``noise_norm_minibatch``). Long format, :data:`SWEEP_COLUMNS`; ``n_tokens`` the tokens
    behind each estimate."""
    s, L, B = ctx.settings, ctx.spec.tgt_len, ctx.spec.batch_size
    sizes = sorted({int(m) for m in s.sweep_sizes})
    full = ctx.sample(max(sizes))
    rows: list[tuple] = []
    for m in sizes:
        batches = full.truncated(m // full.size)
        g, st = gradient_rows(ctx, batches)
        n = batches.n_samples
        sigma_sample = math.sqrt(max(st.noise_norm_sq * (n - 1) / n, 0.0)) * (
            math.sqrt(ctx.population / (ctx.population - 1))
        )
        rows += [
            (n, n * L, "loss", "plugin", g["loss"], g["loss_se"]),
            (n, n * L, "grad_norm", "plugin", g["grad_norm_plugin"], g["grad_norm_se"]),
            (n, n * L, "noise_norm", "plugin", sigma_sample, g["noise_norm_se"]),
            (n, n * L, "grad_norm", "unbiased", g["grad_norm"], g["grad_norm_se"]),
            (n, n * L, "grad_norm_sq", "unbiased", g["grad_norm_sq"], g["grad_norm_sq_se"]),
            (n, n * L, "noise_norm", "unbiased", g["noise_norm"], g["noise_norm_se"]),
            (n, n * L, "noise_norm_minibatch", "unbiased", g["noise_norm_minibatch"],
             g["noise_norm_minibatch_se"]),
        ]  # fmt: skip
    for m in sorted({int(m) for m in s.sweep_sharpness_sizes}) if s.sharpness else []:
        eig = lm_sharpness(ctx, full.truncated(max(1, m // full.size)))
        n = max(1, m // full.size) * full.size
        rows.append((n, n * L, "sharpness", "plugin", eig.value, math.nan))
    if s.authors_batches:
        model = ctx.model.train(s.grad_mode == "train")
        authors = authors_lm_stats(model, ctx.streams, s.authors_batches, start=s.authors_start)
        for k, a in authors.items():
            rows += [
                (k * B, a.n_tokens, "loss", "authors", a.loss, math.nan),
                (k * B, a.n_tokens, "grad_norm", "authors", a.grad_norm, math.nan),
                (k * B, a.n_tokens, "noise_norm_minibatch", "authors", a.noise_norm, math.nan),
            ]
    frame = pd.DataFrame(rows, columns=SWEEP_COLUMNS)
    return frame.astype({"n_samples": "int64", "n_tokens": "int64"})


def aggregate_lm_statistics(
    rows: Sequence[pd.DataFrame], train_log: pd.DataFrame, manifest: Mapping[str, Any]
) -> pd.DataFrame:
    """The run's ``stats.parquet``: one row per checkpoint, by step, with ``loss_moving_avg``,
    eq. (2) of Zhang et al.: the mean minibatch loss over the steps since the previous
    checkpoint (each minibatch at the iterate that saw it; NaN at step 0), ``loss_last`` (eq.
    (3), not taken for the language model: NaN), ``run_id`` and ``status`` (a diverged run has
    the rows of its finite checkpoints)."""
    frame = pd.concat(list(rows), ignore_index=True)
    frame = frame.dropna(subset=["step"]).sort_values("step").reset_index(drop=True)
    log = train_log.sort_values("step")
    steps = frame["step"].astype(int).tolist()
    moving = []
    for previous, step in zip([0, *steps[:-1]], steps, strict=True):
        window = log[(log["step"] > previous) & (log["step"] <= step)]["minibatch_loss"]
        moving.append(
            float(window.mean()) if step > 0 and len(window) == step - previous else math.nan
        )
    frame["loss_moving_avg"] = moving
    frame["loss_last"] = math.nan
    frame["run_id"], frame["status"] = manifest["run_id"], manifest["status"]
    frame["steps_per_epoch"] = int(manifest["steps_per_epoch"])
    return frame
