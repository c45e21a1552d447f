"""The diffusion analysis's zoo subjects: a class-conditional DDPM on the 8x8 digits
(``digits_ddpm``), a caption-conditional DDPM on the 16x16 shapes with a snapshot of the
same run after ``early_steps`` (``shapes_ddpm``), and a CLIP on the shapes (``shapes_clip``).

Example::

    from models import zoo

    clip = zoo.load("shapes_clip", quick=True)                       # trained on first use, then cached
    pair = zoo.load("shapes_ddpm", seed=0, d_model=96, steps=150, early_steps=50)
    pair["final"], pair["early"]                                     # two DDPMs of one training run
    zoo.history("shapes_clip", quick=True)                           # losses, wall/cpu seconds, load average

Options (keyword arguments of ``zoo.load``, all in the cached config) are the sizes and
training lengths the analysis's config sets; ``quick`` picks small defaults for the ones
not given. ``seed`` seeds the shapes data; each model and its batches are seeded by
``seed + 1`` (digits), ``seed + 2`` (shapes) and ``seed + 3`` (CLIP), as in the analysis.
The history each training records (cached with the weights) holds its per-step losses, its
wall-clock and CPU seconds and the machine's load average when it ended.
"""

import functools
import os
import time
from typing import Any, Callable

import pandas as pd
import torch.nn.functional as F
from torch import Tensor, nn

from models.clip import Clip, ClipConfig, train_clip
from models.data.digits import digit_images
from models.data.shapes import VOCAB, ShapesData, bag_of_words, make_shapes
from models.diffusion import DDPM, DiffusionConfig, train_ddpm

VERSION = 2  # 2: the transformer's MLP, whose fused x W_in + b_in (addmm) rounds differently in the last bit
DDPM_DEFAULTS = {False: {"d_model": 192, "n_layers": 3, "n_steps": 100, "p_uncond": 0.1, "batch_size": 256},
                 True: {"d_model": 96, "n_layers": 3, "n_steps": 40, "p_uncond": 0.1, "batch_size": 256}}
STEPS = {False: {"digits": 1000, "shapes": 1000, "early": 200, "clip": 600, "n_shapes": 6000},
         True: {"digits": 150, "shapes": 150, "early": 50, "clip": 100, "n_shapes": 1500}}


def to_model_range(images: Tensor) -> Tensor:
    """Data in [0, 1] to the [-1, 1] range the DDPM's x_0 clipping assumes (Ho et al. 2020, sec. 3.3)."""
    return images * 2 - 1


def digit_condition(labels: Tensor) -> Tensor:
    return F.one_hot(labels.long(), 10).float()


def caption_condition(captions: list[str]) -> Tensor:
    return bag_of_words(captions)


@functools.lru_cache(maxsize=2)
def training_shapes(n_shapes: int, seed: int) -> ShapesData:
    """The shapes the DDPM and the CLIP train on."""
    return make_shapes(n_shapes, seed=seed)


class Timed:
    """A training's history: its per-step records, wall and CPU seconds, and the load average at its end."""

    def __init__(self, run: Callable[[], pd.DataFrame]):
        wall, cpu = time.perf_counter(), time.process_time()
        losses = run()
        self.history = {"losses": losses.to_dict("records"), "wall_seconds": time.perf_counter() - wall,
                        "cpu_seconds": time.process_time() - cpu, "load_average": os.getloadavg()[0]}


def _ddpm_config(height: int, d_cond: int, seed: int, d_model: int, n_layers: int, n_steps: int,
                 p_uncond: float, **_: Any) -> DiffusionConfig:
    return DiffusionConfig(height=height, width=height, d_cond=d_cond, d_model=d_model, d_mlp=2 * d_model,
                           n_layers=n_layers, n_steps=n_steps, p_uncond=p_uncond, seed=seed)


def digits_ddpm(quick: bool, seed: int, steps: int | None = None, **sizes: Any):
    """Zoo recipe: the class-conditional DDPM on the 8x8 digits."""
    from models import zoo

    sizes = {**DDPM_DEFAULTS[quick], **sizes}
    steps = STEPS[quick]["digits"] if steps is None else steps
    cfg = _ddpm_config(8, 10, seed + 1, **sizes)

    def fit(ddpm: DDPM, checkpoint_dir) -> Timed:
        digits, labels = digit_images()
        return Timed(lambda: train_ddpm(ddpm, to_model_range(digits), digit_condition(labels), steps=steps,
                                        batch_size=sizes["batch_size"], seed=seed + 1, progress=True))

    return zoo.Recipe(config={"ddpm": cfg, "steps": steps, "batch_size": sizes["batch_size"], "version": VERSION},
                      build=lambda: DDPM(cfg), train=fit)


def shapes_ddpm(quick: bool, seed: int, n_shapes: int | None = None, steps: int | None = None,
                early_steps: int | None = None, **sizes: Any):
    """Zoo recipe: the caption-conditional DDPM on the shapes, ``{"final": DDPM, "early": DDPM}``."""
    from models import zoo

    sizes = {**DDPM_DEFAULTS[quick], **sizes}
    n_shapes = STEPS[quick]["n_shapes"] if n_shapes is None else n_shapes
    steps = STEPS[quick]["shapes"] if steps is None else steps
    early_steps = STEPS[quick]["early"] if early_steps is None else early_steps
    cfg = _ddpm_config(16, len(VOCAB), seed + 2, **sizes)

    def fit(pair: nn.ModuleDict, checkpoint_dir) -> Timed:
        shapes, kept = training_shapes(n_shapes, seed), []

        def keep_early(model: DDPM) -> dict[str, float]:
            # models.train evaluates every `early_steps` steps; the first call is the snapshot
            if not kept:
                pair["early"].load_state_dict(model.state_dict())
                kept.append(True)
            return {}

        return Timed(lambda: train_ddpm(
            pair["final"], to_model_range(shapes.images), caption_condition(shapes.captions), steps=steps,
            batch_size=sizes["batch_size"], seed=seed + 2, progress=True, eval_fn=keep_early, eval_every=early_steps))

    return zoo.Recipe(config={"ddpm": cfg, "n_shapes": n_shapes, "steps": steps, "early_steps": early_steps,
                              "batch_size": sizes["batch_size"], "version": VERSION},
                      build=lambda: nn.ModuleDict({"final": DDPM(cfg), "early": DDPM(cfg)}), train=fit)


def shapes_clip(quick: bool, seed: int, n_shapes: int | None = None, steps: int | None = None,
                batch_size: int = 256):
    """Zoo recipe: the CLIP trained on the shapes and their captions."""
    from models import zoo

    n_shapes = STEPS[quick]["n_shapes"] if n_shapes is None else n_shapes
    steps = STEPS[quick]["clip"] if steps is None else steps
    cfg = ClipConfig(seed=seed + 3)

    def fit(clip: Clip, checkpoint_dir) -> Timed:
        shapes = training_shapes(n_shapes, seed)
        return Timed(lambda: train_clip(clip, shapes.images, shapes.captions, steps=steps, batch_size=batch_size,
                                        seed=seed + 3, progress=True))

    return zoo.Recipe(config={"clip": cfg, "n_shapes": n_shapes, "steps": steps, "batch_size": batch_size,
                              "version": VERSION},
                      build=lambda: Clip(cfg), train=fit)
