"""Does a small ReLU network store more features than it has dimensions, and can we read them back out?

Reproduces the core experiments of Elhage et al. 2022, "Toy Models of Superposition", on
:mod:`models.toy` (many instances trained at once): the introductory 5-features-in-2-
dimensions sweep over sparsity, the linear model for contrast, feature dimensionality
against 1/(1 - S) with the fractions features stick at, the phase diagram for one extra
feature over sparsity and relative importance, and a sparse autoencoder
(:mod:`interp.sae`) recovering the features of a superposed model.
"""

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import torch

from analyses.superposition.measures import (
    DIMENSIONALITY_MIN_CHUNK, DIMENSIONALITY_TASKS, PLATEAU_POINTS, PLATEAU_TOLERANCE, REPRESENTED, STICKY_TOLERANCE,
    best_of_seeds, dimensionality_request, intro_request, intro_summary, phase_cells, phase_request, plateau_claim,
    sticky_counts, sticky_plateau, task_seed, toy_results)
from analyses.subjects import load, train_missing
from analyses.superposition.plots import plot_dimensionality, plot_intro, plot_intro_summary, plot_phase, plot_sae
from interp.markup import literal
from interp.progress import note
from interp.report import Report
from interp.sae import max_cosine_similarity
from interp.superposition import dimensions_per_feature, superposition_table
from models import zoo
from models.toy_subjects import toy_settings


@dataclass(frozen=True)
class Config:
    seed: int = 0
    intro_sparsities: tuple[float, ...] = (0.0, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.97, 0.99, 0.997)
    intro_shown: tuple[float, ...] = (0.0, 0.7, 0.9, 0.97, 0.99)
    intro_steps: int = 4000
    dim_features: int = 200
    dim_hidden: int = 20
    dim_sparsities: int = 16
    dim_max_inverse_density: float = 300.0
    dim_steps: int = 4000
    phase_grid: int = 10
    restarts: int = 3
    phase_steps: int = 2500
    sae_features: int = 16
    sae_hidden: int = 6
    sae_sparsity: float = 0.95
    sae_samples: int = 20_000
    sae_steps: int = 4000
    batch_size: int = 1024

    def __post_init__(self):
        for name in ("intro_sparsities", "intro_shown", "sae_sparsity"):
            values = getattr(self, name)
            for s in values if isinstance(values, tuple) else (values,):
                if not 0 <= s < 1:
                    raise ValueError(f"{name}: sparsities must lie in [0, 1), got {s}")
        if not set(self.intro_shown) <= set(self.intro_sparsities):
            raise ValueError("intro_shown must be a subset of intro_sparsities")
        for features, hidden in (("dim_features", "dim_hidden"), ("sae_features", "sae_hidden")):
            if getattr(self, hidden) >= getattr(self, features):
                raise ValueError(f"superposition needs more features than hidden dimensions: {features}="
                                 f"{getattr(self, features)} must exceed {hidden}={getattr(self, hidden)}")
        if not self.dim_max_inverse_density > 1:
            raise ValueError("dim_max_inverse_density (largest 1/(1-S)) must exceed 1")
        for name in ("intro_steps", "dim_steps", "phase_steps", "sae_steps", "phase_grid", "restarts",
                     "dim_sparsities", "batch_size", "dim_hidden", "sae_hidden", "sae_samples"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")

    @classmethod
    def quick(cls) -> "Config":
        return cls(intro_sparsities=(0.0, 0.7, 0.9, 0.99), intro_shown=(0.0, 0.9, 0.99), intro_steps=1500,
                   dim_features=40, dim_hidden=5, dim_sparsities=6, dim_max_inverse_density=50.0,
                   dim_steps=800, phase_grid=4, restarts=2, phase_steps=800, sae_features=8,
                   sae_hidden=3, sae_samples=5000, sae_steps=1500, batch_size=512)


# The sweeps: each builds its zoo requests and hands them to train_missing (looked up here, in the package,
# where the tests put a recording wrapper), which trains the ones not cached as one map_tasks sweep; then
# reads every model from the zoo. The requests, what is read from the models and the summaries are in
# measures.py; the autoencoders' subject is in subjects.py.
def intro_sweep(config: Config) -> tuple[pd.DataFrame, dict[str, torch.Tensor]]:
    """5 features (importance 0.9^i) in 2 dims, ReLU across sparsities plus the linear model.

    Each sparsity is trained from ``restarts`` random starts and the lowest-loss start kept,
    as the paper does, so a slow start in the dense regime does not pass for the optimum.
    One zoo subject per model, both on the run's seed.
    """
    importance = 0.9 ** torch.arange(5.0)
    sparsity = torch.tensor(config.intro_sparsities, dtype=torch.float64)
    models = (("ReLU", True), ("linear", False))
    requests = [intro_request({"relu": relu, "sparsities": list(config.intro_sparsities), "restarts": config.restarts,
                               "steps": config.intro_steps, "batch_size": config.batch_size, "seed": config.seed})
                for _, relu in models]
    train_missing(requests, name="intro")
    W, rows = {}, []
    for (name, _), result in zip(models, map(toy_results, requests)):
        keep = best_of_seeds(result["loss"], len(sparsity))
        W[name] = result["W"][keep]
        table = superposition_table(W[name])
        table["model"] = name
        table["sparsity"] = sparsity.numpy()[table["instance"]]
        table["importance"] = importance.double().numpy()[table["feature"]]
        table["bias"] = result["b"][keep].flatten().double().numpy()
        rows.append(table)
    return pd.concat(rows, ignore_index=True), W


def dimensionality_sweep(config: Config) -> pd.DataFrame:
    """Feature dimensionality D_i and D* for many features across sparsity (uniform importance).

    The sparsities are trained in at most DIMENSIONALITY_TASKS consecutive chunks of at least
    DIMENSIONALITY_MIN_CHUNK (one task and one vectorised model each, each on its own seed)."""
    inverse_density = np.geomspace(1.0, config.dim_max_inverse_density, config.dim_sparsities)
    chunks = np.array_split(inverse_density, max(1, min(DIMENSIONALITY_TASKS,
                                                        len(inverse_density) // DIMENSIONALITY_MIN_CHUNK)))
    requests = [dimensionality_request({"inverse_density": chunk.tolist(), "features": config.dim_features,
                                        "hidden": config.dim_hidden, "steps": config.dim_steps,
                                        "batch_size": config.batch_size,
                                        "seed": task_seed(config.seed, "dimensionality", k)})
                for k, chunk in enumerate(chunks)]
    train_missing(requests, name="dimensionality")
    W = torch.cat([load(request)[0].W.detach() for request in requests])
    table = superposition_table(W)
    table["inverse_density"] = inverse_density[table["instance"]]
    table["dimensions_per_feature"] = dimensions_per_feature(W.double()).numpy()[table["instance"]]
    return table


def phase_diagram(config: Config) -> pd.DataFrame:
    """2 features in 1 dimension: is the second one dropped, given the dimension, or superposed?"""
    grid = phase_cells(config.phase_grid)
    requests = [phase_request({"grid": config.phase_grid, "steps": config.phase_steps, "batch_size": config.batch_size,
                               "seed": task_seed(config.seed, "phase", r)}) for r in range(config.restarts)]
    train_missing(requests, name="phase")
    runs = [toy_results(request) for request in requests]
    # Several random starts (subjects) per cell; keep the lowest-loss one (the paper does the same).
    loss = torch.cat([run["loss"] for run in runs])  # [starts x cells], seed-major
    keep = best_of_seeds(loss, len(grid))
    W = torch.cat([run["W"][:, 0, :] for run in runs])[keep].double().numpy()  # [cells features]
    loss = loss[keep]
    best = pd.DataFrame({"density": [p for p, _ in grid], "relative_importance": [r for _, r in grid],
                         "w_1": W[:, 0], "w_2": W[:, 1], "loss": loss.double().numpy()})
    strong_1, strong_2 = best["w_1"].abs() > REPRESENTED, best["w_2"].abs() > REPRESENTED
    best["phase"] = np.select([strong_1 & strong_2, strong_2], ["superposition", "dedicated dimension"],
                              "not represented")
    return best.reset_index(drop=True)


def sae_recovery(config: Config) -> pd.DataFrame:
    """Train an L1 and a top-k sparse autoencoder (one task each) on a superposed model's hidden activations."""
    toy = {"seed": config.seed, **toy_settings(n_features=config.sae_features, n_hidden=config.sae_hidden,
                                               feature_probability=1 - config.sae_sparsity, steps=config.intro_steps,
                                               batch_size=config.batch_size, lr=1e-2)}
    model = zoo.load("toy_model", **toy)
    W = model.W.detach()[0]  # [hidden features]
    norms = W.norm(dim=0)
    represented = torch.nonzero(norms > REPRESENTED).flatten()
    # k ~ the expected number of active features, at least 1 (Gao et al. 2024 tune k likewise).
    k = max(1, round((1 - config.sae_sparsity) * config.sae_features))
    requests = [{"subject": "toy_sae", "seed": config.seed, "toy": toy, "samples": config.sae_samples,
                 "sample_seed": config.seed + 1, "d_sae": 2 * config.sae_features, "penalty": penalty, "k": k,
                 "steps": config.sae_steps} for penalty in ("l1", "topk")]
    train_missing(requests, name="sae")
    rows = []
    for request in requests:
        best = max_cosine_similarity(load(request)[0].W_dec.detach(), W.T[represented])
        rows += [{"penalty": request["penalty"], "feature": int(f), "norm": float(norms[f]), "max_cos": float(c)}
                 for f, c in zip(represented, best)]
    frame = pd.DataFrame(rows)
    frame.attrs.update(n_features=config.sae_features, n_hidden=config.sae_hidden, represented=len(represented))
    return frame


def run(config: Config) -> Report:
    report = Report("superposition", "Superposition in toy models", config=asdict(config), summary=(
        "Do networks store more features than dimensions? Toy ReLU models `x' = ReLU(WᵀWx + b)` "
        "(Elhage et al. 2022) are trained on synthetic sparse features, many instances at once, and "
        "their weight geometry is measured with `interp.superposition`."))
    note("superposition: stage 1/4, 5 features in 2 dimensions (toy models over sparsity)")
    features, W = intro_sweep(config)
    summary = intro_summary(features)
    relu = summary[summary["model"] == "ReLU"].sort_values("sparsity")
    linear = summary[summary["model"] == "linear"]
    over = relu[relu["represented"] > 2]
    onset = float(over["sparsity"].min()) if len(over) else float("nan")
    dense = int(relu.iloc[0]["represented"])
    section = report.section("5 features in 2 dimensions", (
        "Question: as features get sparser, when does a 2-dimensional model start storing more than 2 of "
        "its 5 features? Each column trains one instance at sparsity S (features present with "
        "probability 1 - S, uniform in [0, 1]; importance 0.9^i). Top: the 5 columns of W drawn in the "
        "hidden plane; bottom: WᵀW (red positive, blue negative)."))
    section.figure(plot_intro(features, W, config.intro_shown, config.intro_sparsities), "intro",
                   "Feature vectors and WᵀW; the first column is the linear model.")
    section.text(
        f"At S = {relu.iloc[0]['sparsity']:g} the ReLU model represents {dense} features "
        f"(||W_i|| > {REPRESENTED}); " + (
            f"superposition (more than 2 represented features in 2 dimensions) first appears at S = {onset:g} "
            f"in this sweep, and at S = {relu.iloc[-1]['sparsity']:g} {int(relu.iloc[-1]['represented'])} "
            "features are represented." if len(over) else
            "no sparsity in this sweep pushed more than 2 features into the plane.")
        + f" The linear model represents at most {int(linear['represented'].max())} features at any sparsity: "
        "without the ReLU to filter interference, superposition never pays.")
    section.table(summary, "intro_summary", "Features represented and D* = m/||W||_F² per model and sparsity.")
    section.figure(plot_intro_summary(summary), "intro_represented", "Represented features against sparsity.")
    report.headline("superposition_onset_sparsity", onset, "smallest sparsity at which the 5-in-2 ReLU model "
                    "represents more than 2 features")

    note("superposition: stage 2/4, feature dimensionality sweep")
    dims = dimensionality_sweep(config)
    plateau = sticky_plateau(dims)
    per = dims.groupby("inverse_density")["dimensions_per_feature"].first()
    section = report.section("Feature dimensionality", literal(
        f"Question: how many dimensions does each feature get? {config.dim_features} features of equal "
        f"importance in {config.dim_hidden} dimensions, one instance per sparsity. D_i = ||W_i||² / "
        "Σ_j (Ŵ_i·W_j)² is feature i's share of a dimension; D* = m/||W||_F² the average. Dashed lines "
        "mark the fractions the paper finds features stick at (tetrahedron 3/4, triangle 2/3, antipodal "
        "pair 1/2, pentagon 2/5, square antiprism 3/8)."))
    section.figure(plot_dimensionality(dims), "dimensionality", "D_i (dots, represented features) and D* (line); "
                   "dashed red lines: the sticky fractions.")
    text = (f"D* falls from {per.iloc[0]:.3f} at 1/(1-S) = 1 to {per.iloc[-1]:.3f} at 1/(1-S) = {per.index[-1]:.0f}. ")
    if plateau["length"] > 0:
        text += (f"It sits within {PLATEAU_TOLERANCE:g} of 1/2 for {plateau['length']} consecutive sparsities, from "
                 f"1/(1-S) = {plateau['from']:.3g} to {plateau['to']:.3g} (mean D* = {plateau['mean_dstar']:.3f}). ")
    else:
        text += f"It never comes within {PLATEAU_TOLERANCE:g} of 1/2 in this sweep. "
    claim = plateau_claim(plateau)
    text += ("This is the antipodal-pair plateau the paper describes." if claim.holds else
             "That is not the plateau the paper describes: this sweep has too few points near 1/2 to show one.")
    section.text(literal(text) + "\n\n" + claim.markdown())
    counts = sticky_counts(dims)
    filed = int(counts.loc[counts.fraction != "none", "features"].sum())
    section.table(counts, "sticky_counts",
                  f"Represented features per sticky fraction their D_i lies within {STICKY_TOLERANCE:g} of (half "
                  f"the gap between 2/5 and 3/8); \"none\": no fraction that close. {filed} of "
                  f"{int(counts.features.sum())} features are filed under a fraction.")
    section.table(dims, "dimensionality", "Every feature of every instance.", max_rows=20)
    report.headline("dstar_plateau_mean", plateau["mean_dstar"], "mean D* over the longest run of sparsities "
                    f"with D* within {PLATEAU_TOLERANCE:g} of 1/2")
    report.headline("dstar_plateau_points", plateau["length"], f"length of that run (a plateau needs {PLATEAU_POINTS})")

    note("superposition: stage 3/4, phase diagram (2 features in 1 dimension)")
    phase = phase_diagram(config)
    section = report.section("Phase diagram", (
        "Question: when does a model put an extra feature in superposition? 2 features in 1 dimension; "
        "feature 1 has importance 1, feature 2 a relative importance r; both share the density 1 - S. "
        f"Each cell keeps the lowest-loss of {config.restarts} random starts and is classified by the "
        "learned weights: feature 2 not represented (|W_2| ≤ 0.5), given the dimension alone, or both "
        "stored (superposition, antipodal in 1-D)."))
    section.figure(plot_phase(phase), "phase", "Phase of the extra feature over density and relative importance.")
    share = phase.groupby(phase["density"] < 0.2)["phase"].apply(lambda p: float((p == "superposition").mean()))
    section.text(
        f"Superposition covers {share.get(True, 0.0):.0%} of the sparse cells (density < 0.2) and "
        f"{share.get(False, 0.0):.0%} of the dense ones: sparsity is what makes sharing a dimension pay.")
    section.table(phase, "phase", "Learned weights and phase per cell.")
    report.headline("phase_superposition_share_sparse", share.get(True, 0.0), "share of sparse cells "
                    "(density < 0.2) in superposition")

    note("superposition: stage 4/4, sparse autoencoders on a superposed toy model")
    sae = sae_recovery(config)
    scores = sae.groupby("penalty")["max_cos"].mean()
    section = report.section("Reading features back out with a sparse autoencoder", (
        f"Question: can a sparse dictionary recover the features of a superposed model? A toy model with "
        f"{config.sae_features} features in {config.sae_hidden} dimensions at S = {config.sae_sparsity:g} "
        f"represents {sae.attrs['represented']} features; sparse autoencoders with {2 * config.sae_features} "
        "latents are trained on its hidden activations (read through `hook_hidden`), one with an L1 penalty "
        "and one keeping the top k latents. Score: for each represented feature direction W_i, the best "
        "cosine with any decoder row, averaged (mean max cosine similarity, 1 = perfect)."))
    section.figure(plot_sae(sae), "sae", "Best cosine between each true feature and the dictionary "
                   "(1 = a decoder row points exactly along it); the dotted line at 0.9 is a reference for the eye, "
                   "not a threshold any number here uses.")
    section.text(" ".join(f"The {p} autoencoder reaches a mean max cosine of {v:.3f}." for p, v in scores.items()))
    section.table(sae, "sae", "Per-feature recovery.")
    report.headline("sae_mmcs_l1", scores.get("l1"), "mean max cosine, L1 sparse autoencoder")
    report.headline("sae_mmcs_topk", scores.get("topk"), "mean max cosine, top-k sparse autoencoder")
    return report
