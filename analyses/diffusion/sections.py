"""The sections of the diffusion report: each measures, then writes prose from the numbers.

Example::

    from analyses.diffusion import Config, run
    run(Config.quick())          # calls every *_section function below in order
"""

import itertools

import numpy as np
import torch

from analyses.diffusion.clip import direction_cosines, hat_direction_by_shape, zero_shot_accuracy
from analyses.diffusion.metrics import Judges, shape_adherence
from analyses.diffusion.plots import plot_direction_cosines, plot_guidance, plot_losses, plot_montages, plot_zero_shot
from analyses.diffusion.sampling import (
    Samples, add_noise_error, digit_accuracy, forward_noising, guidance_effect, guidance_sweep, sample_captions,
    sample_digits, sampler_comparison,
)
from models.data.shapes import ATTRIBUTES, make_shapes
from models.train import TrainConfig

SAMPLERS = {"ddpm": "stochastic DDPM", "ddpm_no_noise": "DDPM without fresh noise", "ddim": "DDIM (deterministic)"}


def pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def caption_grid_labels() -> tuple[list[str], list[str]]:
    """Row labels (shape, size) and column labels (fill, position, hat) of the 6 x 8 caption grid."""
    rows = [f"{size} {shape}" for shape, size in itertools.product(ATTRIBUTES["shape"], ATTRIBUTES["size"])]
    cols = [f"{'filled' if f else 'outlined'} {p[0].upper()}{' +hat' if h else ''}"
            for f, p, h in itertools.product(ATTRIBUTES["filled"], ATTRIBUTES["position"], ATTRIBUTES["hat"])]
    return rows, cols


def noising_section(report, config, s) -> None:
    fractions = (0.0, 0.1, 0.25, 0.5, 0.75, 1.0)
    noised_d, steps = forward_noising(s.digits_ddpm, s.digits[:4], fractions, seed=config.seed)
    noised_s, _ = forward_noising(s.shapes_ddpm, s.shapes.images[:4], fractions, seed=config.seed)
    error = max(add_noise_error(s.digits_ddpm, s.digits[:256], config.seed), add_noise_error(s.shapes_ddpm, s.shapes.images[:256], config.seed))
    report.headline("add_noise_max_error", error, "largest |add_noise - closed form| over 512 float64 images")
    section = report.section("Forward noising", (
        "*Question:* what does the model learn to undo? `add_noise` draws x_t from x_0 in one step, "
        "x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps (Ho et al. 2020, eq. 4), on a cosine schedule "
        f"(Nichol & Dhariwal 2021) over T = {config.n_steps} steps. Against the closed form recomputed with numpy from the "
        f"betas, the largest difference over 512 float64 images is {error:.3g}. At the last step the image is "
        "drowned in noise; that is where sampling starts."))
    labels = [f"t={t}" for t in steps]
    section.figure(plot_montages([("digits", noised_d), ("shapes", noised_s)], col_labels=[labels, labels],
                                 title="x_t of real images (shown clipped to the data range)"),
                   "forward_noising", "Four real digits and four real shapes (rows) noised to the time step of each column.")


def samples_section(report, config, s, judges: Judges) -> dict[tuple[str, str], Samples]:
    """Samples for every (setting, sampler); returns them for the collapse section."""
    digit_clf, digit_clf_acc, shape_clfs, shape_clf_acc = judges.digit, judges.digit_accuracy, judges.shapes, judges.shape_accuracy
    per = config.samples_per_class
    samples = {}
    for sampler in SAMPLERS:
        images, labels = sample_digits(s.digits_ddpm, per, sampler, seed=config.seed + 10)
        samples[("digits | class", sampler)] = Samples(images, labels, digit_accuracy(digit_clf, images, labels))
    for sampler in ("ddpm", "ddpm_no_noise"):
        images, labels = sample_digits(s.digits_ddpm, per, sampler, seed=config.seed + 11, conditional=False)
        samples[("digits | none", sampler)] = Samples(images, np.zeros_like(labels), np.full(len(labels), np.nan))
    for sampler in SAMPLERS:
        images, attributes = sample_captions(s.shapes_ddpm, config.samples_per_caption, sampler, seed=config.seed + 12)
        correct = shape_adherence(shape_clfs, images, attributes)
        samples[("shapes | caption", sampler)] = Samples(images, attributes["caption_id"].to_numpy(), correct["caption"].to_numpy())
        if sampler == "ddpm":
            shape_correct = correct
    digit_rate = float(samples[("digits | class", "ddpm")].correct.mean())
    shape_rate = float(shape_correct["caption"].mean())
    report.headline("digits_recognised", digit_rate, "stochastic-DDPM digits read as the requested class by an independent SVM (chance 0.1)")
    report.headline("shapes_caption_recognised", shape_rate, "stochastic-DDPM shapes with all five attributes as captioned (chance 1/48)")
    section = report.section("Samples from pure noise", (
        "*Question:* can a network trained only to predict the added noise generate new images? From pure noise, the "
        f"stochastic sampler (Ho et al. 2020, Algorithm 2) ran all {config.n_steps} steps, conditioned on a class or a "
        "caption, without guidance. *How it is judged:* by classifiers trained on real images only: an RBF SVM for digits "
        f"(held-out accuracy {pct(digit_clf_acc)}) and one logistic regression per shape attribute (held-out accuracy "
        f"{pct(shape_clf_acc['held_out_accuracy'].min())} or better). *Result:* {pct(digit_rate)} of {10 * per} generated "
        f"digits are read as the requested class (chance 10%), and {pct(shape_rate)} of {len(shape_correct)} generated shapes "
        f"show all five captioned attributes (chance {pct(1 / 48)}); per attribute: "
        + ", ".join(f"{a} {pct(shape_correct[a].mean())}" for a in ATTRIBUTES) + "."))
    section.table(shape_clf_acc, "classifier_accuracy", "held-out accuracy of the independent shape classifiers (real images)")
    images = samples[("digits | class", "ddpm")].images[:, 0].reshape(10, per, 8, 8)[:, :10]
    section.figure(plot_montages([("stochastic DDPM, no guidance", images)], row_labels=[f"class {k}" for k in range(10)]),
                   "digit_samples", "Generated digits, one row per requested class.")
    first = samples[("shapes | caption", "ddpm")].images[:, 0].reshape(48, config.samples_per_caption, 16, 16)[:, 0].reshape(6, 8, 16, 16)
    rows, cols = caption_grid_labels()
    section.figure(plot_montages([("one sample per caption", first)], row_labels=rows, col_labels=[cols], tile_inches=0.7),
                   "caption_samples", "One generated shape per caption: the row gives size and shape, the column fill, "
                   "position (L/R) and whether the caption asks for a hat.")
    return samples


def collapse_section(report, config, s, samples) -> None:
    digits, labels = s.digits, s.digit_labels.numpy()
    means = {"digits | class": {k: digits[labels == k].mean(0) for k in range(10)}, "digits | none": {0: digits.mean(0)},
             "shapes | caption": {k: s.shapes.images[torch.from_numpy((s.shapes.attributes["caption_id"] == k).to_numpy().copy())].mean(0)
                                  for k in range(48)}}
    real = {"digits | class": (digits, labels), "digits | none": (digits, np.zeros_like(labels)),
            "shapes | caption": (s.shapes.images, s.shapes.attributes["caption_id"].to_numpy())}
    table = sampler_comparison(samples, means, real)
    table["sampler"] = table["sampler"].map(lambda k: SAMPLERS.get(k, k))
    get = lambda setting, sampler, col: float(table[(table.setting == setting) & (table.sampler == SAMPLERS[sampler])][col].iloc[0])  # noqa: E731
    sentences = []
    for setting, what in (("digits | class", "class-conditional digits"), ("digits | none", "unconditional digits"), ("shapes | caption", "caption-conditional shapes")):
        ratio = get(setting, "ddpm_no_noise", "diversity") / get(setting, "ddpm", "diversity")
        closer = get(setting, "ddpm_no_noise", "distance_to_mean") < get(setting, "ddpm", "distance_to_mean")
        sentences.append(f"for {what}, diversity without noise is {ratio:.3f} times that with noise "
                         f"({get(setting, 'ddpm_no_noise', 'diversity'):.2f} vs {get(setting, 'ddpm', 'diversity'):.2f}) and the samples are "
                         f"{'closer to' if closer else 'not closer to'} the data mean ({get(setting, 'ddpm_no_noise', 'distance_to_mean'):.2f} vs "
                         f"{get(setting, 'ddpm', 'distance_to_mean'):.2f})")
        if setting == "digits | class":
            report.headline("no_noise_diversity_ratio", ratio, "diversity without / with fresh noise, class-conditional digits (collapse if <= 0.25)")
            report.headline("no_noise_closer_to_mean", bool(closer), "no-noise digits are closer to their class mean than stochastic ones")
    ratio = get("digits | class", "ddpm_no_noise", "diversity") / get("digits | class", "ddpm", "diversity")
    ddim_share = get("digits | class", "ddim", "diversity") / get("digits | class", "ddpm", "diversity")
    explanation = (
        "Without the noise each step only moves toward the network's estimate of the mean image given x_t, which "
        "forgets the starting point, so different starts end at nearly the same image, close to the real class mean "
        "(the right-hand column of the figure). " if ratio <= 0.25 else
        f"At these sizes the no-noise sampler keeps {ratio:.2f} of the diversity, more than a quarter: no clear collapse. ")
    explanation += (f"DDIM, deterministic too, keeps {ddim_share:.2f} of the stochastic sampler's diversity, because its update "
                    "carries the predicted noise forward instead of dropping it (Song et al. 2021, eq. 12).")
    section = report.section("Why sampling needs fresh noise", (
        "*Question:* what happens if the sampler follows the predicted means without adding fresh noise at each step? "
        "*How:* the same network and the same starting noise, sampled three ways: stochastic DDPM, DDPM without the fresh "
        "noise, and deterministic DDIM (Song et al. 2021, eta = 0), which has the same marginals as the stochastic sampler without drawing fresh noise. Diversity is the mean "
        "pairwise pixel distance among samples of one class or caption (averaged over them); distance to the mean is each "
        "sample's distance from the real images' mean for its class or caption (the overall mean when unconditional). "
        "*Result:* " + "; ".join(sentences) + ". " + explanation))
    section.table(table, "sampler_comparison", "per setting and sampler: diversity, distance to the data mean, classifier adherence (real data for reference)")
    per = config.samples_per_class
    panels = [(SAMPLERS[k], samples[("digits | class", k)].images[:, 0].reshape(10, per, 8, 8)[:, :8]) for k in SAMPLERS]
    panels.append(("real class mean", torch.stack([means["digits | class"][k][0] for k in range(10)])[:, None]))
    numbers = ", ".join(f"{SAMPLERS[k]}: diversity {get('digits | class', k, 'diversity'):.2f}, to mean {get('digits | class', k, 'distance_to_mean'):.2f}" for k in SAMPLERS)
    section.figure(plot_montages(panels, row_labels=[f"class {k}" for k in range(10)], title="Same network, same start, three samplers"),
                   "noise_vs_no_noise", f"Class-conditional digits from each sampler beside the real class mean. {numbers}.")


def guidance_section(report, config, s, shape_clfs) -> None:
    models = {f"briefly trained ({config.early_steps} steps)": s.shapes_early, f"fully trained ({config.shapes_train_steps} steps)": s.shapes_ddpm}
    sweep, images = guidance_sweep(models, shape_clfs, config.guidance_scales, config.samples_per_caption, seed=config.seed + 20)
    effect = guidance_effect(sweep)
    sentences = []
    for row in effect.itertuples():
        significant = row.gain_ci_low_points > 0
        sentences.append(
            f"the {row.model} model reads as captioned {pct(row.adherence_alpha0)} of the time at alpha = 0 and {pct(row.adherence_best)} at its best "
            f"alpha = {row.best_alpha:g}, a gain of {row.gain_points:.1f} points (95% interval {row.gain_ci_low_points:.2g} to "
            f"{row.gain_ci_high_points:.2g}, {'beyond' if significant else 'within'} sampling noise), and {pct(row.adherence_max_alpha)} at "
            f"alpha = {max(config.guidance_scales):g}; its diversity is {row.diversity_alpha0:.2f} at alpha = 0, lowest "
            f"({row.diversity_min:.2f}) at alpha = {row.alpha_diversity_min:g}, {row.diversity_at_best:.2f} at the best alpha and "
            f"{row.diversity_max_alpha:.2f} at alpha = {max(config.guidance_scales):g} (Spearman correlation with alpha "
            f"{row.diversity_alpha_spearman:.2f})")
    gains = effect["gain_points"].to_numpy()
    lessons = []
    if len(gains) == 2 and gains[0] > gains[1] and effect["adherence_alpha0"].iloc[0] < effect["adherence_alpha0"].iloc[1]:
        lessons.append("guidance helps most where the conditional model alone follows the caption least")
    if (effect["diversity_at_best"] < effect["diversity_alpha0"]).all():
        lessons.append("it buys adherence with diversity")
    if (effect["adherence_max_alpha"] < effect["adherence_best"] - 0.02).any():
        lessons.append("too much guidance over-saturates the images and loses adherence again")
    sentences[-1] += ". In short: " + ("; ".join(lessons) if lessons else "no clear pattern at these sizes")
    early = effect.iloc[0]
    report.headline("guidance_gain_points", float(early.gain_points), "adherence gain (points) of the best guidance scale over alpha = 0, briefly trained shapes model")
    report.headline("guidance_gain_ci_low_points", float(early.gain_ci_low_points), "lower end of that gain's 95% interval (> 0: beyond sampling noise)")
    report.headline("guidance_best_adherence", float(effect["adherence_best"].max()), "best caption adherence of any model at any guidance scale")
    report.headline("guidance_diversity_spearman", float(early.diversity_alpha_spearman), "rank correlation of diversity with alpha, briefly trained model (< 0: falls)")
    n = int(sweep["n"].iloc[0])
    section = report.section("Classifier-free guidance", (
        "*Question:* does guided = cond + alpha (cond - uncond) (Ho & Salimans 2022) make samples follow the prompt, and at "
        f"what cost? *How:* the shapes model was trained with the caption dropped {pct(config.p_uncond)} of the time, so one network predicts "
        f"the noise with and without the caption. For each alpha, {n} samples ({config.samples_per_caption} per caption, "
        "same starting noise for every alpha) were read by the independent attribute classifiers; adherence is the share "
        "with all five attributes right, with a 95% Wilson interval; diversity is as in the previous section, with a 95% "
        f"interval over captions. Two subjects: the model after {config.early_steps} of its training steps, and fully "
        "trained. *Result:* " + "; ".join(sentences) + "."))
    section.table(sweep.drop(columns=["successes"]), "guidance_sweep", "adherence (with 95% interval), per-attribute adherence and diversity per model and alpha")
    section.table(effect, "guidance_effect", "best alpha against alpha = 0, with Newcombe's 95% interval for the gain")
    section.figure(plot_guidance(sweep), "guidance_curve", "Caption adherence (left, 95% Wilson band) and diversity (right, 95% band over captions) against alpha.")
    name = next(iter(models))
    picks = list(range(0, 48, 7))  # a stride of 7 mixes hats, fills, positions, sizes and shapes
    grid = torch.stack([images[(name, float(a))][:, 0].reshape(48, config.samples_per_caption, 16, 16)[picks, 0] for a in config.guidance_scales])
    _, cols = caption_grid_labels()
    rows, _ = caption_grid_labels()
    labels = [f"{rows[i // 8]}, {cols[i % 8]}" for i in picks]
    section.figure(plot_montages([(f"{name} model", grid)], row_labels=[f"alpha={a:g}" for a in config.guidance_scales], col_labels=[labels], tile_inches=0.7),
                   "guidance_samples", "The same starting noise for each caption (column) at every guidance scale (row).")


def clip_section(report, config, s) -> None:
    test = make_shapes(max(config.n_classifier, 200), seed=config.seed + 102)
    zero_shot = zero_shot_accuracy(s.clip, test)
    cosines = direction_cosines(s.clip, n_pairs=config.clip_pairs, seed=config.seed + 30)
    by_shape = hat_direction_by_shape(s.clip, n_pairs=config.clip_pairs // 3 + 1, seed=config.seed + 31)
    attr = zero_shot[zero_shot["attribute"] != "caption (all five)"]
    sentences = []
    for kind in ("caption difference", "single word"):
        col = cosines[(cosines.caption_kind == kind) & (cosines.caption_direction == "hat")]
        hat = float(col[col.image_direction == "hat"]["cosine"].iloc[0])
        others = col[col.image_direction != "hat"]
        best = others.loc[others["cosine"].idxmax()]
        sentences.append(f"against the \"hat\" {kind} the hat image direction has cosine {hat:.3f}, the best "
                         f"baseline ({best.image_direction}) {best.cosine:.3f}, so the hat direction is "
                         f"{'better aligned than every baseline' if hat > others['cosine'].max() else 'NOT better aligned than every baseline'}")
        if kind == "caption difference":
            report.headline("clip_hat_cosine", hat, "cosine(mean image(hat) - image(no hat), mean caption(with a hat) - caption(without))")
            report.headline("clip_hat_best_baseline_cosine", float(best.cosine), "the highest cosine of any other attribute's image direction or random directions (95th pct) with that caption direction")
    report.headline("clip_zero_shot_attribute_accuracy", float(attr["accuracy"].mean()), "mean zero-shot accuracy over the five attributes (chance about 0.47)")
    section = report.section("CLIP: zero-shot attributes and the hat direction", (
        "*Question:* does a contrastively trained image/caption pair of encoders (Radford et al. 2021) read attributes "
        "without labels, and is (image with hat) - (image without hat) the direction of \"hat\"? *How:* zero-shot: each "
        "held-out image is compared with all 48 captions; an attribute's prediction is the value whose captions hold the "
        "most probability. Directions: the mean embedding difference of image pairs that differ only in one attribute "
        f"({config.clip_pairs} pairs, averaged over shapes and all other attributes), against the mean difference of caption "
        "pairs that differ only in that attribute, and against the embedding of the one-word caption (never seen in training). "
        f"*Result:* zero-shot accuracy averages {pct(attr['accuracy'].mean())} over the attributes (chance "
        f"{pct(attr['chance'].mean())}; lowest: {attr.loc[attr['accuracy'].idxmin(), 'attribute']} {pct(attr['accuracy'].min())}); "
        f"the full caption is right {pct(zero_shot['accuracy'].iloc[0])} of the time (chance {pct(1 / 48)}). "
        + "; ".join(sentences)[0].upper() + "; ".join(sentences)[1:] + ". Per shape, the hat direction's cosine with the caption direction is "
        + ", ".join(f"{r.shape} {r.cosine_with_hat_caption_direction:.3f}" for r in by_shape.itertuples()) + "."))
    section.table(zero_shot, "clip_zero_shot", "zero-shot accuracy on held-out shapes, with chance level")
    section.table(cosines, "clip_direction_cosines", "cosine of each image direction with each caption direction")
    section.table(by_shape, "clip_hat_by_shape", "each shape's own hat direction against the caption hat direction")
    section.figure(plot_zero_shot(zero_shot), "clip_zero_shot", "Zero-shot accuracy per attribute (bars) and chance (black ticks).")
    section.figure(plot_direction_cosines(cosines), "clip_directions",
                   "Cosine of image-embedding differences (rows) with caption directions (columns); the diagonal is each attribute with itself.")


def training_section(report, config, s) -> None:
    total_wall, total_cpu = float(s.timing["wall_seconds"].sum()), float(s.timing["cpu_seconds"].sum())
    section = report.section("Training cost", (
        f"*Question:* are these subjects laptop-sized? Training every subject took {total_wall:.0f} s of wall-clock time and "
        f"{total_cpu:.0f} s of CPU time on {TrainConfig.threads} torch thread(s) (the count `models.train` fixes, so that the "
        "weights do not depend on the machine's cores or load); the machine's one-minute load average "
        f"was {s.load_average:.1f} when training ended, so on a busy machine the wall-clock time overstates the cost. Every subject is "
        "trained by the project's one loop, `models.train` (AdamW, warm-up, cosine decay, clipping)."))
    section.table(s.timing.round(2), "training_time", "steps, parameters and time per subject (timings vary between runs)")
    section.figure(plot_losses(s.losses), "training_loss", "Training loss per step (rolling mean of 25) of every subject.")
