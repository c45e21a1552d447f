"""One training loop for every subject: AdamW, warm-up and cosine decay, clipping,
progress, periodic evaluation and resumable safetensors checkpoints.

    >>> import torch
    >>> from models.train import TrainConfig, train
    >>> model = torch.nn.Linear(4, 1)
    >>> def batches(step):  # the data is a function of (seed, step): resuming is exact
    ...     g = torch.Generator().manual_seed(step)
    ...     x = torch.randn(32, 4, generator=g)
    ...     return x, x.sum(-1, keepdim=True)
    >>> def loss_fn(model, batch):
    ...     x, y = batch
    ...     return torch.nn.functional.mse_loss(model(x), y)
    >>> result = train(model, batches, loss_fn, TrainConfig(steps=200, lr=0.05), progress=False)
    >>> result.history[-1]["loss"] < 0.01
    True

**Data.** ``batches`` is best a callable ``step -> batch`` that derives everything from
the step (and a seed it closes over), as above: then the batch at step ``n`` is the same
whether or not the run was interrupted before ``n``. Any re-iterable deterministic
sampler also works (a list, a seeded ``DataLoader``): on resume it is iterated afresh
and the batches already used are skipped. Tensors in the batch (also inside tuples,
lists and dicts) are moved to the model's device.

**Randomness.** The loop seeds torch's global RNG with ``cfg.seed`` at the start of a
fresh run and saves its state in every checkpoint, so dropout or noise drawn with
``torch.rand*`` inside the model or ``loss_fn`` replays exactly on resume. Randomness
from ``random`` or numpy is not saved: draw it inside ``batches`` from the step. The loop
runs with ``torch.use_deterministic_algorithms(True)`` (the caller's setting comes back
afterwards), so two runs with the same seed and thread count end with the same weights.

**Threads.** The thread count is part of the recipe: the loop runs on ``cfg.threads`` torch
intra-op threads (default 1; the caller's count comes back afterwards). torch splits a sum or a
matrix product between its threads and adds the partial results in an order that depends on how
many there are, so the same seed trained on 1 and on 2 threads ends with different weights
(facts' quick subject: 2e-5 apart after 60 steps, and training amplifies it). ``interp run``
chooses the threads from the free CPUs, which vary with the machine's load, so without this a
rerun could train on another count than the committed run (issue 18). The subjects here are
small: on a loaded 2-core machine one thread was faster than two (diffusion's quick preset 22 s
against 328 s); ``benchmarks/reproducibility.py`` times the runs. ``threads=None`` leaves the
caller's count (faster for a large model on an idle machine, reproducible only at that count). What no thread count
fixes: kernels chosen per CPU sum in other orders too (ATen's AVX2 against its AVX-512 kernels:
7.7e-3 apart after the same 60 steps on one thread; MKL picks its code path per CPU maker and
kind). The environment variables ``ATEN_CPU_CAPABILITY`` and ``MKL_CBWR``, set before torch is
imported, pin those choices (not done here).

**Checkpoints.** With ``checkpoint_dir``, every ``cfg.checkpoint_every`` steps and at the
end the loop writes ``checkpoint_dir/step-00000010/`` holding ``model.safetensors`` and
``config.json`` (a folder ``models.checkpoint.load_model`` can open), ``optimizer.safetensors``,
``rng.safetensors`` and ``trainer.json`` (step, train config, history). The folder is
written under a temporary name and renamed into place, so an interrupt (Ctrl-C included)
never leaves a half-written checkpoint: the last good one stays. ``train`` called again
with the same arguments resumes from the latest one and ends with bit-identical weights
to a run that was never interrupted.

**Other recipes.** The toy models (:func:`models.toy.train_toy`) and the sparse autoencoders
(:func:`interp.sae.train_sae`) run through this loop too, with three keyword arguments of
``train``: ``optimizer`` (the toy models' fused AdamW over both stacked parameters),
``learning_rates`` (:func:`models.schedules.cosine_annealing`: torch's ``CosineAnnealingLR``, the rates they
were trained with) and ``hand_gradients`` (``loss_fn`` writes each ``.grad`` itself: the toy
models' backward pass is written out: no autograd graph per step). They are
arguments, not ``TrainConfig`` fields, so the configs of every other subject, and with them
the zoo's cache keys and the saved checkpoints, stay as they were; a resumed run must pass
the same ones (they are not saved).
"""

import math
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from models.checkpoint.runs import (  # noqa: F401  (latest_checkpoint, save_checkpoint: public here too)
    latest_checkpoint, remove_temporaries, restore, save_checkpoint, step_name,
)
from models.schedules import learning_rate


@dataclass(frozen=True)
class TrainConfig:
    """Everything about an optimisation run that changes the weights it produces.

    The learning rate warms up linearly over ``warmup_steps`` to ``lr`` and then follows
    a cosine down to ``lr * min_lr_ratio`` at the last step (``min_lr_ratio=0``: down
    to zero). Weight decay applies to matrices (``p.ndim >= 2``), not to biases or
    layer-norm gains, as in GPT-2 and nanoGPT. ``batch_size`` is not used by the loop
    (``batches`` makes the batches); it lives here so that a subject's recipe and its
    checkpoints record it.
    """

    steps: int
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    warmup_steps: int = 0
    min_lr_ratio: float = 0.1
    grad_clip: float | None = 1.0
    eval_every: int | None = None
    checkpoint_every: int | None = None
    keep_last: int = 2
    seed: int = 0
    threads: int | None = 1

    def __post_init__(self):
        # JSON gives lists back; keep the field hashable and equal to the original.
        object.__setattr__(self, "betas", tuple(self.betas))
        problems = []

        def need(ok: bool, message: str) -> None:
            if not ok:
                problems.append(message)

        def is_int(x: Any) -> bool:
            return isinstance(x, int) and not isinstance(x, bool)

        need(is_int(self.steps) and self.steps >= 1, f"steps must be an int >= 1, got {self.steps!r}")
        need(is_int(self.batch_size) and self.batch_size >= 1, f"batch_size must be an int >= 1, got {self.batch_size!r}")
        need(self.lr > 0, f"lr must be > 0, got {self.lr!r}")
        need(self.weight_decay >= 0, f"weight_decay must be >= 0, got {self.weight_decay!r}")
        need(
            len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas),
            f"betas must be two numbers in [0, 1), got {self.betas!r}",
        )
        need(self.eps > 0, f"eps must be > 0, got {self.eps!r}")
        need(
            is_int(self.warmup_steps) and 0 <= self.warmup_steps <= self.steps,
            f"warmup_steps must be an int in [0, steps={self.steps}], got {self.warmup_steps!r}",
        )
        need(0 <= self.min_lr_ratio <= 1, f"min_lr_ratio must be in [0, 1], got {self.min_lr_ratio!r}")
        need(
            self.grad_clip is None or self.grad_clip > 0,
            f"grad_clip must be > 0 or None (no clipping), got {self.grad_clip!r}",
        )
        for name in ("eval_every", "checkpoint_every"):
            value = getattr(self, name)
            need(
                value is None or (is_int(value) and value >= 1),
                f"{name} must be an int >= 1 or None (never), got {value!r}",
            )
        need(is_int(self.keep_last) and self.keep_last >= 1, f"keep_last must be an int >= 1, got {self.keep_last!r}")
        need(is_int(self.seed), f"seed must be an int, got {self.seed!r}")
        need(self.threads is None or (is_int(self.threads) and self.threads >= 1),
             f"threads must be an int >= 1 or None (the caller's count), got {self.threads!r}")
        if problems:
            raise ValueError("invalid TrainConfig: " + "; ".join(problems))


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only (biases and gains are not shrunk)."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError(f"{type(model).__name__} has no trainable parameters")
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    groups = [
        {"params": group, "weight_decay": wd}
        for group, wd in ((decay, cfg.weight_decay), (no_decay, 0.0))
        if group
    ]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps)


@dataclass
class TrainResult:
    """What ``train`` returns. ``history`` has one dict per step (``step`` counts
    updates done, ``loss`` is that step's training loss, ``lr``, ``grad_norm``) plus the
    ``eval_fn`` metrics on evaluation steps: ``pandas.DataFrame(result.history)``."""

    model: nn.Module
    history: list[dict[str, float]] = field(default_factory=list)
    step: int = 0
    resumed_from: int | None = None
    checkpoint: Path | None = None  # the final checkpoint folder, when one was written


def train(
    model: nn.Module,
    batches: Callable[[int], Any] | Iterable[Any],
    loss_fn: Callable[[nn.Module, Any], torch.Tensor],
    cfg: TrainConfig,
    *,
    eval_fn: Callable[[nn.Module], dict[str, float]] | None = None,
    checkpoint_dir: str | Path | None = None,
    resume: bool = True,
    progress: bool = True,
    model_config: Any = None,
    desc: str = "train",
    optimizer: torch.optim.Optimizer | None = None,
    learning_rates: Sequence[float] | None = None,
    hand_gradients: bool = False,
) -> TrainResult:
    """Train ``model`` in place for ``cfg.steps`` updates and return a ``TrainResult``.

    ``loss_fn(model, batch)`` returns the scalar loss. ``eval_fn(model)`` returns a dict
    of metrics; it runs in eval mode under ``torch.no_grad`` every ``cfg.eval_every``
    steps and after the last. ``model_config`` (a dataclass or dict) is saved with each
    checkpoint and must match on resume. With ``resume=False`` an existing checkpoint
    in ``checkpoint_dir`` is ignored (and replaced as the new run saves its own).

    ``optimizer`` replaces ``make_optimizer(model, cfg)`` (the loop sets each group's ``lr``
    every step); ``learning_rates`` (one per step) replaces ``learning_rate(step, cfg)``. With
    ``hand_gradients``, ``loss_fn`` sets every trainable parameter's ``.grad`` itself and
    returns the loss (no graph needed): the loop calls neither ``zero_grad`` nor ``backward``.
    """
    optimizer = make_optimizer(model, cfg) if optimizer is None else optimizer
    if learning_rates is None:
        learning_rates = [learning_rate(step, cfg) for step in range(cfg.steps)]
    if len(learning_rates) != cfg.steps:
        raise ValueError(f"learning_rates has {len(learning_rates)} rates; give one per step (steps={cfg.steps})")
    device = next(model.parameters()).device
    history: list[dict[str, float]] = []
    start, resumed_from, last_saved = 0, None, None
    root = Path(checkpoint_dir) if checkpoint_dir is not None else None
    if root is not None:
        remove_temporaries(root)
        latest = latest_checkpoint(root) if resume else None
        if latest is not None:
            start, history = restore(latest, model, optimizer, cfg, model_config)
            resumed_from = last_saved = start
            tqdm.write(f"Resuming from {latest} (step {start} of {cfg.steps})", file=sys.stderr)
    if start == 0:
        torch.manual_seed(cfg.seed)
    next_batch = _batch_source(batches, start)

    model.train()
    bar = tqdm(total=cfg.steps, initial=start, desc=desc, disable=not progress, file=sys.stderr)
    step = start
    deterministic = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    # same seed, same weights: on several threads some backward kernels (the index backward
    # of an embedding lookup) accumulate in an order that changes from run to run
    torch.use_deterministic_algorithms(True)
    threads = torch.get_num_threads()
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)  # sums split between threads add up in another order
    try:
        for step in range(start, cfg.steps):
            lr = learning_rates[step]
            for group in optimizer.param_groups:
                group["lr"] = lr
            batch = _to_device(next_batch(step), device)
            loss = loss_fn(model, batch)
            value = loss.item()  # one read of the loss (torch.isfinite costs as much as a small model's step)
            if not math.isfinite(value):
                raise FloatingPointError(
                    f"loss is {value} at step {step}; lower lr (now {lr:.3g}) or "
                    "set grad_clip. The last good checkpoint is left as it was."
                )
            if not hand_gradients:
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
            row = {"step": step + 1, "loss": value, "lr": lr}
            if cfg.grad_clip is not None:
                params = [p for g in optimizer.param_groups for p in g["params"]]
                row["grad_norm"] = nn.utils.clip_grad_norm_(params, cfg.grad_clip).item()
            optimizer.step()

            done = step + 1
            if eval_fn is not None and (_due(done, cfg.eval_every) or done == cfg.steps):
                row.update(evaluate(model, eval_fn))
            history.append(row)
            bar.update(1)
            if progress:  # the formatting costs more than a small model's step
                bar.set_postfix(loss=f"{row['loss']:.4f}", lr=f"{lr:.2e}", refresh=False)
            if root is not None and (_due(done, cfg.checkpoint_every) or done == cfg.steps):
                last_saved = done
                save_checkpoint(root, done, model, optimizer, cfg, history, model_config)
    except KeyboardInterrupt:
        where = (
            f"the last checkpoint (step {last_saved}) is in {root}; call train again to resume"
            if last_saved is not None
            else "no checkpoint was written"
        )
        tqdm.write(f"Interrupted at step {step}; {where}.", file=sys.stderr)
        raise
    finally:
        torch.use_deterministic_algorithms(deterministic[0], warn_only=deterministic[1])
        torch.set_num_threads(threads)
        bar.close()
    final = root / step_name(cfg.steps) if root is not None else None
    return TrainResult(model, history, cfg.steps, resumed_from, final)


def evaluate(model: nn.Module, eval_fn: Callable[[nn.Module], dict[str, float]]) -> dict[str, float]:
    """Run ``eval_fn`` in eval mode without gradients, then put the model back."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            metrics = eval_fn(model)
    finally:
        model.train(was_training)
    return {k: float(v) for k, v in metrics.items()}


# ---------------------------------------------------------------------------- data


def _due(done: int, every: int | None) -> bool:
    return every is not None and done % every == 0


def _batch_source(batches: Callable[[int], Any] | Iterable[Any], start: int) -> Callable[[int], Any]:
    """Turn ``batches`` into ``step -> batch``, skipping what a resumed run already used."""
    if callable(batches):
        return batches
    iterator = iter(batches)

    def next_batch(step: int) -> Any:
        try:
            return next(iterator)
        except StopIteration:
            raise ValueError(
                f"batches ran out at step {step}; give a callable step -> batch or an "
                "iterable with at least cfg.steps batches"
            ) from None

    for step in range(start):
        next_batch(step)
    return next_batch


def _to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    if isinstance(batch, dict):
        return {k: _to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # a namedtuple
        return type(batch)(*(_to_device(v, device) for v in batch))
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to_device(v, device) for v in batch)
    return batch
