"""The jl analysis's measurements: the series' packing, capacity curves (a sweep) and the small cases,
each a tidy DataFrame."""

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch

from interp.jl import angle_deg, jl_rate, coherence_lower_bound
from interp.chirps import chirp_prime, chirp_start
from interp.packing import capacity, max_abs_cos, pack, random_unit_vectors
from interp.parallel import map_tasks

if TYPE_CHECKING:
    from analyses.jl import Config


# Best known line packings. R^3: Conway, Hardin & Sloane 1996, "Packing lines, planes,
# etc.: packings in Grassmannian spaces", Experimental Math. 5, Table 1 (N <= 7 proven
# optimal there; N = 8 proven by Mixon & Parshall 2019, arXiv:1902.10177). R^4: 5 lines
# form the regular simplex (meets Welch's bound, arccos 1/4) and 12 lines the diagonals of
# the 24-cell (meets Levenshtein's bound, 60 degrees), both optimal by those bounds.
BEST_KNOWN_DEG = {(4, 3): 70.5288, (5, 3): 63.4349, (6, 3): 63.4349, (7, 3): 54.7356, (8, 3): 49.5567,
                  (5, 4): 75.5225, (12, 4): 60.0}

def angle_histogram(vectors: torch.Tensor, bins: np.ndarray, chunk_size: int = 2048) -> np.ndarray:
    """Counts of all pairwise angles (degrees, 0-180) in ``bins``, one Gram block at a time."""
    unit = (vectors / vectors.norm(dim=1, keepdim=True)).float()
    counts = np.zeros(len(bins) - 1, dtype=np.int64)
    for start in range(0, unit.shape[0], chunk_size):
        gram = unit[start:start + chunk_size] @ unit.T
        rows = torch.arange(gram.shape[0])
        keep = torch.arange(unit.shape[0])[None, :] > (rows + start)[:, None]  # pairs i < j once
        angles = torch.rad2deg(torch.arccos(gram[keep].clamp(-1, 1))).numpy()
        counts += np.histogram(angles, bins=bins)[0]
    return counts


def series_experiment(config: "Config") -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Random, optimised-from-random, and (where it applies) chirp-frame and optimised-from-chirp packings.

    Returns the summary (one row per set of vectors, with the optimiser's steps and time),
    the angle histograms and the optimisers' histories (column ``start``).
    """
    n, d, seed = config.n, config.d, config.seed
    runs = [("random", random_unit_vectors(n, d, seed=seed), 0, 0.0)]
    histories = []
    starts = ["random"] + (["chirp"] if chirp_prime(n, d) is not None else [])
    for start in starts:
        steps = config.random_steps if start == "random" and len(starts) > 1 else config.steps
        if start == "chirp":
            runs.append(("chirp frame", chirp_start(n, d, seed=seed), 0, 0.0))
        packed = pack(n, d, seed=seed, steps=steps, init=start, progress=True)
        runs.append((f"optimised from {start}", packed.vectors, steps, packed.seconds))
        histories.append(packed.history.assign(start=start))
    bins = np.linspace(0, 180, 721)
    hist, summary = [], []
    for name, vectors, steps, seconds in runs:
        mu = max_abs_cos(vectors)
        summary.append({"vectors": name, "max_abs_cos": mu, "min_angle_deg": angle_deg(mu),
                        "ratio_to_levenshtein": mu / coherence_lower_bound(n, d), "steps": steps, "seconds": seconds})
        hist.append(pd.DataFrame({"vectors": name, "angle_deg": (bins[:-1] + bins[1:]) / 2,
                                  "pairs": angle_histogram(vectors, bins)}))
    return pd.DataFrame(summary), pd.concat(hist, ignore_index=True), pd.concat(histories, ignore_index=True)


def capacity_task(task: dict) -> dict:
    """A task of :func:`capacity_curves`: the capacity at one (eps, d)."""
    return capacity(task["d"], task["eps"], seed=task["seed"], steps=task["steps"])


def capacity_curves(config: "Config") -> pd.DataFrame:
    """Capacity at every (eps, d) of the config, one task each (:func:`interp.parallel.map_tasks`), all on the
    run's seed."""
    tasks = [{"eps": eps, "d": d, "steps": config.capacity_steps, "seed": config.seed}
             for eps, dims in zip(config.eps_values, config.capacity_dims) for d in dims]
    return pd.DataFrame(map_tasks(capacity_task, tasks, name="capacity"))


def fit_growth(curves: pd.DataFrame) -> pd.DataFrame:
    """Least-squares slope of ln n against d per eps, beside the JL rate (eps²/2 - eps³/3)/4."""
    rows = []
    for eps, group in curves.groupby("eps"):
        for column in ("optimised", "random"):
            counts = group[column].clip(lower=1)
            slope = np.polyfit(group["d"], np.log(counts), 1)[0] if len(group) > 1 else float("nan")
            rows.append({"eps": eps, "vectors": column, "fitted_rate": slope, "jl_rate": jl_rate(eps)})
    return pd.DataFrame(rows)


def small_packings(config: "Config") -> pd.DataFrame:
    rows = []
    for n, d in config.small_cases:
        result = pack(n, d, seed=config.seed)
        best = BEST_KNOWN_DEG.get((n, d), float("nan"))
        rows.append({"n": n, "d": d, "optimised_deg": result.min_angle_deg, "best_known_deg": best,
                     "gap_deg": best - result.min_angle_deg, "bound_deg": angle_deg(coherence_lower_bound(n, d))})
    return pd.DataFrame(rows)

