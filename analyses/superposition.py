"""Does a small ReLU network store more features than it has dimensions, and can we read them back out?

Reproduces the core experiments of Elhage et al. 2022, "Toy Models of Superposition", on
:mod:`models.toy` (many instances trained at once): the introductory 5-features-in-2-
dimensions sweep over sparsity, the linear model for contrast, feature dimensionality
against 1/(1 - S) with the fractions features stick at, the phase diagram for one extra
feature over sparsity and relative importance, and a sparse autoencoder
(:mod:`interp.sae`) recovering the features of a superposed model.
"""

from dataclasses import asdict, dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch

from interp.claims import Check, Claim
from interp.markup import literal
from interp.parallel import map_tasks
from interp.progress import note
from interp.report import Report
from interp.sae import max_cosine_similarity, train_sae
from interp.superposition import dimensions_per_feature, superposition_table
from models.toy import evaluate_loss, sample_hidden, train_toy

STICKY = {"1": 1.0, "3/4": 0.75, "2/3": 2 / 3, "1/2": 0.5, "2/5": 0.4, "3/8": 0.375}
# A feature is filed under a sticky fraction only if its D_i is this close to it: half the smallest gap
# between two fractions (2/5 - 3/8 = 0.025), so no feature could belong to two; the rest are "none".
STICKY_TOLERANCE = 0.0125
# "D* plateaus at 1/2" needs this many consecutive sparsities with D* within PLATEAU_TOLERANCE of 1/2.
PLATEAU_POINTS, PLATEAU_TOLERANCE = 3, 0.05
REPRESENTED = 0.5  # a feature with ||W_i|| above this is "represented" (the paper's bars reach ~1)


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


def intro_sweep(config: Config) -> tuple[pd.DataFrame, dict[str, torch.Tensor]]:
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


def dimensionality_sweep(config: Config) -> pd.DataFrame:
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


def phase_diagram(config: Config) -> pd.DataFrame:
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


def sae_recovery(config: Config) -> pd.DataFrame:
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


# -- figures -----------------------------------------------------------------------------
def plot_intro(features: pd.DataFrame, W: dict[str, torch.Tensor], shown: tuple[float, ...],
               sparsities: tuple[float, ...]) -> plt.Figure:
    """The paper's picture: per column, the 2-D feature vectors (top) and W^T W (bottom)."""
    columns = [("linear", max(shown))] + [("ReLU", s) for s in shown]
    fig, axes = plt.subplots(2, len(columns), figsize=(2.6 * len(columns), 5.4))
    colors = plt.get_cmap("viridis")(np.linspace(0, 0.9, 5))
    for col, (name, sparsity) in enumerate(columns):
        w = W[name][sparsities.index(sparsity)].double()  # [hidden features]
        top, bottom = axes[0, col], axes[1, col]
        for i in range(w.shape[1]):
            top.plot([0, w[0, i]], [0, w[1, i]], color=colors[i], lw=2)
            top.scatter([w[0, i]], [w[1, i]], color=colors[i], s=18, zorder=3)
        top.set(xlim=(-1.5, 1.5), ylim=(-1.5, 1.5), aspect="equal", xticks=[], yticks=[])
        top.set_title(f"{name}\nS = {sparsity:g}", fontsize=10)
        sns.heatmap((w.T @ w).numpy(), ax=bottom, cmap="RdBu_r", vmin=-1.2, vmax=1.2, square=True, cbar=False,
                    xticklabels=False, yticklabels=False)
        bottom.set_title("$W^TW$", fontsize=9)
    fig.suptitle("5 features (importance 0.9^i, dark = most important) in 2 hidden dimensions")
    fig.tight_layout(rect=(0, 0, 0.93, 1))
    bar = fig.add_axes((0.94, 0.06, 0.012, 0.36))
    fig.colorbar(plt.matplotlib.cm.ScalarMappable(plt.matplotlib.colors.Normalize(-1.2, 1.2), "RdBu_r"), cax=bar,
                 label="$W_i \\cdot W_j$")
    return fig


def plot_intro_summary(summary: pd.DataFrame) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(7, 3.4))
    data = summary.assign(inverse_density=1 / (1 - summary["sparsity"]))
    sns.lineplot(data, x="inverse_density", y="represented", hue="model", marker="o", ax=ax)
    # wide and pale beneath the lines: the linear model's line lies on it
    ax.axhline(2, color="grey", lw=6, alpha=0.3, zorder=0, label="hidden dimensions (2)")
    ax.set(xscale="log", xlabel="1 / (1 - S), inverse feature density (log scale)",
           ylabel=f"features with ||W_i|| > {REPRESENTED:g}", ylim=(0, 5.5))
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)  # not over the lines
    fig.tight_layout()
    return fig


def _spread(values: list[float], gap: float) -> list[float]:
    """Label positions near ``values`` (sorted ascending) at least ``gap`` apart, so labels do not overlap."""
    placed: list[float] = []
    for value in values:
        placed.append(max(value, placed[-1] + gap) if placed else value)
    return placed


def plot_dimensionality(dims: pd.DataFrame) -> plt.Figure:
    """D_i of every represented feature (dots) and D* (line) against 1/(1-S), sticky fractions marked."""
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    shown = dims[dims["norm"] > REPRESENTED]
    ax.scatter(shown["inverse_density"], shown["dimensionality"], s=6, alpha=0.35, color="tab:blue",
               label="feature dimensionality $D_i$ (represented features)")
    per = dims.groupby("inverse_density")["dimensions_per_feature"].first()
    ax.plot(per.index, per.values, color="black", lw=2, marker="o", ms=3, label="dimensions per feature $D^*$")
    top = max(1.1, 1.05 * float(max(per.max(), shown["dimensionality"].max() if len(shown) else 0)))
    fractions = sorted(STICKY.items(), key=lambda item: item[1])
    # labels outside the right edge, nudged apart where two fractions are close (2/5 and 3/8)
    positions = _spread([value for _, value in fractions], gap=0.045 * top)
    for (label, value), y in zip(fractions, positions):
        ax.axhline(value, color="tab:red", lw=0.7, ls="--", alpha=0.7, zorder=0)
        ax.text(1.01, y, label, transform=ax.get_yaxis_transform(), va="center", fontsize=8.5, color="tab:red",
                clip_on=False)
    ax.set(xscale="log", xlabel="1 / (1 - S), inverse feature density (log scale)", ylabel="dimensions", ylim=(0, top))
    ax.plot([], [], color="tab:red", lw=0.7, ls="--", label="sticky fractions (the paper's)")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    return fig


def plot_phase(phase: pd.DataFrame) -> plt.Figure:
    order = ["not represented", "dedicated dimension", "superposition"]
    codes = phase.assign(code=phase["phase"].map({p: k for k, p in enumerate(order)}))
    grid = codes.pivot(index="density", columns="relative_importance", values="code").sort_index(ascending=False)
    fig, ax = plt.subplots(figsize=(6.5, 4.8))
    cmap = plt.matplotlib.colors.ListedColormap(["#c6dbef", "#fdae6b", "#d62728"])
    sns.heatmap(grid, ax=ax, cmap=cmap, vmin=-0.5, vmax=2.5, cbar=False, linewidths=0.3,
                xticklabels=[f"{v:.2g}" for v in grid.columns], yticklabels=[f"{v:.2g}" for v in grid.index])
    handles = [plt.matplotlib.patches.Patch(color=cmap(k), label=p) for k, p in enumerate(order)]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    ax.set(xlabel="relative importance of the extra feature", ylabel="feature density 1 - S")
    ax.set_title("2 features in 1 dimension: what happens to feature 2")
    fig.tight_layout()
    return fig


def plot_sae(sae: pd.DataFrame) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(7, 3.4))
    sns.barplot(sae, x="feature", y="max_cos", hue="penalty", ax=ax)
    ax.axhline(0.9, color="0.2", ls=":", lw=1.2, label="cos = 0.9 (reference)")
    ax.set(ylim=(0, 1.05), ylabel="max cos with a dictionary row", xlabel="true feature (represented ones)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), title="penalty", frameon=False)  # not over the bars
    fig.tight_layout()
    return fig


# -- report ------------------------------------------------------------------------------
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
