"""The superposition analysis's measurements: the zoo requests its sweeps hand to
:func:`analyses.subjects.train_missing` (toy models over sparsity, feature dimensionality, the
phase diagram; the sparse autoencoders are requested in the package), their seeds, what is
read from the trained models, and the summaries of that (sticky fractions, the D* plateau and
its claim)."""

import numpy as np
import pandas as pd
import torch

from analyses.subjects import load
from interp.claims import Check, Claim
from models.toy import evaluate_loss
from models.toy_subjects import toy_settings


STICKY = {"1": 1.0, "3/4": 0.75, "2/3": 2 / 3, "1/2": 0.5, "2/5": 0.4, "3/8": 0.375}
# A feature is filed under a sticky fraction only if its D_i is this close to it: half the smallest gap
# between two fractions (2/5 - 3/8 = 0.025), so no feature could belong to two; the rest are "none".
STICKY_TOLERANCE = 0.0125
# "D* plateaus at 1/2" needs this many consecutive sparsities with D* within PLATEAU_TOLERANCE of 1/2.
PLATEAU_POINTS, PLATEAU_TOLERANCE = 3, 0.05
REPRESENTED = 0.5  # a feature with ||W_i|| above this is "represented" (the paper's bars reach ~1)


# -- computations ------------------------------------------------------------------------
# Each sweep is a short list of zoo subjects for analyses.subjects.train_missing, which trains the
# ones not cached as one interp.parallel.map_tasks sweep (serial, worker processes or Ray give the
# same numbers); each subject is one vectorised toy model over many cells: one per model
# (5-in-2: ReLU, linear), per random start (phase diagram), per chunk of sparsities
# (dimensionality) or per penalty (autoencoders). Coarse on purpose: a toy model of a few
# instances costs nearly as much per step as one of dozens.
STAGES = ("dimensionality", "phase")  # the sweeps whose tasks draw their own seeds (task_seed)
DIMENSIONALITY_TASKS, DIMENSIONALITY_MIN_CHUNK = 4, 3  # at most 4 chunks of sparsities, of at least 3 each


def task_seed(seed: int, stage: str, index: int) -> int:
    """The seed of task ``index`` of sweep ``stage`` for a run with ``seed``: numpy's SeedSequence of the three,
    so no two tasks share a seed, across stages and across runs with nearby seeds."""
    return int(np.random.SeedSequence([seed, STAGES.index(stage), index]).generate_state(1)[0])


def best_of_seeds(loss: torch.Tensor, n_cells: int) -> torch.Tensor:
    """Index of the lowest-loss instance per cell, instances laid out seed-major (seed, cell)."""
    return loss.reshape(-1, n_cells).argmin(dim=0) * n_cells + torch.arange(n_cells)


def intro_request(task: dict) -> dict:
    """The zoo request (``toy_model``) of a task of :func:`intro_sweep`: the ReLU or the linear 5-in-2 model at
    every sparsity from every random start, one vectorised toy model (instances seed-major)."""
    sparsity = torch.tensor(task["sparsities"], dtype=torch.float64)
    restarts = task["restarts"]
    return {"subject": "toy_model", "seed": task["seed"], **toy_settings(
        n_features=5, n_hidden=2, feature_probability=(1 - sparsity).float().repeat(restarts)[:, None],
        importance=(0.9 ** torch.arange(5.0))[None, :], n_instances=len(sparsity) * restarts,
        steps=task["steps"], batch_size=task["batch_size"], lr=3e-2, relu=task["relu"])}


def toy_results(request: dict) -> dict:
    """The requested toy model, from the zoo: its weights, biases and each instance's loss."""
    model = load(request)[0]
    return {"W": model.W.detach(), "b": model.b.detach(), "loss": evaluate_loss(model)}


def intro_summary(features: pd.DataFrame) -> pd.DataFrame:
    """Per model and sparsity: features represented (||W_i|| > 0.5) and dimensions per feature."""
    grouped = features.assign(represented=features["norm"] > REPRESENTED).groupby(["model", "sparsity"])
    summary = grouped.agg(represented=("represented", "sum"), sum_sq_norm=("norm", lambda v: float((v**2).sum())))
    summary["dimensions_per_feature"] = 2 / summary.pop("sum_sq_norm")
    return summary.reset_index()


def dimensionality_request(task: dict) -> dict:
    """The zoo request of a task of :func:`dimensionality_sweep`: one chunk of its sparsities as one toy model."""
    probability = torch.tensor(1 / np.array(task["inverse_density"]), dtype=torch.float32)
    return {"subject": "toy_model", "seed": task["seed"], **toy_settings(
        n_features=task["features"], n_hidden=task["hidden"], feature_probability=probability[:, None],
        n_instances=len(probability), steps=task["steps"], batch_size=task["batch_size"], lr=1e-3 * 3)}


def sticky_plateau(dims: pd.DataFrame, target: float = 0.5, tolerance: float = 0.05) -> dict:
    """The longest run of consecutive sparsities whose D* stays within ``tolerance`` of ``target``."""
    per = dims.groupby("inverse_density")["dimensions_per_feature"].first().sort_index()
    near = (per - target).abs() <= tolerance
    best, start = (0, None, None), None
    for k, (x, flag) in enumerate(near.items()):
        if flag and start is None:
            start = k
        if start is not None and (not flag or k == len(near) - 1):
            end = k if flag else k - 1
            if end - start + 1 > best[0]:
                best = (end - start + 1, start, end)
            start = None
    length, a, b = best
    if length == 0:
        return {"length": 0, "from": float("nan"), "to": float("nan"), "mean_dstar": float("nan")}
    return {"length": length, "from": float(per.index[a]), "to": float(per.index[b]),
            "mean_dstar": float(per.iloc[a:b + 1].mean())}


def sticky_counts(dims: pd.DataFrame, tolerance: float = STICKY_TOLERANCE) -> pd.DataFrame:
    """Represented features per sticky fraction their D_i lies within ``tolerance`` of, or "none"."""
    def fraction(value: float) -> str:
        nearest = min(STICKY, key=lambda k: abs(STICKY[k] - value))
        return nearest if abs(STICKY[nearest] - value) <= tolerance else "none"

    shown = dims[dims["norm"] > REPRESENTED].assign(fraction=lambda f: f["dimensionality"].map(fraction))
    table = shown.groupby("fraction")["dimensionality"].agg(features="size", median_D_i="median").reset_index()
    order = {name: i for i, name in enumerate([*STICKY, "none"])}
    return table.sort_values("fraction", key=lambda c: c.map(order)).reset_index(drop=True)


def plateau_claim(plateau: dict) -> Claim:
    """ "D* plateaus at 1/2": at least PLATEAU_POINTS consecutive sparsities within PLATEAU_TOLERANCE of 1/2."""
    return Claim("D* plateaus at 1/2 (antipodal pairs)", "plateau", (
        Check(f"consecutive sparsities with D* within {PLATEAU_TOLERANCE:g} of 1/2", plateau["length"], ">=",
              PLATEAU_POINTS, fmt="d"),))


def phase_cells(grid: int) -> list[tuple[float, float]]:
    """The phase diagram's cells, (density, relative importance), density-major."""
    return [(p, r) for p in np.geomspace(1.0, 0.01, grid) for r in np.geomspace(0.1, 10.0, grid)]


def phase_request(task: dict) -> dict:
    """The zoo request of a task of :func:`phase_diagram`: one random start of every cell, one toy model."""
    cells = phase_cells(task["grid"])
    probability = torch.tensor([p for p, _ in cells], dtype=torch.float32)
    importance = torch.tensor([[1.0, r] for _, r in cells], dtype=torch.float32)
    return {"subject": "toy_model", "seed": task["seed"], **toy_settings(
        n_features=2, n_hidden=1, feature_probability=probability[:, None], importance=importance,
        n_instances=len(cells), steps=task["steps"], batch_size=task["batch_size"], lr=1e-2)}
