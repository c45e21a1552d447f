"""Task functions the parallel tests hand to worker processes (importable by name)."""

import os
import signal
from pathlib import Path

import torch


def die_once(task: dict, shared: torch.Tensor) -> torch.Tensor:
    """Kills its own process the first time it runs task ``task["die"]`` (marked by a file in ``task["dir"]``),
    as the kernel's OOM killer or a lost node would; otherwise a seeded computation with ``shared``."""
    marker = Path(task["dir"]) / f"died-{task['i']}"
    if task.get("die") and not marker.exists():
        marker.touch()
        os.kill(os.getpid(), signal.SIGKILL)
    return torch.randn(4) @ shared


def counted(task: dict, shared: torch.Tensor) -> torch.Tensor:
    """Appends ``task["i"]`` to ``task["dir"]/ran`` (which tasks ran, across processes), then a seeded draw; the
    task with ``stop_at`` kills its process once, as a Ctrl-C or a job's time limit would stop the sweep."""
    with open(Path(task["dir"]) / "ran", "a") as log:
        log.write(f"{task['i']}\n")
    marker = Path(task["dir"]) / "stopped"
    if task["i"] == task.get("stop_at") and not marker.exists():
        marker.touch()
        os.kill(os.getpid(), signal.SIGKILL)
    return torch.randn(3) * shared


def raises_on(task: dict, shared: object = None) -> int:
    """Raises for the task with ``bad``; others return their index."""
    if task.get("bad"):
        raise ArithmeticError(f"task {task['i']} cannot be done")
    return task["i"]
