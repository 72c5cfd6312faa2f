"""GPU check of the paper tier: train each paper-scale model shape, run its statistics, and
compare the statistics on cuda against the CPU path (``make gpu-check``).

For every model of :data:`SPECS` (ResNet101 at 224×224 with 1000 classes, the CIFAR ResNet18
at 32×32, the Transformer-XL of WikiText-103 once ``"transformer_xl"`` is in the model
registry), on synthetic data in the real format (generated on the device, so data loading is
not measured):

1. ``--steps`` SGD steps at the per-GPU batch size of ``config/paper.yaml``: throughput
   (images or tokens per second) and peak memory (``torch.cuda.max_memory_allocated``);
2. on the trained weights, ``estimate_gradient_stats`` and the Lanczos sharpness
   ``top_hessian_eigenvalue`` on ``--microbatches`` micro-batches (BatchNorm in train mode, as
   the statistics pipeline's default): throughput and peak memory of each pass;

then (3) the same loss, |∇L|, σ and λ_max are computed from the same weights and data on the
CPU and on the device with a small ResNet in float64 (:func:`compare_devices`), which must agree
to ``--rtol``. A table is printed and everything is written as JSON to ``--out``.

Without CUDA it prints one line and exits 0 (``--require-cuda``: 1); ``--device cpu --tiny``
runs the whole check on the CPU with tiny models (the tests use it). Exit code 1 when a model
fails or the devices disagree.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import math
import platform
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from sgdconv.models.registry import model_factory
from sgdconv.stats import estimate_gradient_stats, top_hessian_eigenvalue

ROOT = Path(__file__).resolve().parents[1]
NO_CUDA = "gpu_check: no CUDA device (torch.cuda.is_available() is False); nothing to check"
Batch = tuple[Any, Tensor]
LossFn = Callable[[Any, Tensor], Tensor]
MIB = 2**20


@dataclass(frozen=True)
class ModelSpec:
    """A model shape to check: a registry name with its kwargs, and the format of its data.

    Images are ``[batch, *input_shape]`` float with labels in ``[0, n_classes)``; tokens
    (``tokens=True``) are int64 ``[tgt_len, batch]`` with targets of the same shape, passed as
    ``model(data, target)``; a ``recurrent`` model (Transformer-XL) returns ``(loss, state)``
    and is trained as ``model(data, target, state)`` with the previous step's state (the
    memory), while the statistics take each micro-batch without memory. ``config_key`` names
    the ``zhang.vision`` experiment of the config whose per-GPU batch (``batch_size // nproc``)
    and statistics micro-batch replace the defaults.
    """

    label: str
    model: str
    kwargs: Mapping[str, Any]
    batch: int
    stats_batch: int
    input_shape: tuple[int, ...]
    n_classes: int
    tokens: bool = False
    recurrent: bool = False
    optimizer: str = "sgd"
    dataset_size: int = 0  # images or tokens per epoch, for runtime estimates
    config_key: str | None = None
    lr: float = 0.01  # SGD with momentum 0.9, or Adam

    @property
    def unit(self) -> str:
        return "tokens" if self.tokens else "images"

    def items(self, n: int) -> int:
        """Images, or tokens, in a batch of ``n``."""
        return n * self.input_shape[0] if self.tokens else n


# fmt: off
_TXL = {"n_layer": 4, "d_model": 410, "n_head": 10, "d_head": 41, "d_inner": 2100, "tgt_len": 150,
        "mem_len": 150, "vocab_size": 267_735, "cutoffs": (20_000, 40_000, 200_000), "dropout": 0.1}
_TXL_TINY = {"n_layer": 1, "d_model": 8, "n_head": 2, "d_head": 4, "d_inner": 16, "tgt_len": 6,
             "mem_len": 6, "vocab_size": 50, "cutoffs": (10, 20, 40), "dropout": 0.1}
_LM = {"tokens": True, "recurrent": True, "optimizer": "adam", "lr": 2.5e-4}

#: (paper shape, tiny shape) per model; a model is added with one entry.
SPECS: list[tuple[ModelSpec, ModelSpec]] = [
    (
        ModelSpec("resnet101", "resnet101", {"num_classes": 1000}, 32, 32, (3, 224, 224), 1000,
                  dataset_size=1_281_167, config_key="nonint"),
        ModelSpec("resnet101", "small_resnet", {"channels": (4, 8), "strides": (1, 2),
                  "in_channels": 3, "num_classes": 1000}, 4, 4, (3, 16, 16), 1000),
    ),
    (
        ModelSpec("cifar_resnet18", "cifar_resnet18", {"num_classes": 10}, 128, 128, (3, 32, 32),
                  10, dataset_size=50_000, config_key="interp"),
        ModelSpec("cifar_resnet18", "small_resnet", {"channels": (4, 4), "in_channels": 3,
                  "num_classes": 10}, 4, 4, (3, 32, 32), 10),
    ),
    (
        ModelSpec("transformer_xl", "transformer_xl", _TXL, 60, 60, (150,), 267_735,
                  dataset_size=103_227_021, **_LM),
        ModelSpec("transformer_xl", "transformer_xl", _TXL_TINY, 3, 3, (6,), 50, **_LM),
    ),
]
# fmt: on


def with_config(spec: ModelSpec, config: Mapping[str, Any]) -> ModelSpec:
    """``spec`` with its per-GPU batch and statistics micro-batch from a paper-tier config."""
    if spec.config_key is None or not config:
        return spec
    exp = config["zhang"]["vision"][spec.config_key]
    batch = int(exp["batch_size"]) // int(exp.get("nproc", 1))
    return dataclasses.replace(
        spec, batch=batch, stats_batch=int(exp.get("stats", {}).get("microbatch") or batch)
    )


class Unavailable(Exception):
    """The model's factory cannot be imported (not written yet, or a missing dependency)."""


def build(spec: ModelSpec, seed: int = 0) -> nn.Module:
    """The model of ``spec``, seeded; :class:`Unavailable` if its factory cannot be found."""
    try:
        factory = model_factory(spec.model)
    except (KeyError, ImportError, AttributeError) as err:
        raise Unavailable(f"{spec.model} not available ({type(err).__name__}: {err})") from err
    torch.manual_seed(seed)
    return factory(**spec.kwargs)


def lm_loss(output: Any, target: Tensor) -> Tensor:
    """Mean token loss of a language model called as ``model(tokens, targets)`` that returns
    the per-token losses (and, Transformer-XL, its new memories)."""
    return (output[0] if isinstance(output, tuple | list) else output).mean()


def loss_for(spec: ModelSpec) -> LossFn:
    return lm_loss if spec.tokens else nn.CrossEntropyLoss()


def synthetic_batch(
    spec: ModelSpec, n: int, device: torch.device, gen: torch.Generator, dtype=torch.float32
) -> Batch:
    """A batch of ``n`` in the real format of ``spec``, drawn on ``device``."""
    if spec.tokens:
        shape = (spec.input_shape[0], n)
        data = torch.randint(spec.n_classes, shape, generator=gen, device=device)
        target = torch.randint(spec.n_classes, shape, generator=gen, device=device)
        return (data, target), target
    x = torch.randn(n, *spec.input_shape, generator=gen, device=device, dtype=dtype)
    return x, torch.randint(spec.n_classes, (n,), generator=gen, device=device)


def _call(model: nn.Module, inputs: Any) -> Any:
    return model(*inputs) if isinstance(inputs, tuple | list) else model(inputs)


def _timed(device: torch.device, fn: Callable[[], Any]) -> tuple[Any, float, float | None]:
    """``fn()``, its wall time (s) and the peak device memory meanwhile (MiB; None on CPU)."""
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.perf_counter()
    out = fn()
    if cuda:
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - t0
    return out, seconds, torch.cuda.max_memory_allocated(device) / MIB if cuda else None


def train_throughput(
    model: nn.Module,
    batch_fn: Callable[[int], Batch],
    steps: int,
    device: torch.device | str,
    *,
    loss_fn: LossFn,
    items_per_step: int,
    lr: float = 0.01,
    optimizer: str = "sgd",
    recurrent: bool = False,
    warmup: int = 2,
) -> dict[str, Any]:
    """Time ``steps`` steps of SGD (momentum 0.9) or Adam on ``batch_fn(i)`` after ``warmup``
    untimed ones; items/s, step time, peak memory (cuda) and the losses. ``recurrent``: the
    model returns ``(output, state)`` and gets the previous step's state as last argument."""
    device = torch.device(device)
    model.to(device).train()
    opt = (
        torch.optim.Adam(model.parameters(), lr=lr)
        if optimizer == "adam"
        else torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    )
    state = None

    def step(i: int) -> Tensor:
        nonlocal state
        inputs, targets = batch_fn(i)
        opt.zero_grad(set_to_none=True)
        if recurrent:
            output, state = model(*inputs, state)
        else:
            output = _call(model, inputs)
        loss = loss_fn(output, targets)
        loss.backward()
        opt.step()
        return loss.detach()

    for i in range(warmup):
        step(i)
    losses, seconds, peak = _timed(device, lambda: [step(warmup + i) for i in range(steps)])
    opt.zero_grad(set_to_none=True)
    values = [float(x) for x in losses] or [math.nan]
    out = {"steps": steps, "seconds": seconds, "step_ms": 1e3 * seconds / max(steps, 1)}
    out.update(items_per_s=items_per_step * steps / seconds, peak_mem_mib=peak)
    out.update(loss_first=values[0], loss_last=values[-1])
    return {**out, "finite": all(math.isfinite(v) for v in values)}


def stats_throughput(
    model: nn.Module,
    batches: Sequence[Batch],
    device: torch.device | str,
    *,
    loss_fn: LossFn,
    items_per_batch: int,
    microbatch_size: int | None = None,
    max_hvp: int = 10,
    tol: float = 1e-3,
) -> dict[str, Any]:
    """Time ``estimate_gradient_stats`` and the Lanczos sharpness on ``batches`` (the model
    in train mode, on ``device``); items/s and peak memory of each pass, and the values."""
    device = torch.device(device)
    model.to(device).train()
    inputs, targets = batches[0]  # warm-up: first-call dispatch and allocations
    loss_fn(_call(model, inputs), targets).backward()
    model.zero_grad(set_to_none=True)
    items = items_per_batch * len(batches)
    g, seconds, peak = _timed(
        device,
        lambda: estimate_gradient_stats(model, loss_fn, batches, microbatch_size=microbatch_size),
    )
    out: dict[str, Any] = {"n_microbatches": len(batches), "items": items}
    out["gradient_pass"] = {"seconds": seconds, "items_per_s": items / seconds}
    out["gradient_pass"]["peak_mem_mib"] = peak
    eig, seconds, peak = _timed(
        device, lambda: top_hessian_eigenvalue(model, loss_fn, batches, tol=tol, max_hvp=max_hvp)
    )
    sharp = {"seconds": seconds, "n_hvp": eig.n_hvp, "hvp_per_s": eig.n_hvp / seconds}
    sharp["items_per_s"] = items * eig.n_hvp / seconds  # samples through a double backward
    sharp.update(peak_mem_mib=peak, residual=eig.residual, converged=eig.converged)
    out["sharpness_pass"] = sharp
    values = {"loss": g.loss, "grad_norm": g.grad_norm, "noise_norm": g.noise_norm}
    out.update(values, sharpness=eig.value)
    out["finite"] = all(math.isfinite(out[k]) for k in COMPARED)
    return out


COMPARED = ("loss", "grad_norm", "noise_norm", "sharpness")


def _cast(x: Any, device: torch.device, dtype: torch.dtype) -> Any:
    if isinstance(x, tuple | list):
        return type(x)(_cast(t, device, dtype) for t in x)
    if isinstance(x, Tensor):
        return x.to(device, dtype) if x.is_floating_point() else x.to(device)
    return x


def _statistics(model: nn.Module, batches: Sequence[Batch], loss_fn: LossFn, **eig) -> dict:
    g = estimate_gradient_stats(model, loss_fn, batches)
    e = top_hessian_eigenvalue(model, loss_fn, batches, **eig)
    values = {"loss": g.loss, "grad_norm": g.grad_norm, "noise_norm": g.noise_norm}
    return {**values, "sharpness": e.value, "sharpness_residual": e.residual, "n_hvp": e.n_hvp}


def compare_devices(
    model: nn.Module,
    batches: Sequence[Batch],
    loss_fn: LossFn,
    *,
    devices: tuple[str, str] = ("cpu", "cuda"),
    second: nn.Module | None = None,
    dtype: torch.dtype = torch.float64,
    rtol: float = 1e-6,
    tol: float = 1e-8,
    max_hvp: int = 200,
) -> dict[str, Any]:
    """Loss, |∇L|, σ and λ_max of copies of ``model`` (train mode, in ``dtype``) on the same
    ``batches`` on each of ``devices``; ``ok`` when every relative difference is <= ``rtol``.

    ``second`` replaces the copy evaluated on the second device (same architecture): with
    perturbed weights the comparison must fail, which is how the tests show that it can.
    """
    results = []
    for device, net in zip(devices, (model, model if second is None else second), strict=True):
        dev = torch.device(device)
        net = copy.deepcopy(net).to(dev, dtype).train()
        local = [(_cast(x, dev, dtype), _cast(y, dev, dtype)) for x, y in batches]
        values = _statistics(net, local, loss_fn, tol=tol, max_hvp=max_hvp)
        results.append({"device": str(dev), **values})
    a, b = results
    rel = {
        k: abs(a[k] - b[k]) / max(abs(a[k]), abs(b[k]), torch.finfo(dtype).tiny) for k in COMPARED
    }
    ok = all(math.isfinite(a[k]) and r <= rtol for k, r in rel.items())
    return {"dtype": str(dtype), "rtol": rtol, "results": results, "rel_diff": rel, "ok": ok}


def check_model(spec: ModelSpec, device: torch.device, args: argparse.Namespace) -> dict:
    """Train ``spec`` for ``args.steps`` steps and run its statistics: one row of the table."""
    row: dict[str, Any] = {"model": spec.label, "factory": spec.model, "device": str(device)}
    row.update(batch=spec.batch, stats_batch=spec.stats_batch, unit=spec.unit)
    model = None
    try:
        model = build(spec, args.seed)
        row["n_params"] = sum(p.numel() for p in model.parameters())
        gen = torch.Generator(device=device).manual_seed(args.seed)
        train = [synthetic_batch(spec, spec.batch, device, gen) for _ in range(2)]
        loss_fn, n_stats = loss_for(spec), spec.items(spec.stats_batch)
        kw = {"loss_fn": loss_fn, "items_per_step": spec.items(spec.batch), "lr": spec.lr,
              "optimizer": spec.optimizer, "recurrent": spec.recurrent}  # fmt: skip
        t = row["train"] = train_throughput(model, lambda i: train[i % 2], args.steps, device, **kw)
        t["epoch_s_one_device"] = (
            spec.dataset_size / t["items_per_s"] if spec.dataset_size else None
        )
        sample = [synthetic_batch(spec, spec.stats_batch, device, gen)
                  for _ in range(args.microbatches)]  # fmt: skip
        kw = {"loss_fn": loss_fn, "items_per_batch": n_stats, "max_hvp": args.max_hvp,
              "microbatch_size": n_stats if spec.tokens else None}  # fmt: skip
        row["stats"] = stats_throughput(model, sample, device, **kw)
        finite = row["train"]["finite"] and row["stats"]["finite"]
        row.update(status="ok" if finite else "error", message="" if finite else "non-finite")
    except Unavailable as err:
        row.update(status="skipped", message=f"{spec.model} not available", detail=str(err))
    except Exception as err:  # one failing model (e.g. out of memory) must not hide the others
        row.update(status="error", message=f"{type(err).__name__}: {err}"[:500])
    finally:
        del model
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return row


def compare_small(device: torch.device, args: argparse.Namespace) -> dict[str, Any]:
    """:func:`compare_devices` of the CPU and ``device`` on a small ResNet in float64."""
    torch.manual_seed(args.seed)
    model = model_factory("small_resnet")(channels=(4, 8), strides=(1, 2), in_channels=3)
    spec = ModelSpec("small_resnet", "small_resnet", {}, 8, 8, (3, 8, 8), 10)
    gen = torch.Generator().manual_seed(args.seed)
    batches = [synthetic_batch(spec, 8, torch.device("cpu"), gen) for _ in range(4)]
    result = compare_devices(
        model, batches, loss_for(spec), devices=("cpu", str(device)), rtol=args.rtol
    )
    return {"model": "small_resnet(channels=(4, 8), strides=(1, 2)), 4 x 8 images 8x8", **result}


def machine_info(device: torch.device) -> dict[str, Any]:
    """Versions, the device and the settings that change throughput."""
    info: dict[str, Any] = {"python": platform.python_version(), "torch": torch.__version__}
    info.update(device=str(device), threads=torch.get_num_threads())
    info["cudnn_benchmark"] = torch.backends.cudnn.benchmark
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(
            gpu=props.name,
            gpu_mem_gib=props.total_memory / 2**30,
            cuda=torch.version.cuda,
            cudnn=torch.backends.cudnn.version(),
            tf32_matmul=torch.backends.cuda.matmul.allow_tf32,
            tf32_cudnn=torch.backends.cudnn.allow_tf32,
        )
    return info


def _fmt(x: float | None, spec: str = ".4g") -> str:
    return "-" if x is None else format(x, spec)


def print_table(report: dict[str, Any]) -> None:
    """The measurements as a plain-text table (what goes into the README)."""
    head = (
        f"{'model':<16} {'device':<7} {'unit':<6} {'train/s':>9} {'step ms':>8} {'MiB':>8} | "
        f"{'grad/s':>9} {'MiB':>8} {'hvp·items/s':>11} {'MiB':>8} | {'loss':>7} {'|∇L|':>8} "
        f"{'σ':>8} {'λ_max':>8}  status"
    )
    print(head)
    print("-" * len(head))
    for row in report["models"]:
        t, s = row.get("train", {}), row.get("stats", {})
        g, h = s.get("gradient_pass", {}), s.get("sharpness_pass", {})
        print(
            f"{row['model']:<16} {row['device']:<7} {row['unit']:<6} "
            f"{_fmt(t.get('items_per_s'), '.1f'):>9} {_fmt(t.get('step_ms'), '.1f'):>8} "
            f"{_fmt(t.get('peak_mem_mib'), '.0f'):>8} | {_fmt(g.get('items_per_s'), '.1f'):>9} "
            f"{_fmt(g.get('peak_mem_mib'), '.0f'):>8} {_fmt(h.get('items_per_s'), '.1f'):>11} "
            f"{_fmt(h.get('peak_mem_mib'), '.0f'):>8} | {_fmt(s.get('loss')):>7} "
            f"{_fmt(s.get('grad_norm')):>8} {_fmt(s.get('noise_norm')):>8} "
            f"{_fmt(s.get('sharpness')):>8}  {row['status']} {row.get('message', '')}".rstrip()
        )
    c = report["compare"]
    if "error" in c:
        print(f"\ncpu/device comparison failed: {c['error']}")
        return
    a, b = c["results"]
    print(f"\n{a['device']} vs {b['device']} ({c['model']}, {c['dtype']}), rtol {c['rtol']:g}:")
    for k, r in c["rel_diff"].items():
        print(f"  {k:<11} {a[k]:>14.10g} {b[k]:>14.10g}  rel. diff {r:.2e}")
    print(f"  {'agree' if c['ok'] else 'DISAGREE'}")


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda", help="cuda (default), cuda:N or cpu")
    p.add_argument("--tiny", action="store_true", help="tiny models and inputs (CPU tests)")
    p.add_argument("--steps", type=int, default=20, help="timed training steps per model")
    p.add_argument("--microbatches", type=int, default=4, help="micro-batches of the statistics")
    p.add_argument("--max-hvp", type=int, default=10, help="Hessian-vector products (Lanczos)")
    p.add_argument("--rtol", type=float, default=1e-6, help="cpu/device agreement (float64)")
    p.add_argument("--models", nargs="*", help="labels to check (default all)")
    p.add_argument("--config", type=Path, default=ROOT / "config" / "paper.yaml")
    p.add_argument("--cudnn-benchmark", action="store_true", help="(the engine leaves it off)")
    p.add_argument("--threads", type=int, help="torch threads (CPU)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--require-cuda", action="store_true", help="exit 1 when there is no CUDA")
    p.add_argument("--out", type=Path, help="write the results as JSON here")
    args = p.parse_args(argv)
    if args.microbatches < 2:
        p.error("--microbatches must be >= 2 (the noise is estimated from their spread)")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the check; 0 when every model ran and the devices agree (or there is no CUDA)."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print(NO_CUDA)
        return 1 if args.require_cuda else 0
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.backends.cudnn.benchmark = args.cudnn_benchmark
    config: dict = {}
    if not args.tiny and args.config.exists():
        import yaml

        config = yaml.safe_load(args.config.read_text())
    specs = [tiny if args.tiny else with_config(paper, config) for paper, tiny in SPECS]
    if args.models:
        specs = [s for s in specs if s.label in args.models]
    rows = []
    for spec in specs:
        rows.append(check_model(spec, device, args))
        print(f"gpu_check: {spec.label}: {rows[-1]['status']} {rows[-1].get('message', '')}")
    report = {
        "machine": machine_info(device),
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "models": rows,
    }
    try:
        report["compare"] = compare_small(device, args)
    except Exception as err:  # report it with the measurements instead of losing them
        report["compare"] = {"ok": False, "error": f"{type(err).__name__}: {err}"[:500]}
    report["ok"] = report["compare"]["ok"] and all(r["status"] != "error" for r in rows)
    print()
    print_table(report)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2, default=str))
        print(f"\nwritten: {args.out}")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
