"""The digits report's sections: each arranges what :mod:`analyses.digits.measures` returned into text,
headline figures, figures and tables."""

import pandas as pd

from analyses.digits import RELU, SIGMOID, Config
from analyses.digits import measures, plots
from interp.report import Report
from models.data.digits import one_hot
from models.mlp import Network


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def accuracy(report: Report, config: Config, history: pd.DataFrame, runs: pd.DataFrame,
             summary: pd.DataFrame) -> None:
    targets = {SIGMOID: 0.95, RELU: 0.96}
    lines = []
    for row in summary.itertuples():
        verdict = "meets" if row.test_accuracy_min >= targets[row.variant] else "misses"
        lines.append(f"- **{row.variant}**: test accuracy {_pct(row.test_accuracy_mean)} ± "
                     f"{_pct(row.test_accuracy_std)} (mean ± sd over {row.seeds} seeds, range "
                     f"{_pct(row.test_accuracy_min)}-{_pct(row.test_accuracy_max)}); the worst seed {verdict} the "
                     f"{_pct(targets[row.variant])} target. Slowest training run: {row.max_cpu_seconds:.1f} s of CPU "
                     f"time on one thread.")
        key = "sigmoid_mse" if row.variant == SIGMOID else "relu_ce"
        report.headline(f"{key}_test_accuracy_mean", round(row.test_accuracy_mean, 4),
                        f"{row.variant} test accuracy, mean over {row.seeds} seeds")
        report.headline(f"{key}_test_accuracy_std", round(row.test_accuracy_std, 4),
                        f"{row.variant} test accuracy, standard deviation over seeds")
    section = report.section(
        "Does plain SGD with hand-written backprop learn the digits?",
        "Each variant is trained from several seeds by mini-batch SGD (Nielsen's `SGD`: reshuffle every epoch, "
        "step `-eta * gradient` per mini-batch"
        + (", with eta falling linearly to eta/epochs over the epochs" if config.anneal else "")
        + "). Settings: " + "; ".join(f"{k}: {v['epochs']} epochs, mini-batches of {v['mini_batch_size']}, eta "
                                     f"{v['eta']:g}" for k, v in config.variants().items()) + ". Cost is the mean over the training set; accuracies are the "
        "share of images whose most active output is the right digit. Bands span the seeds.\n\n" + "\n".join(lines))
    section.figure(plots.plot_training_curves(history), "training_curves",
                   "Training cost (log) per variant, and train (solid) / test (dashed) accuracy per epoch; "
                   "bands span the seeds.")
    section.table(summary, "accuracy_summary", "Test accuracy over seeds and the slowest training time (CPU s).")
    section.table(runs.drop(columns="wall_seconds"), "accuracy_per_seed",
                  "Final accuracies per seed; CPU seconds measured with time.process_time on one thread.")
    section.table(history, "training_history", "Per-epoch cost and accuracies (long format).", max_rows=10)


def confusion(report: Report, data, main: dict[str, Network]) -> None:
    table = measures.confusions(main, data.x_test, data.y_test)
    errors = table[table["true"] != table["predicted"]]
    top = plots.most_frequent_mistakes(table)

    def most_often(variant: str) -> str:  # every mistake with the largest count: ties are all named
        pairs = top[top.variant == variant]
        if pairs.empty:
            return "none"
        named = [f"{r.true} read as {r.predicted}" for r in pairs.itertuples()]
        count = int(pairs["count"].iloc[0])
        return (f"most often {named[0]} ({count} times)" if len(named) == 1 else
                f"most often {', '.join(named[:-1])} and {named[-1]} ({count} times each, a tie)")

    text = "; ".join(f"{variant}: {int(errors[errors.variant == variant]['count'].sum())} mistakes, {most_often(variant)}"
                     for variant in dict.fromkeys(table["variant"]))
    section = report.section("Which digits does it confuse?",
                             f"Test-set counts for the seed-{report.seed} network of each variant. {text}.")
    section.figure(plots.plot_confusion(table), "confusion", "Confusion matrices on the test set (rows: true digit, "
                   "columns: the digit whose output is largest). Boxed in red: each network's most frequent mistake, "
                   "every one of them where counts tie.")
    section.table(table, "confusion", "Confusion counts, long format.", max_rows=10)


def weights(report: Report, data, net: Network, seed: int) -> None:
    weights = measures.first_layer_weights(net, data.height, data.width)
    likeness = measures.edge_likeness(net, data, seed=seed)
    median = likeness.groupby("source")["best_cosine"].median()
    trained = likeness[likeness["source"] == "trained"]
    report.headline("first_layer_edge_cosine_median", round(float(median["trained"]), 3),
                    "median best |cosine| of a first-layer neuron with a clean edge/bar template (1 = clean detector)")
    structure = ("carry more spatial structure than random vectors" if median["trained"] > median["random"]
                 else "carry no more spatial structure than random vectors")
    verdict = ("but match edges worse than a template half drowned in noise, so they are not clean edge detectors: "
               "they are blotchy mixtures of strokes, as the series says" if median["trained"] < median["noisy template"]
               else "and match edges about as well as a noisy edge detector")
    section = report.section(
        "Are the first-layer neurons edge detectors?",
        "The series hopes the first hidden layer finds edges, then admits the weights look far messier. We draw each "
        "neuron's 64 incoming weights (sigmoid/MSE network) as an image and score it by its best |cosine "
        f"similarity| with a bank of {len(measures.edge_templates(data.height, data.width)[0])} clean oriented edge "
        "and bar templates (every orientation in 15° steps, every centre, three window widths), after centring and "
        "ignoring pixels that never vary in the data. Baselines: random Gaussian vectors (no structure at all) and a "
        "clean template plus equal-energy Gaussian noise (a real but noisy detector).\n\n"
        f"Median best |cosine|: trained neurons {median['trained']:.2f} (range {trained.best_cosine.min():.2f}-"
        f"{trained.best_cosine.max():.2f}), random vectors {median['random']:.2f}, noisy templates "
        f"{median['noisy template']:.2f}, a clean detector 1.00. The trained weights {structure} {verdict}.")
    section.figure(plots.plot_first_layer_weights(weights, likeness), "first_layer_weights",
                   "Incoming weights of each first-layer neuron as an 8x8 image (red positive, blue negative), "
                   "titled with the best |cosine| to a clean edge/bar template.")
    section.figure(plots.plot_edge_likeness(likeness), "edge_likeness",
                   "Best |cosine| with any clean edge/bar template: trained neurons against random vectors and "
                   "noisy templates.")
    section.table(trained.drop(columns="source"), "edge_likeness", "Best-matching template per trained neuron.")


def noise(report: Report, data, main: dict[str, Network], config: Config) -> None:
    table = pd.concat([measures.noise_confidence(net, data.x_test, config.n_noise, config.seed).assign(variant=label)
                       for label, net in main.items()], ignore_index=True)
    stats, favourite, share = measures.confidence_summary(table), *measures.favourite_answer(table)
    lines = []
    for label in main:
        s = stats.set_index(["variant", "input"])
        n_hi, d_hi = s.loc[(label, "uniform noise"), "above_0_9"], s.loc[(label, "test digits"), "above_0_9"]
        lines.append(f"- **{label}**: {_pct(n_hi)} of noise images get a top output above 0.9 (real digits: "
                     f"{_pct(d_hi)}); median confidence on noise {s.loc[(label, 'uniform noise'), 'median']:.2f} vs "
                     f"{s.loc[(label, 'test digits'), 'median']:.2f} on digits; the most common answer to noise is "
                     f"{favourite[label]} ({_pct(share[label])} of noise images).")
        key = "sigmoid_mse" if label == SIGMOID else "relu_ce"
        report.headline(f"{key}_noise_confident_share", round(n_hi, 4),
                        f"{label}: share of uniform-noise images answered with confidence above 0.9")
    section = report.section(
        "What does it say about pure noise?",
        f"The network only ever saw digits, so nothing tells it to say 'none of these'. We feed {config.n_noise} "
        "images of uniform random pixels and record the top output (a softmax probability for cross-entropy, the "
        "largest of ten independent sigmoids for MSE).\n\n" + "\n".join(lines))
    section.figure(plots.plot_noise_confidence(table.assign(variant=table["variant"])), "noise_confidence",
                   "Distribution of the top output's confidence on uniform noise and on real test digits.")
    examples = table[(table["input"] == "uniform noise") & (table["image"] < 8)]
    section.figure(plots.plot_noise_examples(measures.noise_images(8, data.n_pixels, config.seed).numpy(), examples,
                                             data.height, data.width),
                   "noise_examples", "Eight of the noise images with each network's answer and confidence.")
    section.table(stats, "noise_confidence", "Median confidence and share above 0.9, noise vs digits.")


def bang(report: Report, data, main: dict[str, Network], config: Config) -> None:
    x, y = data.x_train[:config.step_batch_size], one_hot(data.y_train[:config.step_batch_size], dtype=data.x_train.dtype)
    etas = {label: v["eta"] for label, v in config.variants().items()}
    curves, table = measures.bang_before_and_after(main, x, y, etas, config.top_fraction, config.seed)
    k = int(table["top_k"].iloc[0])
    lines = [f"- {r.variant}, {r.stage}: first order {_pct(r.first_order_share)}, measured {_pct(r.actual_share)}"
             for r in table.itertuples()]
    trained = table[(table["variant"] == SIGMOID) & (table["stage"] == "trained")].iloc[0]
    report.headline("top1pct_first_order_share", round(float(trained["first_order_share"]), 4),
                    f"sigmoid/MSE trained: share of one step's first-order cost decrease from the top "
                    f"{_pct(config.top_fraction)} of parameters by |gradient|")
    section = report.section(
        "Which weights give the most bang for the buck?",
        f"One SGD step on a mini-batch of {len(x)} training images moves each parameter by `-eta * g_i`, lowering the "
        "cost by `eta * sum_i g_i^2` to first order, so parameter i's share is `g_i^2 / |g|^2`. Ranking the "
        f"{int(table['parameters'].iloc[0])} weights and biases by |g_i|, the top {_pct(config.top_fraction)} "
        f"({k} parameters) carry this share of the decrease (first order; and measured by actually taking the step "
        "with only those parameters moved, divided by the decrease of the full step):\n\n" + "\n".join(lines)
        + "\n\nUniform importance would give " + _pct(k / int(table["parameters"].iloc[0])) + ". Where the measured "
        "share departs from the first-order one, the step is large enough for curvature to matter.")
    section.figure(plots.plot_bang_for_the_buck(curves, config.top_fraction),
                   "bang_for_the_buck", "Cumulative share of the first-order cost decrease against the fraction of "
                   f"parameters moved, largest |gradient| first; the vertical line marks {_pct(config.top_fraction)}.")
    section.table(table, "bang_for_the_buck", "Top-fraction share of one step's cost decrease.")


def fire(report: Report, data, main: dict[str, Network], config: Config) -> None:
    x, y = data.x_train[:config.step_batch_size], one_hot(data.y_train[:config.step_batch_size], dtype=data.x_train.dtype)
    table, points = measures.fire_before_and_after(main[SIGMOID], x, y, config.variants()[SIGMOID]["eta"], config.seed)
    wanted = table[table["receiving_end"] == "wanted"].set_index("stage")["pearson_update"]
    hidden = table[(table["receiving_end"] == "actual")].set_index(["stage", "layer"])["spearman_abs_update"]
    report.headline("wire_together_r_initial", round(float(wanted["initial"]), 3),
                    "untrained sigmoid/MSE net, output layer: correlation of each example's weight update with "
                    "wanted activation x input activation")
    section = report.section(
        "Do neurons that fire together wire together?",
        "For weight w_jk (neuron k of one layer to neuron j of the next), each example asks for the update "
        "`-eta * dC_x/dw_jk = -eta * delta_j a_k`. The series' claim: the biggest increases go to weights between "
        "neurons that are both active, in particular from bright inputs to the output neuron that *should* fire. "
        f"Over a batch of {len(x)} images (sigmoid/MSE network), correlation of the signed update with `y_j a_k` "
        f"(wanted output x input activation): {wanted['initial']:.2f} before training, {wanted['trained']:.2f} after"
        + (" (a trained network already gets these images right, so the updates it asks for are small and mostly "
           "about the wrong outputs)" if wanted["trained"] < wanted["initial"] else "") + ". Spearman correlation of the update's size "
        "with the actual product `a_j a_k`, per layer, before / after training: "
        + ", ".join(f"layer {l} {hidden[('initial', l)]:.2f} / {hidden[('trained', l)]:.2f}"
                    for l in sorted(table["layer"].unique())) + ". Part of this is built in: the update is "
        "proportional to a_k, the input end's activation (the chain rule's dz/dw).")
    section.figure(plots.plot_fire_together(points, table[table["stage"] == "initial"]), "fire_together",
                   "Untrained network: each example's requested update of each weight against the activation product "
                   "at its ends (1,500 random pairs per panel; r is Pearson over all pairs).")
    section.table(table, "fire_together", "Correlations between updates and activation products.")
