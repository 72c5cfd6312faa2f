"""Shared fixtures: the repository root, and one run of the test tier in a temporary copy."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SNAKEMAKE = str(BIN / "snakemake")


def copy_workflow(dest: Path) -> Path:
    """Copy what a run needs (Snakefile, environment.yml, workflow/, config/) to ``dest``.

    The package itself is installed in the environment running the tests.
    """
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("Snakefile", "environment.yml"):
        shutil.copy2(ROOT / name, dest / name)
    for folder in ("workflow", "config"):
        shutil.copytree(
            ROOT / folder,
            dest / folder,
            ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints"),
        )
    return dest


def tier_config(name: str) -> dict:
    """The config of tier ``name`` as Snakemake sees it: ``config/<name>.yaml`` merged over the
    default tier's ``config/config.yaml`` (nested mappings key by key, lists whole)."""
    import yaml
    from snakemake.utils import update_config

    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    if name != "config":
        update_config(config, yaml.safe_load((ROOT / "config" / f"{name}.yaml").read_text()))
    return config


def run_snakemake(workdir: Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    return subprocess.run(
        [SNAKEMAKE, *args],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def float64():
    """Double precision as torch's default dtype for one test (exact comparisons), restored
    afterwards. Modules opt in with ``pytestmark = pytest.mark.usefixtures("float64")``."""
    import torch

    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


@pytest.fixture
def one_thread():
    """One PyTorch thread for tiny models: a second only adds synchronisation (and stalls on a
    shared CPU). Modules opt in with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def test_tier(tmp_path_factory) -> Path:
    """Run the whole test tier once (``snakemake --cores 2 --configfile config/test.yaml``)."""
    workdir = copy_workflow(tmp_path_factory.mktemp("tier"))
    result = run_snakemake(workdir, "--cores", "2", "--configfile", "config/test.yaml")
    if result.returncode != 0:
        pytest.fail(f"test tier failed:\n{result.stdout[-4000:]}\n{result.stderr[-8000:]}")
    return workdir / "results" / "test"
