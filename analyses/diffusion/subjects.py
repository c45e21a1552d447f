"""The trained subjects of the diffusion analysis: a class-conditional DDPM on the 8x8
digits, a caption-conditional DDPM on the 16x16 shapes (plus a snapshot of it after a few
steps), and a CLIP on the shapes, with the wall-clock and CPU time each took to train: zoo
subjects (:mod:`models.diffusion_subjects`), so only the first run trains them.

Example::

    from analyses.diffusion import Config
    from analyses.diffusion.subjects import train_subjects

    subjects = train_subjects(Config.quick())    # trains on first use, then reads the zoo's cache
    subjects.timing          # subject, steps, parameters, wall_seconds, cpu_seconds
"""

from dataclasses import dataclass

import pandas as pd
import torch

from models import zoo
from models.clip import Clip
from models.data.digits import digit_images
from models.data.shapes import ShapesData
from models.diffusion import DDPM
from models.diffusion_subjects import caption_condition, digit_condition, to_model_range, training_shapes

__all__ = ["Subjects", "caption_condition", "digit_condition", "to_model_range", "train_subjects"]


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
    load_average: float  # the machine's one-minute load average when the last training ended


def subject_options(config) -> dict[str, dict]:
    """What the diffusion analysis asks the zoo for: subject name -> recipe options."""
    sizes = {"d_model": config.d_model, "n_layers": config.n_layers, "n_steps": config.n_steps,
             "p_uncond": config.p_uncond, "batch_size": config.batch_size}
    return {"digits_ddpm": {**sizes, "steps": config.digits_train_steps},
            "shapes_ddpm": {**sizes, "n_shapes": config.n_shapes, "steps": config.shapes_train_steps,
                            "early_steps": config.early_steps},
            "shapes_clip": {"n_shapes": config.n_shapes, "steps": config.clip_train_steps,
                            "batch_size": config.batch_size}}


def train_subjects(config) -> Subjects:
    """The data and every subject the report needs, seeded by ``config.seed``: from the zoo's
    cache, trained (and cached) the first time, with the losses and timings of that training."""
    seed, wanted = config.seed, subject_options(config)
    models = {name: zoo.load(name, seed=seed, **options) for name, options in wanted.items()}
    histories = {name: zoo.history(name, seed=seed, **options) for name, options in wanted.items()}
    digits, labels = digit_images()
    shapes_pair = models["shapes_ddpm"]
    names = {"digits_ddpm": "digits DDPM", "shapes_ddpm": "shapes DDPM", "shapes_clip": "shapes CLIP"}
    steps = {"digits_ddpm": config.digits_train_steps, "shapes_ddpm": config.shapes_train_steps,
             "shapes_clip": config.clip_train_steps}
    counted = {"digits_ddpm": models["digits_ddpm"], "shapes_ddpm": shapes_pair["final"], "shapes_clip": models["shapes_clip"]}
    timing = pd.DataFrame([{"subject": names[n], "steps": steps[n], "parameters": sum(p.numel() for p in m.parameters()),
                            "wall_seconds": histories[n]["wall_seconds"], "cpu_seconds": histories[n]["cpu_seconds"]}
                           for n, m in counted.items()])
    losses = pd.concat([pd.DataFrame(histories[n]["losses"])[["step", "loss"]].assign(subject=names[n]) for n in names],
                       ignore_index=True)
    return Subjects(digits, labels, training_shapes(config.n_shapes, seed), models["digits_ddpm"], shapes_pair["final"],
                    shapes_pair["early"], models["shapes_clip"], losses, timing, histories["shapes_clip"]["load_average"])
