"""Named trained subjects, trained on first use and cached on disk.

    >>> from models import zoo
    >>> [name for name in zoo.list() if name in zoo.SUBJECTS]   # the built-in ones (register adds more)
    ['digit_network', 'digits_ddpm', 'facts', 'shapes_clip', 'shapes_ddpm', 'smollm2', 'toy_model', 'toy_sae']
    >>> model = zoo.load("facts", quick=True)        # the first time, on stderr: Training zoo subject 'facts' ...
    >>> model.cfg.n_layers, model.training
    (2, False)

The first ``load`` trains the subject, with a message on stderr and a progress bar;
later ones read ``model.safetensors`` and ``config.json`` from the cache and check that
the saved config is the recipe's. The cache folder is ``$INTERP_CACHE`` (default
``~/.cache/interp/zoo``); each subject lives in ``<cache>/<name>/<quick|full>-seed<seed>-<hash>/``,
where the hash covers the recipe's config and the CPU kernels torch runs
(:func:`models.kernels.kernels`), so changing a recipe's config, or training with other
kernels, trains a new model instead of loading a stale one. An interrupted first use resumes from its last
checkpoint on the next ``load``. ``load`` returns the model in eval mode.

**Adding a subject.** Write a *recipe* in your own module: a function
``(quick: bool, seed: int) -> Recipe`` that is cheap (it trains nothing itself):

    >>> import torch
    >>> from models import zoo
    >>> from models.train import TrainConfig, train
    >>> def line(quick: bool, seed: int) -> zoo.Recipe:
    ...     cfg = TrainConfig(steps=50 if quick else 500, lr=0.05, seed=seed)
    ...     def batches(step):
    ...         x = torch.randn(32, 1, generator=torch.Generator().manual_seed(seed * 10**6 + step))
    ...         return x, 3 * x + 1
    ...     def loss_fn(model, batch):
    ...         return torch.nn.functional.mse_loss(model(batch[0]), batch[1])
    ...     return zoo.Recipe(
    ...         config={"train": cfg, "version": 1},  # everything the weights depend on
    ...         build=lambda: torch.nn.Linear(1, 1),  # the untrained model
    ...         train=lambda model, checkpoint_dir: train(
    ...             model, batches, loss_fn, cfg, checkpoint_dir=checkpoint_dir, desc="line"),
    ...     )

A recipe may also take keyword *options* (``(quick, seed, **options) -> Recipe``, say the
learning rate or the number of epochs an analysis's config sets): ``zoo.load("line",
seed=1, steps=80)`` passes them on. Everything they change belongs in ``config``, so each
setting is cached in its own folder. The digit networks (:mod:`models.digit_subject`) and
the diffusion models (:mod:`models.diffusion_subjects`) are subjects of this kind.

then add ``"line": "yourpackage.yourmodule:line"`` to ``SUBJECTS`` below (the lead merges
these), so ``zoo.load("line")`` imports your module only when the subject is asked for:
no import cycles, nothing runs at import time. For a notebook or a test,
``zoo.register("line")(line)`` (or ``@zoo.register("line")``) adds it for this process.

Put into ``config`` everything that changes the trained weights (model and train
configs, data settings) and a ``version`` to bump when code changes in a way the
config does not show: the cache key is a hash of it. ``build`` must return the same
architecture every time, since cached weights are loaded into it; ``load`` calls it
with torch's RNG seeded from ``seed``, so its initialisation is reproducible.
"""

import difflib
import hashlib
import importlib
import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from models import checkpoint as ckpt
from models.kernels import kernels

# name -> "module:recipe_function". Imported lazily by load(), so subjects' modules can
# import models.zoo without a cycle. Keep it sorted; for example:
#   "facts": "models.transformer.subjects:facts",
#   "digits": "models.mlp:digits",
SUBJECTS: dict[str, str] = {
    "digit_network": "models.digit_subject:digit_network",
    "digits_ddpm": "models.diffusion_subjects:digits_ddpm",
    "facts": "models.facts_subject:facts",
    "shapes_clip": "models.diffusion_subjects:shapes_clip",
    "shapes_ddpm": "models.diffusion_subjects:shapes_ddpm",
    "smollm2": "models.smollm2:smollm2",
    "toy_model": "models.toy_subjects:toy_model",
    "toy_sae": "analyses.superposition.subjects:toy_sae",
}

_REGISTERED: dict[str, Callable[..., "Recipe"]] = {}

# Every training this process did (or counted with ``record``): {"name", "quick", "seed",
# "seconds"}. A report's elapsed time includes the training its run triggered, and a second
# run on a warm cache finds nothing here (``interp run`` reads this).
TRAINED: list[dict[str, Any]] = []
# Every time this process read a subject from the cache: {"name", "quick", "seed"} (a subject a sweep
# trained is read from the cache after it: a report counts the reads its trainings do not explain).
CACHED: list[dict[str, Any]] = []


@dataclass(frozen=True)
class Recipe:
    """How to make one trained subject.

    ``config``: a dict or dataclass (dataclasses may be nested in a dict) of everything
    the trained weights depend on; it is hashed into the cache key and saved as
    ``config.json``. ``build()``: the untrained model. ``train(model, checkpoint_dir)``:
    trains the model in place, checkpointing into ``checkpoint_dir`` so an interrupted
    first use resumes; if it returns a ``TrainResult``, its history is cached too.
    ``per_preset=False``: the subject is the same whatever ``quick`` and ``seed`` (a converted
    pretrained model; a toy model, whose options and config say everything, its seed included),
    so one cached copy serves every preset and seed.
    """

    config: Any
    build: Callable[[], nn.Module]
    train: Callable[[nn.Module, Path], Any]
    per_preset: bool = True


def register(name: str) -> Callable:
    """Decorator adding a recipe ``(quick, seed) -> Recipe`` under ``name`` in this process."""

    def add(recipe: Callable[[bool, int], Recipe]) -> Callable[[bool, int], Recipe]:
        _REGISTERED[name] = recipe
        return recipe

    return add


def cache_dir() -> Path:
    """The zoo's cache folder: ``$INTERP_CACHE`` or ``~/.cache/interp/zoo``."""
    return Path(os.environ.get("INTERP_CACHE", "~/.cache/interp/zoo")).expanduser()


def recipe(name: str, *, quick: bool = False, seed: int = 0, **options: Any) -> Recipe:
    """The recipe of subject ``name`` (imports its module on first use), given ``options``."""
    if name not in _REGISTERED and name in SUBJECTS:
        module, _, function = SUBJECTS[name].partition(":")
        _REGISTERED[name] = getattr(importlib.import_module(module), function)
    if name not in _REGISTERED:
        known = list_subjects()
        close = difflib.get_close_matches(name, known, n=3)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ValueError(f"no zoo subject named {name!r}.{hint} Known subjects: {', '.join(known) or 'none'}.")
    try:
        made = _REGISTERED[name](quick, seed, **options)
    except TypeError as error:
        if options and "unexpected keyword argument" in str(error):
            raise TypeError(f"the recipe for {name!r} takes no option {error}".rstrip()) from None
        raise
    if not isinstance(made, Recipe):
        raise TypeError(f"the recipe for {name!r} returned {type(made).__name__}, not zoo.Recipe")
    return made


def subject_dir(name: str, *, quick: bool = False, seed: int = 0, **options: Any) -> Path:
    """Where subject ``name`` is (or will be) cached, keyed by a hash of its config."""
    made = recipe(name, quick=quick, seed=seed, **options)
    return _subject_dir(name, quick, seed, ckpt.config_dict(made.config), made.per_preset)


def is_cached(name: str, *, quick: bool = False, seed: int = 0, **options: Any) -> bool:
    """Whether subject ``name`` (with ``options``) is trained and cached, so that ``load`` trains nothing."""
    return (subject_dir(name, quick=quick, seed=seed, **options) / ckpt.CONFIG).is_file()


def history(name: str, *, quick: bool = False, seed: int = 0, **options: Any) -> Any:
    """What the cached subject's training recorded (the ``history`` of what its recipe's ``train``
    returned: per-step losses, timings), read from the cache; None when it recorded nothing.

    A second run that loads the subject from the cache reads the same history the first
    run's training wrote, so tables of training curves and times are the same too.
    """
    path = subject_dir(name, quick=quick, seed=seed, **options) / "history.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _subject_dir(name: str, quick: bool, seed: int, config: dict, per_preset: bool = True) -> Path:
    # the kernels too (models.kernels): weights trained with other kernels are other weights
    if not per_preset:
        key = json.dumps({"name": name, "config": config, "kernels": kernels()}, sort_keys=True)
        return cache_dir() / name / f"any-{hashlib.sha256(key.encode()).hexdigest()[:12]}"
    key = json.dumps({"name": name, "quick": quick, "seed": seed, "config": config, "kernels": kernels()},
                     sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return cache_dir() / name / f"{'quick' if quick else 'full'}-seed{seed}-{digest}"


def load(
    name: str,
    *,
    quick: bool = False,
    seed: int = 0,
    device: str | torch.device | None = None,
    retrain: bool = False,
    **options: Any,
) -> nn.Module:
    """The trained subject ``name`` in eval mode, training and caching it on first use.

    ``quick`` picks the recipe's small CI-sized variant; ``retrain`` trains afresh and
    replaces the cached copy. Training runs on ``device`` when given. ``options`` go to
    the recipe (see the module docstring).
    """
    model, training = _load_or_train(name, quick, seed, options, device, retrain)
    if training is not None:
        record(training)
    return model


def ensure(name: str, *, quick: bool = False, seed: int = 0, **options: Any) -> dict[str, Any] | None:
    """Train and cache subject ``name`` unless it is cached; returns the training's record, or None.

    For a sweep's task, which may run in another process: the record is not added to this
    process's ``TRAINED``; whoever gathers the tasks' results passes each to :func:`record`.
    """
    if is_cached(name, quick=quick, seed=seed, **options):
        return None
    return _load_or_train(name, quick, seed, options, None, False)[1]


def record(training: dict[str, Any]) -> None:
    """Count a training ``ensure`` returned (maybe from another process) as this process's (``TRAINED``)."""
    TRAINED.append(dict(training))


def _load_or_train(name: str, quick: bool, seed: int, options: dict, device, retrain: bool
                   ) -> tuple[nn.Module, dict[str, Any] | None]:
    """The model, and the record of its training when it had to be trained."""
    made = recipe(name, quick=quick, seed=seed, **options)
    config = ckpt.config_dict(made.config)
    folder = _subject_dir(name, quick, seed, config, made.per_preset)
    checkpoints = folder / "checkpoints"
    with torch.random.fork_rng(devices=[]):  # seeded init, caller's RNG left alone
        torch.manual_seed(seed)
        model = made.build()
    if device is not None:
        model = model.to(device)

    if not retrain and (folder / ckpt.CONFIG).is_file():  # written last: the model is complete
        try:
            ckpt.load_weights(model, folder, expected_config=config)
        except ValueError as e:
            raise ValueError(f"{e}\nThe cached zoo subject {name!r} is stale; load it with retrain=True.") from e
        CACHED.append({"name": name, "quick": quick, "seed": seed})
        return model.eval(), None

    if retrain:
        shutil.rmtree(checkpoints, ignore_errors=True)
    why = "retrain=True" if retrain else "resuming an interrupted first use" if checkpoints.is_dir() else "first use"
    tqdm.write(f"Training zoo subject '{name}' ({why}, cached at {folder}) ...", file=sys.stderr)
    started = time.perf_counter()
    result = made.train(model, checkpoints)
    seconds = time.perf_counter() - started

    _save(folder, model, config, getattr(result, "history", None), {"name": name, "quick": quick, "seed": seed}, seconds)
    shutil.rmtree(checkpoints, ignore_errors=True)
    tqdm.write(f"Zoo subject '{name}' trained in {seconds:.1f}s, cached at {folder}", file=sys.stderr)
    return model.eval(), {"name": name, "quick": quick, "seed": seed, "seconds": round(seconds, 1)}


def _save(folder: Path, model: nn.Module, config: dict, history: Any, who: dict, seconds: float) -> None:
    if history is not None:
        ckpt.write_json(history, folder / "history.json")
    ckpt.write_json({**who, "train_seconds": round(seconds, 3), "torch": torch.__version__}, folder / "zoo.json")
    ckpt.save_model(model, folder, config)  # config.json last: marks the folder complete


def store(name: str, state: dict[str, torch.Tensor], history: Any, seconds: float, *, quick: bool = False,
          seed: int = 0, **options: Any) -> None:
    """Cache weights trained elsewhere (a sweep's task on another machine of a Ray cluster, whose
    cache is its own) as subject ``name``, unless this machine's cache already holds it."""
    if is_cached(name, quick=quick, seed=seed, **options):
        return
    made = recipe(name, quick=quick, seed=seed, **options)
    config = ckpt.config_dict(made.config)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = made.build()
    model.load_state_dict(state)
    _save(_subject_dir(name, quick, seed, config, made.per_preset), model, config, history,
          {"name": name, "quick": quick, "seed": seed}, seconds)


def cached() -> "list[dict[str, Any]]":
    """Every complete cached subject: name, folder, preset, seed, size on disk and training seconds."""
    rows = []
    for config in sorted(cache_dir().glob(f"*/*/{ckpt.CONFIG}")):
        folder = config.parent
        info = json.loads((folder / "zoo.json").read_text()) if (folder / "zoo.json").is_file() else {}
        size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
        rows.append({"name": folder.parent.name, "folder": str(folder), "variant": folder.name.split("-")[0],
                     "seed": info.get("seed"), "megabytes": round(size / 1e6, 1),
                     "train_seconds": info.get("train_seconds")})
    return rows


def clear(name: str | None = None) -> list[Path]:
    """Delete the cached copies of subject ``name`` (every subject when ``None``); returns the folders removed."""
    root = cache_dir()
    folders = [root / name] if name is not None else [p for p in root.iterdir() if p.is_dir()] if root.is_dir() else []
    removed = [f for f in folders if f.is_dir()]
    for folder in removed:
        shutil.rmtree(folder)
    return removed


def list_subjects() -> list[str]:
    """Names of every known subject: ``SUBJECTS`` plus those registered in this process."""
    return sorted(set(SUBJECTS) | set(_REGISTERED))


# zoo.list() reads naturally at call sites. Defined last, and never called inside this
# module, so that shadowing the builtin here cannot bite.
list = list_subjects  # noqa: A001
