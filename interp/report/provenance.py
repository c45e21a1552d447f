"""What a report records about its run: package versions, the machine, zoo subjects trained or read, JSON values."""

import dataclasses
import math
import os
import platform
from pathlib import Path
from typing import Any

from models.kernels import kernels

_VERSIONED_PACKAGES = (
    "torch", "transformer_lens", "transformers", "numpy", "scikit-learn", "pandas",
    "einops", "gensim",
)


def package_versions() -> dict[str, str]:
    """Versions of the packages results depend on, for ``results.json``."""
    from importlib.metadata import PackageNotFoundError, version

    versions = {"python": platform.python_version()}
    for name in ("interp",) + _VERSIONED_PACKAGES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            pass
    return versions


def machine() -> dict[str, Any]:
    """What the numbers were computed on, for ``results.json``: trained subjects and float32 reductions can
    differ between CPUs whose kernels torch chooses differently (its ``cpu_capability``: AVX2, AVX512, ...;
    ``kernels`` adds whether MKL and oneDNN were held to AVX2 too: :mod:`models.kernels`)."""
    import torch

    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        model = platform.processor()
    return {"cpu": model or platform.machine(), "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "kernels": kernels(), "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads()}


def subjects(runs: list[dict[str, Any]]) -> list[tuple[str, str, float]]:
    """Zoo records grouped by subject and preset: name, "full, seed 0" (or "quick, seeds 0, 1; 4 models"), seconds."""
    groups: dict[tuple[str, bool], list[dict[str, Any]]] = {}
    for run in runs:
        groups.setdefault((run["name"], bool(run["quick"])), []).append(run)
    out = []
    for (name, quick), group in groups.items():
        seeds = list(dict.fromkeys(run["seed"] for run in group))
        which = f"{'quick' if quick else 'full'}, seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}"
        if len(group) > len(seeds):
            which += f"; {len(group)} models"
        out.append((name, which, sum(run.get("seconds", 0) for run in group)))
    return out


def not_trained(cached: list[dict[str, Any]], trained: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The cache reads that the run's own trainings do not explain (a subject a sweep trained is read back after)."""
    left = [(t["name"], t["quick"], t["seed"]) for t in trained]
    out = []
    for read in cached:
        key = (read["name"], read["quick"], read["seed"])
        if key in left:
            left.remove(key)
        else:
            out.append(read)
    return out


def to_jsonable(value: Any) -> Any:
    """Turn configs, numpy scalars, tensors and paths into plain JSON values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_jsonable(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "tolist"):  # numpy arrays and scalars, torch tensors
        return to_jsonable(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)
