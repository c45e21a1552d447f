"""Can a small noise-predicting network generate images, why does sampling need fresh noise, does classifier-free guidance make samples follow the prompt, and is CLIP's "hat" a direction?

Part 9 of the 3Blue1Brown series, tested on models that train in a couple of CPU minutes:
a DDPM (Ho et al. 2020) on scikit-learn's 8x8 digits (conditioned on the class) and on
procedural 16x16 shapes (conditioned on the caption's words), sampled three ways
(stochastic DDPM, the same without fresh noise, DDIM), swept over the classifier-free
guidance scale (Ho & Salimans 2022), and a CLIP (Radford et al. 2021) trained on the
shapes. Prompt adherence is judged by classifiers trained on real images only.

Example::

    from analyses.diffusion import Config, run

    report = run(Config.quick())
    report.save("out")        # out/diffusion/report.html
"""

import math
from dataclasses import dataclass, fields

from analyses.diffusion.metrics import fit_judges
from analyses.diffusion.sections import clip_section, collapse_section, guidance_section, noising_section, samples_section, training_section
from analyses.diffusion.subjects import train_subjects
from analyses.seed_spread import spread_section
from interp.report import Report


@dataclass(frozen=True)
class Config:
    seed: int = 0
    n_shapes: int = 6000  # shapes training images (diffusion and CLIP)
    n_classifier: int = 3000  # independent real shapes for the adherence classifiers, and as many held out
    n_steps: int = 100  # diffusion time steps T
    d_model: int = 192
    n_layers: int = 3
    p_uncond: float = 0.1
    batch_size: int = 256
    digits_train_steps: int = 1000
    shapes_train_steps: int = 1000
    early_steps: int = 200  # the "briefly trained" snapshot of the shapes model
    clip_train_steps: int = 600
    samples_per_class: int = 30  # digits, per class and sampler
    samples_per_caption: int = 10  # shapes, per caption and guidance scale
    guidance_scales: tuple[float, ...] = (0.0, 0.5, 1.0, 2.0, 3.0, 5.0, 7.0)
    clip_pairs: int = 512

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name not in ("seed", "p_uncond", "guidance_scales") and (not isinstance(value, int) or value < 1):
                raise ValueError(f"Config.{f.name} must be a positive integer, got {value!r}")
        if not 0.0 <= self.p_uncond < 1.0:
            raise ValueError(f"Config.p_uncond must be in [0, 1), got {self.p_uncond}")
        if self.early_steps >= self.shapes_train_steps:
            raise ValueError(f"Config.early_steps ({self.early_steps}) must be below shapes_train_steps ({self.shapes_train_steps})")
        if self.samples_per_class < 2 or self.samples_per_caption < 2:
            raise ValueError("samples_per_class and samples_per_caption must be >= 2 (diversity needs pairs)")
        scales = self.guidance_scales
        if not scales or any(isinstance(a, bool) or not isinstance(a, (int, float)) or not math.isfinite(a) for a in scales):
            raise ValueError(f"Config.guidance_scales must be finite numbers, got {scales!r}")
        if 0.0 not in scales:
            raise ValueError(f"Config.guidance_scales must include 0 (the unguided baseline), got {scales!r}")

    @classmethod
    def quick(cls) -> "Config":
        return cls(n_shapes=1500, n_classifier=600, n_steps=40, d_model=96, digits_train_steps=150, shapes_train_steps=150,
                   early_steps=50, clip_train_steps=100, samples_per_class=6, samples_per_caption=3,
                   guidance_scales=(0.0, 2.0, 7.0), clip_pairs=96)


def run(config: Config) -> Report:
    report = Report("diffusion", "Diffusion: generating from noise, why sampling needs noise, guidance and CLIP", config,
                    summary=__doc__.split("Example::")[0])
    subjects = train_subjects(config)
    judges = fit_judges(subjects.digits, subjects.digit_labels, config.n_classifier, config.seed)

    noising_section(report, config, subjects)
    samples = samples_section(report, config, subjects, judges)
    collapse_section(report, config, subjects, samples)
    guidance_section(report, config, subjects, judges.shapes)
    clip_section(report, config, subjects)
    training_section(report, config, subjects)
    spread_section(report, config)  # the same figures over training seeds, where `interp spread` measured them
    return report
