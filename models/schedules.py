"""Learning-rate schedules, one rate per update: the training loop's own (linear warm-up, then
cosine to a floor) and torch's ``CosineAnnealingLR``, reproduced float for float."""

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the loop's config; imported for the annotation only (models.train imports this module)
    from models.train import TrainConfig


def learning_rate(step: int, cfg: "TrainConfig") -> float:
    """The learning rate for the update at 0-based ``step``: linear warm-up, then cosine.

    >>> from models.train import TrainConfig
    >>> cfg = TrainConfig(steps=100, lr=1.0, warmup_steps=10, min_lr_ratio=0.0)
    >>> learning_rate(0, cfg), learning_rate(9, cfg), learning_rate(99, cfg)
    (0.1, 1.0, 0.0)
    """
    if step < cfg.warmup_steps:
        # (step + 1) so that the first update is not wasted at lr 0.
        return cfg.lr * (step + 1) / cfg.warmup_steps
    decay_steps = cfg.steps - cfg.warmup_steps - 1
    progress = min(1.0, (step - cfg.warmup_steps) / decay_steps) if decay_steps > 0 else 0.0
    floor = cfg.lr * cfg.min_lr_ratio
    return floor + (cfg.lr - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def cosine_annealing(lr: float, steps: int) -> list[float]:
    """Every step's learning rate under ``torch.optim.lr_scheduler.CosineAnnealingLR(T_max=steps)``,
    stepped once per update: the same floats, down towards 0 at step ``steps`` (never reached).

    torch updates the rate from the last one, ``lr_t = (1 + cos(π t/T)) / (1 + cos(π (t-1)/T)) lr_{t-1}``,
    which rounds differently from its closed form, so this repeats that recursion.

    >>> import torch
    >>> opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    >>> sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=7)
    >>> torch_rates = []
    >>> for _ in range(7):
    ...     torch_rates.append(opt.param_groups[0]["lr"])
    ...     opt.step()
    ...     sched.step()
    >>> cosine_annealing(0.1, 7) == torch_rates
    True
    """
    rates = [lr]
    for t in range(1, steps):
        rates.append((1 + math.cos(math.pi * t / steps)) / (1 + math.cos(math.pi * (t - 1) / steps)) * rates[-1])
    return rates
