"""``benchmarks/gpu_check.py``: the no-CUDA exit, the tiny CPU run end to end, the paper shapes
read from the config, and a device comparison that can fail."""

from __future__ import annotations

import copy
import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def gpu_check():
    path = ROOT / "benchmarks" / "gpu_check.py"
    spec = importlib.util.spec_from_file_location("gpu_check", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("gpu_check", None)


def test_without_cuda_one_line_and_exit_0(gpu_check, monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    out = tmp_path / "gpu_check.json"
    assert gpu_check.main(["--out", str(out)]) == 0
    assert capsys.readouterr().out == (
        "gpu_check: no CUDA device (torch.cuda.is_available() is False); nothing to check\n"
    )
    assert not out.exists()
    assert gpu_check.main(["--require-cuda"]) == 1


def test_tiny_cpu_run_end_to_end(gpu_check, tmp_path, capsys):
    out = tmp_path / "sub" / "gpu_check.json"
    argv = ["--device", "cpu", "--tiny", "--steps", "2", "--microbatches", "2", "--max-hvp", "4"]
    assert gpu_check.main([*argv, "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert set(report) == {"machine", "settings", "models", "compare", "ok"}
    assert report["ok"] is True
    assert report["machine"]["device"] == "cpu"
    rows = {row["model"]: row for row in report["models"]}
    assert set(rows) == {"resnet101", "cifar_resnet18", "transformer_xl"}
    for name, row in rows.items():
        if name == "transformer_xl" and row["status"] == "skipped":  # not written yet
            assert row["message"] == "transformer_xl not available"
            continue
        assert row["status"] == "ok", row
        train, stats = row["train"], row["stats"]
        assert train["steps"] == 2 and train["items_per_s"] > 0 and train["finite"]
        assert train["peak_mem_mib"] is None  # the CPU has no peak-memory counter
        assert stats["gradient_pass"]["items_per_s"] > 0
        assert stats["sharpness_pass"]["n_hvp"] <= 4
        for key in ("loss", "grad_norm", "noise_norm", "sharpness"):
            assert stats[key] == pytest.approx(stats[key])  # finite
    assert rows["resnet101"]["unit"] == "images"
    assert rows["transformer_xl"]["unit"] == "tokens"
    compare = report["compare"]
    assert compare["ok"] and [r["device"] for r in compare["results"]] == ["cpu", "cpu"]
    printed = capsys.readouterr().out
    assert "resnet101" in printed and "agree" in printed


def test_missing_model_is_skipped_with_a_message(gpu_check):
    spec = gpu_check.ModelSpec("lm", "no_such_model", {}, 2, 2, (4,), 10, tokens=True)
    args = gpu_check.parse_args(["--device", "cpu"])
    row = gpu_check.check_model(spec, torch.device("cpu"), args)
    assert row["status"] == "skipped"
    assert row["message"] == "no_such_model not available"


def test_paper_shapes_from_config(gpu_check):
    import yaml

    config = yaml.safe_load((ROOT / "config" / "paper.yaml").read_text())
    specs = {paper.label: gpu_check.with_config(paper, config) for paper, _ in gpu_check.SPECS}
    assert (specs["resnet101"].batch, specs["resnet101"].stats_batch) == (32, 32)  # 256 / 8 GPUs
    assert specs["resnet101"].input_shape == (3, 224, 224)
    assert specs["resnet101"].n_classes == 1000
    assert (specs["cifar_resnet18"].batch, specs["cifar_resnet18"].input_shape) == (
        128,
        (3, 32, 32),
    )
    txl = specs["transformer_xl"]
    assert (txl.batch, txl.input_shape, txl.n_classes) == (60, (150,), 267_735)
    assert txl.kwargs["cutoffs"] == (20_000, 40_000, 200_000)
    assert txl.items(txl.batch) == 9000  # tokens per step


def test_compare_devices_agrees_and_detects_a_mismatch(gpu_check):
    from sgdconv.models.registry import build_model

    torch.manual_seed(0)
    model = build_model("small_resnet", channels=(4,), in_channels=3)
    spec = gpu_check.ModelSpec("s", "small_resnet", {}, 6, 6, (3, 6, 6), 10)
    gen = torch.Generator().manual_seed(1)
    batches = [gpu_check.synthetic_batch(spec, 6, torch.device("cpu"), gen) for _ in range(3)]
    loss_fn = gpu_check.loss_for(spec)
    same = gpu_check.compare_devices(model, batches, loss_fn, devices=("cpu", "cpu"))
    assert same["ok"] and max(same["rel_diff"].values()) <= 1e-12
    assert same["results"][0]["loss"] > 0

    perturbed = copy.deepcopy(model)
    with torch.no_grad():
        for p in perturbed.parameters():
            p.add_(1e-3 * torch.randn_like(p))
    diff = gpu_check.compare_devices(
        model, batches, loss_fn, devices=("cpu", "cpu"), second=perturbed
    )
    assert not diff["ok"]
    assert max(diff["rel_diff"].values()) > 1e-6
    assert all(p.dtype == torch.float32 for p in model.parameters())  # copies were cast
