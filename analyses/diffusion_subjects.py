"""The trained subjects of the diffusion analysis: a class-conditional DDPM on the 8x8
digits, a caption-conditional DDPM on the 16x16 shapes (plus a snapshot of it after a few
steps), and a CLIP on the shapes, with the wall-clock and CPU time each took to train.

Example::

    from analyses.diffusion import Config
    from analyses.diffusion_subjects import train_subjects

    subjects = train_subjects(Config.quick())
    subjects.timing          # subject, steps, parameters, wall_seconds, cpu_seconds
"""

import copy
import time
from dataclasses import dataclass

import pandas as pd
import torch
import torch.nn.functional as F

from models.clip import Clip, ClipConfig, train_clip
from models.data.digits import digit_images
from models.data.shapes import VOCAB, ShapesData, bag_of_words, make_shapes
from models.diffusion import DDPM, DiffusionConfig, train_ddpm


@dataclass
class Subjects:
    digits: torch.Tensor  # [batch 1 8 8] in [0, 1]
    digit_labels: torch.Tensor
    shapes: ShapesData  # the training images
    digits_ddpm: DDPM
    shapes_ddpm: DDPM
    shapes_early: DDPM  # the same run, stopped after `early_steps`
    clip: Clip
    losses: pd.DataFrame  # subject, step, loss
    timing: pd.DataFrame  # subject, steps, parameters, wall_seconds, cpu_seconds


def to_model_range(images: torch.Tensor) -> torch.Tensor:
    """Data in [0, 1] to the [-1, 1] range the DDPM's x_0 clipping assumes (Ho et al. 2020, sec. 3.3)."""
    return images * 2 - 1


def digit_condition(labels: torch.Tensor) -> torch.Tensor:
    return F.one_hot(labels.long(), 10).float()


def caption_condition(captions: list[str]) -> torch.Tensor:
    return bag_of_words(captions)


def _timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def train_subjects(config, progress: bool = True) -> Subjects:
    """Generate the data and train every subject the report needs, seeded by ``config.seed``."""
    seed = config.seed
    digits, labels = digit_images()
    shapes = make_shapes(config.n_shapes, seed=seed)

    def ddpm_config(height: int, d_cond: int, offset: int) -> DiffusionConfig:
        return DiffusionConfig(height=height, width=height, d_cond=d_cond, d_model=config.d_model, d_mlp=2 * config.d_model,
                               n_layers=config.n_layers, n_steps=config.n_steps, p_uncond=config.p_uncond, seed=seed + offset)

    digits_ddpm = DDPM(ddpm_config(8, 10, 1))
    digit_losses, digit_wall, digit_cpu = _timed(lambda: train_ddpm(
        digits_ddpm, to_model_range(digits), digit_condition(labels), steps=config.digits_train_steps,
        batch_size=config.batch_size, seed=seed + 1, progress=progress))

    shapes_ddpm = DDPM(ddpm_config(16, len(VOCAB), 2))
    snapshot: dict[str, DDPM] = {}

    def keep_early(model: DDPM) -> dict[str, float]:
        # models.train evaluates every `early_steps` steps; the first call is the snapshot.
        snapshot.setdefault("early", copy.deepcopy(model))
        return {}

    shape_losses, shape_wall, shape_cpu = _timed(lambda: train_ddpm(
        shapes_ddpm, to_model_range(shapes.images), caption_condition(shapes.captions), steps=config.shapes_train_steps,
        batch_size=config.batch_size, seed=seed + 2, progress=progress, eval_fn=keep_early,
        eval_every=config.early_steps))

    clip = Clip(ClipConfig(seed=seed + 3))
    clip_losses, clip_wall, clip_cpu = _timed(lambda: train_clip(
        clip, shapes.images, shapes.captions, steps=config.clip_train_steps, batch_size=config.batch_size,
        seed=seed + 3, progress=progress))

    n_params = lambda model: sum(p.numel() for p in model.parameters())  # noqa: E731
    timing = pd.DataFrame([
        {"subject": "digits DDPM", "steps": config.digits_train_steps, "parameters": n_params(digits_ddpm), "wall_seconds": digit_wall, "cpu_seconds": digit_cpu},
        {"subject": "shapes DDPM", "steps": config.shapes_train_steps, "parameters": n_params(shapes_ddpm), "wall_seconds": shape_wall, "cpu_seconds": shape_cpu},
        {"subject": "shapes CLIP", "steps": config.clip_train_steps, "parameters": n_params(clip), "wall_seconds": clip_wall, "cpu_seconds": clip_cpu},
    ])
    losses = pd.concat([
        h[["step", "loss"]].assign(subject=name)
        for name, h in (("digits DDPM", digit_losses), ("shapes DDPM", shape_losses), ("shapes CLIP", clip_losses))
    ], ignore_index=True)
    return Subjects(digits, labels, shapes, digits_ddpm, shapes_ddpm, snapshot["early"], clip, losses, timing)
