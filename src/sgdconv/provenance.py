"""``provenance.json``: what produced a tier's results (code, packages, config, machine)."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
from collections.abc import Mapping
from datetime import UTC, datetime
from importlib import metadata
from typing import Any

#: Packages whose versions determine the numbers and figures.
PACKAGES = (
    "sgdconv",
    "torch",
    "torchvision",
    "numpy",
    "scipy",
    "pandas",
    "pyarrow",
    "scikit-learn",
    "matplotlib",
    "seaborn",
    "papermill",
    "snakemake",
)


def config_hash(config: Mapping[str, Any]) -> str:
    """SHA-256 of the config as canonical JSON (key order and whitespace do not matter)."""
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def git_state(cwd: str | os.PathLike = ".") -> dict[str, Any]:
    """Commit and dirty flag of the checkout at ``cwd`` (``None`` outside a git repository)."""

    def run(*args: str) -> str | None:
        try:
            out = subprocess.run(
                ["git", *args], cwd=cwd, capture_output=True, text=True, check=True, timeout=10
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip()

    commit = run("rev-parse", "HEAD")
    status = run("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "hostname": platform.node(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
    }
    try:
        import torch

        info["torch_cuda_available"] = torch.cuda.is_available()
        if torch.cuda.is_available():
            info["cuda_devices"] = [
                torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())
            ]
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    return info


def provenance(config: Mapping[str, Any], cwd: str | os.PathLike = ".") -> dict[str, Any]:
    """Everything ``provenance.json`` records."""
    return {
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "tier": config.get("name"),
        "config_sha256": config_hash(config),
        "config": config,
        "git": git_state(cwd),
        "packages": package_versions(),
        "machine": machine(),
    }
