"""Task functions for the examples, tests and benchmark of :mod:`interp.parallel` (a task
function must be importable by name, so that a worker process can find it)."""

import torch


def noisy_sum(task: dict, shared: float) -> float:
    """A seeded draw of ``task["n"] + 1`` normal numbers, summed and scaled by ``shared``."""
    return float(torch.randn(task["n"] + 1).sum()) * shared


def matmul_chain(task: dict, shared: torch.Tensor) -> torch.Tensor:
    """CPU-bound work of a known size: ``task["steps"]`` products of a random matrix with ``shared``."""
    x = torch.randn(shared.shape[0], shared.shape[0])
    for _ in range(task["steps"]):
        x = torch.tanh(x @ shared)
    return x.sum()


def empty(task: dict, shared: object = None) -> int:
    """No work: what a backend costs per task."""
    return task["seed"]
