"""Sampling experiments of the diffusion analysis: forward noising, the three samplers
side by side, and the classifier-free guidance sweep; each returns tidy DataFrames.

Example::

    from analyses.diffusion import Config
    from analyses.diffusion.subjects import train_subjects
    from analyses.diffusion.sampling import sample_digits

    subjects = train_subjects(Config.quick())           # from the zoo after the first time
    images, labels = sample_digits(subjects.digits_ddpm, per_class=4, sampler="ddpm")
"""

import itertools
import operator
from typing import NamedTuple

import numpy as np
import pandas as pd
import torch
from scipy.stats import spearmanr
from tqdm.auto import tqdm

from analyses.diffusion.metrics import (
    describe_samples, flatten, mean_with_interval, shape_adherence, summarise_adherence,
)
from analyses.diffusion.plots import to_unit
from analyses.diffusion.subjects import caption_condition, digit_condition, to_model_range
from interp.intervals import difference_interval
from models.data.shapes import ATTRIBUTES, all_captions
from models.diffusion import DDPM


def sample_digits(ddpm: DDPM, per_class: int, sampler: str = "ddpm", guidance: float = 0.0, seed: int = 0,
                  conditional: bool = True) -> tuple[torch.Tensor, np.ndarray]:
    """``per_class`` samples of each digit (in [0, 1]) and the class each was asked for."""
    labels = torch.arange(10).repeat_interleave(per_class)
    cond = digit_condition(labels) if conditional else torch.zeros(len(labels), 10)
    return to_unit(ddpm.sample(cond, sampler=sampler, guidance=guidance, seed=seed)), labels.numpy()


def caption_attributes(per_caption: int) -> pd.DataFrame:
    """Attributes of every caption, each repeated ``per_caption`` times, in caption order."""
    rows = [dict(zip(ATTRIBUTES, values), caption_id=i) for i, values in enumerate(itertools.product(*ATTRIBUTES.values()))]
    table = pd.DataFrame(rows)
    return table.loc[table.index.repeat(per_caption)].reset_index(drop=True)


def sample_captions(ddpm: DDPM, per_caption: int, sampler: str = "ddpm", guidance: float = 0.0,
                    seed: int = 0) -> tuple[torch.Tensor, pd.DataFrame]:
    """``per_caption`` samples (in [0, 1]) for each of the 48 captions, with their attributes."""
    attributes = caption_attributes(per_caption)
    captions = [all_captions()[i] for i in attributes["caption_id"]]
    return to_unit(ddpm.sample(caption_condition(captions), sampler=sampler, guidance=guidance, seed=seed)), attributes


def forward_noising(ddpm: DDPM, images: torch.Tensor, fractions: tuple[float, ...], seed: int = 0) -> tuple[torch.Tensor, list[int]]:
    """``x_t`` for each image at time steps ``round(fraction * (T - 1))``: [rows = images, cols = steps]."""
    steps = [round(f * (ddpm.cfg.n_steps - 1)) for f in fractions]
    noise = torch.randn(images.shape, generator=torch.Generator().manual_seed(seed))
    x0 = to_model_range(images)
    columns = [ddpm.add_noise(x0, torch.full((len(images),), s), noise) for s in steps]
    return to_unit(torch.stack(columns, dim=1)[:, :, 0]), steps


def add_noise_error(ddpm: DDPM, images: torch.Tensor, seed: int = 0) -> float:
    """Largest |add_noise - closed form| in float64, the closed form recomputed with numpy
    from the betas: sqrt(prod(1 - beta)) x_0 + sqrt(1 - prod(1 - beta)) eps (Ho et al. eq. 4),
    the product taken left to right as written."""
    generator = torch.Generator().manual_seed(seed)
    x0 = to_model_range(images).double()
    noise = torch.randn(x0.shape, generator=generator, dtype=torch.float64)
    t = torch.randint(0, ddpm.cfg.n_steps, (len(x0),), generator=generator)
    alpha_bar = np.array(list(itertools.accumulate(1.0 - ddpm.betas.numpy(), operator.mul)))[t.numpy()][:, None, None, None]
    closed = np.sqrt(alpha_bar) * x0.numpy() + np.sqrt(1.0 - alpha_bar) * noise.numpy()
    return float(np.abs(ddpm.add_noise(x0, t, noise).numpy() - closed).max())


class Samples(NamedTuple):
    """Generated images of one (setting, sampler): their groups (class or caption id) and whether each
    was judged to follow its condition (NaN where there is none)."""

    images: torch.Tensor  # [batch channel height width]
    groups: np.ndarray
    correct: np.ndarray


def sampler_comparison(samples: dict, means: dict, real: dict) -> pd.DataFrame:
    """Diversity, distance to the data mean and adherence for every (setting, sampler).

    ``samples[(setting, sampler)]`` is a :class:`Samples`; ``means[setting]`` maps a
    group to its real mean image; ``real[setting] = (images, groups)`` adds the real data
    as a reference row (adherence left empty).
    """
    rows = []
    for (setting, sampler), (images, groups, correct) in samples.items():
        per_group = describe_samples(images, groups, means[setting], correct)
        rows.append({"setting": setting, "sampler": sampler, "n": len(images), "diversity": per_group["diversity"].mean(),
                     "distance_to_mean": per_group["distance_to_mean"].mean(), "adherence": float(np.mean(correct))})
    for setting, (images, groups) in real.items():
        per_group = describe_samples(images, groups, means[setting])
        rows.append({"setting": setting, "sampler": "real data", "n": len(images), "diversity": per_group["diversity"].mean(),
                     "distance_to_mean": per_group["distance_to_mean"].mean(), "adherence": float("nan")})
    return pd.DataFrame(rows)


def guidance_sweep(models: dict[str, DDPM], classifiers: dict, scales: tuple[float, ...], per_caption: int,
                   seed: int = 0) -> tuple[pd.DataFrame, dict]:
    """Caption adherence (all five attributes read correctly by the independent classifiers,
    with a 95% Wilson interval) and diversity (mean pairwise distance among samples of one
    caption, 95% interval over the 48 captions) for each model and guidance scale.

    Every scale starts from the same initial noise (same seed), so differences between
    scales come from guidance, not from the draw. Also returns the samples, keyed by
    (model, scale), for figures.
    """
    rows, images = [], {}
    for name, ddpm in models.items():
        for alpha in tqdm(scales, desc=f"guidance ({name})", leave=False):
            samples, attributes = sample_captions(ddpm, per_caption, guidance=alpha, seed=seed)
            correct = shape_adherence(classifiers, samples, attributes)
            diversity = describe_samples(samples, attributes["caption_id"].to_numpy(),
                                         {g: torch.zeros(1) for g in attributes["caption_id"].unique()})["diversity"]
            interval = mean_with_interval(diversity.to_numpy())
            per_attribute = {f"adherence_{a}": float(correct[a].mean()) for a in correct.columns if a != "caption"}
            rows.append({"model": name, "alpha": float(alpha), **summarise_adherence(correct["caption"].to_numpy()),
                         "diversity": interval["mean"], "diversity_low": interval["low"], "diversity_high": interval["high"],
                         **per_attribute})
            images[(name, float(alpha))] = samples
    return pd.DataFrame(rows), images


def guidance_effect(sweep: pd.DataFrame) -> pd.DataFrame:
    """Per model: adherence at alpha = 0, at the best alpha and at the largest; the gain with
    Newcombe's 95% interval; diversity at alpha = 0, at the best alpha, its minimum and at
    the largest alpha; and the Spearman correlation of diversity with alpha."""
    rows = []
    for name, part in sweep.groupby("model", sort=False):
        base = part[part["alpha"] == 0.0].iloc[0]
        best = part.loc[part["adherence"].idxmax()]
        low, high = difference_interval(int(best["successes"]), int(best["n"]), int(base["successes"]), int(base["n"]))
        rho = spearmanr(part["alpha"], part["diversity"]).statistic if len(part) > 2 else float("nan")
        largest, least_diverse = part.loc[part["alpha"].idxmax()], part.loc[part["diversity"].idxmin()]
        rows.append({"model": name, "adherence_alpha0": base["adherence"], "best_alpha": best["alpha"],
                     "adherence_best": best["adherence"], "gain_points": 100 * (best["adherence"] - base["adherence"]),
                     "gain_ci_low_points": 100 * low, "gain_ci_high_points": 100 * high,
                     "adherence_max_alpha": largest["adherence"], "diversity_alpha0": base["diversity"],
                     "diversity_at_best": best["diversity"], "diversity_min": least_diverse["diversity"],
                     "alpha_diversity_min": least_diverse["alpha"], "diversity_max_alpha": largest["diversity"],
                     "diversity_alpha_spearman": float(rho)})
    return pd.DataFrame(rows)


def digit_accuracy(classifier, images: torch.Tensor, labels: np.ndarray) -> np.ndarray:
    """Per image, whether the independent digit classifier reads the requested class."""
    return classifier.predict(flatten(images)) == labels
