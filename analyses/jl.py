"""How many nearly perpendicular directions fit in a space, and how close does an optimiser get to the limit?

The 3Blue1Brown series (part 8, "Superposition") packs 10,000 vectors into 100 dimensions
and shows their pairwise angles bunched near 90 degrees. This analysis repeats it with the
whole angle distribution (random against optimised, from :func:`interp.packing.pack`) and
the Welch and Levenshtein lower bounds on the same axes; measures capacity (how many
vectors fit with every |cos| <= eps) against dimension; and checks the optimiser on small
cases whose best packings are known.
"""

import math
from dataclasses import asdict, dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from interp.jl import angle_deg, jl_rate, levenshtein_bound, welch_bound, coherence_lower_bound
from interp.chirps import chirp_prime, chirp_start
from interp.packing import capacity, max_abs_cos, pack, random_unit_vectors
from interp.parallel import map_tasks
from interp.report import Report

# Best known line packings. R^3: Conway, Hardin & Sloane 1996, "Packing lines, planes,
# etc.: packings in Grassmannian spaces", Experimental Math. 5, Table 1 (N <= 7 proven
# optimal there; N = 8 proven by Mixon & Parshall 2019, arXiv:1902.10177). R^4: 5 lines
# form the regular simplex (meets Welch's bound, arccos 1/4) and 12 lines the diagonals of
# the 24-cell (meets Levenshtein's bound, 60 degrees), both optimal by those bounds.
BEST_KNOWN_DEG = {(4, 3): 70.5288, (5, 3): 63.4349, (6, 3): 63.4349, (7, 3): 54.7356, (8, 3): 49.5567,
                  (5, 4): 75.5225, (12, 4): 60.0}


@dataclass(frozen=True)
class Config:
    seed: int = 0
    n: int = 10_000
    d: int = 100
    steps: int = 600  # ~0.4 s a step at 10,000 x 100 on two cores: about 4 minutes
    random_steps: int = 300  # the same optimiser from random vectors, for contrast
    eps_values: tuple[float, ...] = (0.1, 0.2, 0.3)
    capacity_dims: tuple[tuple[int, ...], ...] = ((20, 30, 40), (8, 12, 16, 20), (4, 6, 8, 10))
    capacity_steps: int = 300
    small_cases: tuple[tuple[int, int], ...] = tuple(BEST_KNOWN_DEG)

    def __post_init__(self):
        if self.n < 2 or self.d < 1:
            raise ValueError(f"need n >= 2 vectors and d >= 1 dimensions, got n={self.n}, d={self.d}")
        if any(not 0 < e < 1 for e in self.eps_values):
            raise ValueError(f"eps_values: every eps must lie strictly between 0 and 1, got {self.eps_values}")
        if len(self.capacity_dims) != len(self.eps_values):
            raise ValueError(f"capacity_dims needs one tuple of dimensions per value of eps_values, got "
                             f"{len(self.capacity_dims)} for {len(self.eps_values)}")
        if self.steps < 1 or self.capacity_steps < 1 or self.random_steps < 1:
            raise ValueError("steps, random_steps and capacity_steps must be >= 1")

    @classmethod
    def quick(cls) -> "Config":
        return cls(n=900, d=30, steps=150, random_steps=150, capacity_dims=((20, 30), (8, 12), (4, 6, 8)), capacity_steps=300,
                   small_cases=((4, 3), (6, 3), (8, 3), (5, 4)))


# -- computations ------------------------------------------------------------------------
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


def series_experiment(config: Config) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
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


def capacity_curves(config: Config) -> pd.DataFrame:
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


def small_packings(config: Config) -> pd.DataFrame:
    rows = []
    for n, d in config.small_cases:
        result = pack(n, d, seed=config.seed)
        best = BEST_KNOWN_DEG.get((n, d), float("nan"))
        rows.append({"n": n, "d": d, "optimised_deg": result.min_angle_deg, "best_known_deg": best,
                     "gap_deg": best - result.min_angle_deg, "bound_deg": angle_deg(coherence_lower_bound(n, d))})
    return pd.DataFrame(rows)


# -- figures -----------------------------------------------------------------------------
def plot_angles(hist: pd.DataFrame, n: int, d: int) -> plt.Figure:
    """All pairwise angles, log counts, with the bounds' forbidden zone marked.

    One panel per start (random vectors, the chirp frame), each beside what the optimiser made
    of it: the two optimised histograms nearly coincide, so drawn on one axes one hid the other.
    """
    colors = {"random": "tab:grey", "optimised from random": "tab:blue", "chirp frame": "tab:green",
              "optimised from chirp": "tab:purple"}
    present = list(hist["vectors"].unique())
    panels = [[name for name in pair if name in present]
              for pair in (("random", "optimised from random"), ("chirp frame", "optimised from chirp"))]
    panels = [names for names in panels if names]
    panels += [[name] for name in present if not any(name in names for names in panels)]
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4.2), sharey=True, squeeze=False)
    lev = angle_deg(coherence_lower_bound(n, d))
    seen = hist.loc[hist["pairs"] > 0, "angle_deg"]
    half = max(90 - seen.min(), seen.max() - 90, 90 - lev) + 5  # every pair shown, centred on 90°
    for ax, names in zip(axes[0], panels):
        ax.axvspan(lev, 180 - lev, color="tab:red", alpha=0.08,
                   label=f"some pair must lie outside ({lev:.2f}°, {180 - lev:.2f}°)")
        for x in (lev, 180 - lev):
            ax.axvline(x, color="tab:red", lw=1, ls="--")
        ax.axvspan(89, 91, color="gold", alpha=0.5, label="89-91° (impossible for all pairs)")
        for name in names:
            shown = hist[(hist["vectors"] == name) & (hist["pairs"] > 0)]
            ax.step(shown["angle_deg"], shown["pairs"], where="mid", color=colors.get(name), label=name, lw=1.2)
        ax.set(yscale="log", xlim=(max(0, 90 - half), min(180, 90 + half)),
               xlabel="angle between vectors (degrees)")
        ax.set_title(" and ".join(names), fontsize=10.5)
        handles, labels = ax.get_legend_handles_labels()
        order = [labels.index(name) for name in names] + [0, 1]  # the series first, then the bands
        ax.legend([handles[i] for i in order], [labels[i] for i in order], fontsize=8.5, loc="upper center",
                  bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False)
    axes[0][0].set_ylabel("pairs per 0.25° bin (log scale)")
    fig.suptitle(f"{n:,} vectors in {d} dimensions: every pairwise angle")
    fig.tight_layout()
    return fig


def plot_history(history: pd.DataFrame, lower: float) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(7.5, 3.4))
    for start, run in history.groupby("start", sort=False):
        ax.plot(run["step"], run["max_abs_cos"], label=f"optimiser from {start}")
    ax.axhline(lower, color="tab:red", ls="--", label="lower bound")
    ax.axhline(1.5 * lower, color="tab:grey", ls=":", label="1.5 x lower bound")
    # the whole of every curve: a random start begins far above twice the bound
    top = max(float(history["max_abs_cos"].max()), 1.5 * lower) * 1.05
    ax.set(xlabel="step", ylabel="max |cos| (best so far)", ylim=(0.9 * lower, top))
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    fig.tight_layout()
    return fig


def plot_capacity(curves: pd.DataFrame) -> plt.Figure:
    long = curves.melt(id_vars=["d", "eps"], value_vars=["optimised", "random", "bound"], var_name="vectors",
                       value_name="n")
    long = long[np.isfinite(long["n"].astype(float))]
    grid = sns.relplot(long, x="d", y="n", hue="vectors", col="eps", kind="line", marker="o", height=3.2,
                       facet_kws={"sharex": False, "sharey": False})
    grid.set(yscale="log")
    for eps, ax in zip(grid.col_names, grid.axes.flat):
        ax.set_xticks(sorted(long.loc[long["eps"] == eps, "d"].unique()))
        # plain numbers on the log axis: a range such as 20-40 would otherwise show no label at all
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1, 2, 5)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _: f"{y:g}"))
        ax.yaxis.set_minor_formatter(NullFormatter())
    grid.set_axis_labels("dimensions d", "vectors with every |cos| <= eps\n(log scale)")
    return grid.figure


def plot_small(small: pd.DataFrame) -> plt.Figure:
    """Bars from 0°, so equal angles look equal; each bar's angle written on it."""
    long = small.melt(id_vars=["n", "d"], value_vars=["optimised_deg", "best_known_deg", "bound_deg"],
                      var_name="source", value_name="degrees")
    long["source"] = long["source"].map({"optimised_deg": "optimised", "best_known_deg": "best known",
                                         "bound_deg": "upper bound (no packing exceeds it)"})
    long["case"] = long["n"].astype(str) + " lines\nin R^" + long["d"].astype(str)
    fig, ax = plt.subplots(figsize=(8, 3.8))
    sns.barplot(long, x="case", y="degrees", hue="source", ax=ax)
    for bars in ax.containers:
        ax.bar_label(bars, fmt="%.2f°", label_type="center", rotation=90, fontsize=8.5, color="white")
    ax.set(ylim=(0, 90), yticks=range(0, 91, 15), ylabel="smallest angle (degrees)", xlabel="")
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, frameon=False, fontsize=9)
    fig.tight_layout()
    return fig


# -- report ------------------------------------------------------------------------------
def run(config: Config) -> Report:
    report = Report("jl", "Nearly orthogonal packings and the Johnson-Lindenstrauss lemma", config=asdict(config),
                    summary="How many directions can be nearly perpendicular at once, measured against the "
                    "mathematical limits (Welch 1974, Levenshtein 1982) with an optimiser that pushes apart "
                    "the closest pairs (`interp.packing.pack`).")
    n, d = config.n, config.d
    summary, hist, history = series_experiment(config)
    lower = coherence_lower_bound(n, d)
    lev_line = (f"Levenshtein's bound forces some pair to |cos| >= {levenshtein_bound(n, d):.4f}, i.e. an angle of "
                f"{angle_deg(levenshtein_bound(n, d)):.2f}° or closer" if n > d * (d + 1) / 2 else
                f"Welch's bound forces some pair to |cos| >= {welch_bound(n, d):.4f}")
    rows = summary.set_index("vectors")
    rnd = rows.loc["random"]
    from_random = rows.loc["optimised from random"]
    chirp = "optimised from chirp" in rows.index
    opt = rows.loc["optimised from chirp" if chirp else "optimised from random"]
    if chirp:
        frame = rows.loc["chirp frame"]
        p = chirp_prime(n, d)
        story = (
            f"Gradient descent on the closest pairs, started from those random directions, reaches "
            f"{from_random['max_abs_cos']:.4f} ({from_random['min_angle_deg']:.2f}°) in {int(from_random['steps'])} steps "
            f"({from_random['seconds']:.0f} s). Started instead from a real chirp frame (the real and imaginary "
            f"parts of Alltop's chirps exp(2πi(ax²+bx)/{p}), an algebraic construction with |cos| <= "
            f"2/(√{p} - 1) = {2 / (math.sqrt(p) - 1):.4f} in R^{p}"
            + ((f", written in {d} dimensions by dropping the constant direction" if p - d == 1 else
                f", written in {d} dimensions by dropping the {p - d} lowest-frequency Fourier directions")
               if p > d else "")
            + f"; largest |cos| {frame['max_abs_cos']:.4f} before any optimisation), the same optimiser reaches "
            f"{opt['max_abs_cos']:.4f} ({opt['min_angle_deg']:.2f}°), {opt['ratio_to_levenshtein']:.3f} times the "
            f"bound, in {int(opt['steps'])} steps ({opt['seconds']:.0f} s)."
            + (" The structured start ends lower. At 10,000 x 100 the gap is the basin, not the step count: "
               "from random vectors the largest |cos| creeps down ever more slowly as more pairs pile up "
               "against it (1,000 steps reached 0.2122; `interp.packing.pack`'s docstring records the "
               "measurements)."
               if opt["max_abs_cos"] < from_random["max_abs_cos"] else
               " Here the structured start did not beat the random one."))
    else:
        story = (f"The optimiser reaches {opt['max_abs_cos']:.4f} ({opt['min_angle_deg']:.2f}°), "
                 f"{opt['ratio_to_levenshtein']:.3f} times the bound, in {int(opt['steps'])} steps ({opt['seconds']:.0f} s).")
    section = report.section(f"{n:,} vectors in {d} dimensions", (
        f"Question: can {n:,} directions in {d} dimensions all be within a degree of perpendicular? "
        f"No: {lev_line} (Welch's weaker bound gives {welch_bound(n, d):.4f}). So all pairs within 89-91° "
        f"is impossible. Random directions reach a largest |cos| of {rnd['max_abs_cos']:.3f} (smallest angle "
        f"{rnd['min_angle_deg']:.1f}°). " + story + " The histogram shows every "
        "one of the pairs on a log scale, so no pair that collapsed towards parallel can hide."))
    section.figure(plot_angles(hist, n, d), "angles", "All pairwise angles of each set of vectors, each "
                   "start beside the optimiser's result from it (pairs per 0.25° bin, log scale); the red band is "
                   "where the bounds forbid every pair to lie.")
    section.table(summary, "series_summary", "Largest |cos| and smallest angle of each set of vectors.")
    section.figure(plot_history(history, lower), "history", "Largest |cos| during optimisation.")
    section.table(hist[hist["pairs"] > 0], "angle_histogram", "Pairs per 0.25° bin.", max_rows=10)
    report.headline("optimised_max_abs_cos", opt["max_abs_cos"], f"largest |cos| among {n:,} optimised vectors in R^{d}")
    report.headline("optimised_min_angle_deg", opt["min_angle_deg"], "smallest angle between the optimised lines")
    report.headline("ratio_to_bound", opt["ratio_to_levenshtein"], "optimised max |cos| / best lower bound")
    report.headline("random_max_abs_cos", rnd["max_abs_cos"], "largest |cos| among random vectors")
    report.headline("pack_seconds", opt["seconds"], "time the optimiser took (this machine, as loaded)")
    if chirp:
        report.headline("optimised_from_random_max_abs_cos", from_random["max_abs_cos"],
                        f"the same optimiser from random vectors ({int(from_random['steps'])} steps)")

    curves = capacity_curves(config)
    growth = fit_growth(curves)
    section = report.section("Capacity against dimension", (
        "Question: how fast does the number of vectors that fit with every |cos| <= eps grow with d? For each "
        "eps the optimiser's capacity (largest n it packs; doubling then bisection) is shown beside random "
        "vectors added until the first clash and the most the Welch/Levenshtein bounds allow. The JL lemma "
        "predicts exponential growth, ln n ~ rate x d with rate (eps²/2 - eps³/3)/4 for random projections."))
    section.figure(plot_capacity(curves), "capacity", "Capacity n against d per eps (log scale): the "
                   "optimiser's, random vectors' (added until the first clash) and the bounds' most.")
    section.table(curves, "capacity", "Capacity per (d, eps).")
    section.table(growth, "growth", "Fitted slope of ln n against d, beside the JL rate.")
    opt_growth = growth[growth["vectors"] == "optimised"]
    section.text(" ".join(
        f"At eps = {r.eps:g} the fitted rate is {r.fitted_rate:.3f} per dimension against the JL rate "
        f"{r.jl_rate:.4f}." for r in opt_growth.itertuples())
        + " Over these small d the optimiser far outpaces the JL rate, which describes random projections "
        "in the large-d limit; the bounds, not the exponential, cap the counts here."
        if (opt_growth["fitted_rate"] > opt_growth["jl_rate"]).all() else
        " ".join(f"At eps = {r.eps:g} the fitted rate is {r.fitted_rate:.3f} per dimension against the JL rate "
                 f"{r.jl_rate:.4f}." for r in opt_growth.itertuples()))

    small = small_packings(config)
    worst_gap = float(small["gap_deg"].max())
    section = report.section("Small cases against the best known packings", (
        "Question: does the optimiser find the known optima? n lines through the origin of R^3 and R^4, "
        "against Conway, Hardin & Sloane's table (1996) and packings that meet a bound. "
        f"The largest shortfall is {worst_gap:.3f}°."))
    loose = small.loc[(small["bound_deg"] - small["best_known_deg"]).idxmax()]
    section.figure(plot_small(small), "small", "Smallest angle between the n lines: optimiser, best known packing, "
                   "and the bound (bound_deg), an UPPER bound on the smallest angle (the angle of the Welch / "
                   "Levenshtein lower bound on the largest |cos|): no packing can beat it, e.g. "
                   f"{int(loose['n'])} lines in R^{int(loose['d'])} have bound {loose['bound_deg']:.2f}° and best "
                   f"known {loose['best_known_deg']:.2f}°. The axis starts at 0°, so equal angles look equal.")
    section.table(small, "small_cases", "Optimiser against best known packings (degrees); bound_deg is an upper "
                  "bound on the smallest angle, gap_deg = best known - optimised.")
    report.headline("small_case_worst_gap_deg", worst_gap, "largest shortfall from a best known packing (degrees)")
    return report
