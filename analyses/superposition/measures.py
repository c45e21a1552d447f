"""The superposition analysis's sweeps and summaries: toy models over sparsity (5 in 2), feature
dimensionality, the phase diagram and sparse autoencoders, each a tidy DataFrame (the sweeps run on
:func:`interp.parallel.map_tasks`)."""

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch

from interp.claims import Check, Claim
from interp.parallel import map_tasks
from interp.sae import max_cosine_similarity, train_sae
from interp.superposition import dimensions_per_feature, superposition_table
from models.toy import evaluate_loss, sample_hidden, train_toy

if TYPE_CHECKING:
    from analyses.superposition import Config


STICKY = {"1": 1.0, "3/4": 0.75, "2/3": 2 / 3, "1/2": 0.5, "2/5": 0.4, "3/8": 0.375}
# A feature is filed under a sticky fraction only if its D_i is this close to it: half the smallest gap
# between two fractions (2/5 - 3/8 = 0.025), so no feature could belong to two; the rest are "none".
STICKY_TOLERANCE = 0.0125
# "D* plateaus at 1/2" needs this many consecutive sparsities with D* within PLATEAU_TOLERANCE of 1/2.
PLATEAU_POINTS, PLATEAU_TOLERANCE = 3, 0.05
REPRESENTED = 0.5  # a feature with ||W_i|| above this is "represented" (the paper's bars reach ~1)

# -- computations ------------------------------------------------------------------------
# Each sweep is a short list of tasks for interp.parallel.map_tasks (serial, worker processes or
# Ray give the same numbers), each task one vectorised toy model over many cells: one per model
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


def train_intro(task: dict) -> dict:
    """A task of :func:`intro_sweep`: the ReLU or the linear 5-in-2 model at every sparsity from every random
    start, one vectorised toy model (instances seed-major); its weights, biases and each instance's loss."""
    sparsity = torch.tensor(task["sparsities"], dtype=torch.float64)
    restarts = task["restarts"]
    model = train_toy(5, 2, (1 - sparsity).float().repeat(restarts)[:, None], (0.9 ** torch.arange(5.0))[None, :],
                      n_instances=len(sparsity) * restarts, steps=task["steps"], seed=task["seed"],
                      batch_size=task["batch_size"], lr=3e-2, relu=task["relu"])
    return {"W": model.W.detach(), "b": model.b.detach(), "loss": evaluate_loss(model)}


def intro_sweep(config: "Config") -> tuple[pd.DataFrame, dict[str, torch.Tensor]]:
    """5 features (importance 0.9^i) in 2 dims, ReLU across sparsities plus the linear model.

    Each sparsity is trained from ``restarts`` random starts and the lowest-loss start kept,
    as the paper does, so a slow start in the dense regime does not pass for the optimum.
    One task per model, both on the run's seed (as before the sweep ran through map_tasks).
    """
    importance = 0.9 ** torch.arange(5.0)
    sparsity = torch.tensor(config.intro_sparsities, dtype=torch.float64)
    models = (("ReLU", True), ("linear", False))
    tasks = [{"relu": relu, "sparsities": list(config.intro_sparsities), "restarts": config.restarts,
              "steps": config.intro_steps, "batch_size": config.batch_size, "seed": config.seed} for _, relu in models]
    W, rows = {}, []
    for (name, _), result in zip(models, map_tasks(train_intro, tasks, name="intro")):
        keep = best_of_seeds(result["loss"], len(sparsity))
        W[name] = result["W"][keep]
        table = superposition_table(W[name])
        table["model"] = name
        table["sparsity"] = sparsity.numpy()[table["instance"]]
        table["importance"] = importance.double().numpy()[table["feature"]]
        table["bias"] = result["b"][keep].flatten().double().numpy()
        rows.append(table)
    return pd.concat(rows, ignore_index=True), W


def intro_summary(features: pd.DataFrame) -> pd.DataFrame:
    """Per model and sparsity: features represented (||W_i|| > 0.5) and dimensions per feature."""
    grouped = features.assign(represented=features["norm"] > REPRESENTED).groupby(["model", "sparsity"])
    summary = grouped.agg(represented=("represented", "sum"), sum_sq_norm=("norm", lambda v: float((v**2).sum())))
    summary["dimensions_per_feature"] = 2 / summary.pop("sum_sq_norm")
    return summary.reset_index()


def train_dimensionality(task: dict) -> dict:
    """A task of :func:`dimensionality_sweep`: one chunk of its sparsities as one vectorised toy model."""
    probability = torch.tensor(1 / np.array(task["inverse_density"]), dtype=torch.float32)
    model = train_toy(task["features"], task["hidden"], probability[:, None], n_instances=len(probability),
                      steps=task["steps"], seed=task["seed"], batch_size=task["batch_size"], lr=1e-3 * 3)
    return {"W": model.W.detach()}


def dimensionality_sweep(config: "Config") -> pd.DataFrame:
    """Feature dimensionality D_i and D* for many features across sparsity (uniform importance).

    The sparsities are trained in at most DIMENSIONALITY_TASKS consecutive chunks of at least
    DIMENSIONALITY_MIN_CHUNK (one task and one vectorised model each, each on its own seed)."""
    inverse_density = np.geomspace(1.0, config.dim_max_inverse_density, config.dim_sparsities)
    chunks = np.array_split(inverse_density, max(1, min(DIMENSIONALITY_TASKS,
                                                        len(inverse_density) // DIMENSIONALITY_MIN_CHUNK)))
    tasks = [{"chunk": k, "inverse_density": chunk.tolist(), "features": config.dim_features,
              "hidden": config.dim_hidden, "steps": config.dim_steps, "batch_size": config.batch_size,
              "seed": task_seed(config.seed, "dimensionality", k)} for k, chunk in enumerate(chunks)]
    W = torch.cat([result["W"] for result in map_tasks(train_dimensionality, tasks, name="dimensionality")])
    table = superposition_table(W)
    table["inverse_density"] = inverse_density[table["instance"]]
    table["dimensions_per_feature"] = dimensions_per_feature(W.double()).numpy()[table["instance"]]
    return table


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


def train_phase(task: dict) -> dict:
    """A task of :func:`phase_diagram`: one random start of every cell, one vectorised toy model; the learned
    weights [cells features] and each cell's loss."""
    cells = phase_cells(task["grid"])
    probability = torch.tensor([p for p, _ in cells], dtype=torch.float32)
    importance = torch.tensor([[1.0, r] for _, r in cells], dtype=torch.float32)
    model = train_toy(2, 1, probability[:, None], importance, n_instances=len(cells), steps=task["steps"],
                      seed=task["seed"], batch_size=task["batch_size"], lr=1e-2)
    return {"W": model.W.detach()[:, 0, :], "loss": evaluate_loss(model)}


def phase_diagram(config: "Config") -> pd.DataFrame:
    """2 features in 1 dimension: is the second one dropped, given the dimension, or superposed?"""
    grid = phase_cells(config.phase_grid)
    tasks = [{"grid": config.phase_grid, "restart": r, "steps": config.phase_steps, "batch_size": config.batch_size,
              "seed": task_seed(config.seed, "phase", r)} for r in range(config.restarts)]
    runs = map_tasks(train_phase, tasks, name="phase")
    # Several random starts (tasks) per cell; keep the lowest-loss one (the paper does the same).
    loss = torch.cat([run["loss"] for run in runs])  # [starts x cells], seed-major
    keep = best_of_seeds(loss, len(grid))
    W = torch.cat([run["W"] for run in runs])[keep].double().numpy()  # [cells features]
    loss = loss[keep]
    best = pd.DataFrame({"density": [p for p, _ in grid], "relative_importance": [r for _, r in grid],
                         "w_1": W[:, 0], "w_2": W[:, 1], "loss": loss.double().numpy()})
    strong_1, strong_2 = best["w_1"].abs() > REPRESENTED, best["w_2"].abs() > REPRESENTED
    best["phase"] = np.select([strong_1 & strong_2, strong_2], ["superposition", "dedicated dimension"],
                              "not represented")
    return best.reset_index(drop=True)


def train_sae_task(task: dict, activations: torch.Tensor) -> dict:
    """A task of :func:`sae_recovery`: one sparse autoencoder on the toy model's hidden activations."""
    sae = train_sae(activations, task["d_sae"], penalty=task["penalty"], k=task["k"], steps=task["steps"],
                    seed=task["seed"])
    return {"W_dec": sae.W_dec.detach()}


def sae_recovery(config: "Config") -> pd.DataFrame:
    """Train an L1 and a top-k sparse autoencoder (one task each) on a superposed model's hidden activations."""
    model = train_toy(config.sae_features, config.sae_hidden, 1 - config.sae_sparsity, steps=config.intro_steps,
                      seed=config.seed, batch_size=config.batch_size, lr=1e-2, progress=True)
    W = model.W.detach()[0]  # [hidden features]
    norms = W.norm(dim=0)
    represented = torch.nonzero(norms > REPRESENTED).flatten()
    _, hidden = sample_hidden(model, config.sae_samples, seed=config.seed + 1)
    activations = hidden[:, 0]  # [batch hidden]
    # k ~ the expected number of active features, at least 1 (Gao et al. 2024 tune k likewise).
    k = max(1, round((1 - config.sae_sparsity) * config.sae_features))
    tasks = [{"penalty": penalty, "d_sae": 2 * config.sae_features, "k": k, "steps": config.sae_steps,
              "seed": config.seed} for penalty in ("l1", "topk")]  # a stored result is keyed by the activations too
    rows = []
    for task, result in zip(tasks, map_tasks(train_sae_task, tasks, shared=activations, name="sae")):
        best = max_cosine_similarity(result["W_dec"], W.T[represented])
        rows += [{"penalty": task["penalty"], "feature": int(f), "norm": float(norms[f]), "max_cos": float(c)}
                 for f, c in zip(represented, best)]
    frame = pd.DataFrame(rows)
    frame.attrs.update(n_features=config.sae_features, n_hidden=config.sae_hidden, represented=len(represented))
    return frame


