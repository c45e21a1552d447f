"""The ``toy_model`` zoo subject: a batch of toy models of superposition (:mod:`models.toy`),
trained by :func:`models.toy.train_toy` on first use and read from the zoo's cache after.

    >>> from models import zoo
    >>> model = zoo.load("toy_model", seed=0, n_features=5, n_hidden=2, n_instances=2,
    ...                  feature_probability=[[1.0], [0.1]], steps=20, batch_size=64)
    >>> model.W.shape, model.feature_probability.shape
    (torch.Size([2, 2, 5]), torch.Size([2, 5]))

Options are :func:`~models.toy.train_toy`'s arguments (``n_features``, ``n_hidden``,
``feature_probability``, ``importance``, ``n_instances``, ``steps``, ``relu``, ``batch_size``,
``lr``); the zoo's ``seed`` is its ``seed``. Give probabilities and importances as numbers or
nested lists (they are part of the cached config, which is JSON). ``quick`` changes nothing:
the options say everything, so one cached copy serves both presets. The weights equal
``train_toy(**options, seed=seed)``'s bit for bit (tested). Training draws its batches from
one stateful sampler, so it keeps no checkpoints: an interrupted training starts over.
"""

from typing import Any

from models import zoo
from models.toy import build_toy, train_toy

VERSION = 1
SHAPE = ("n_features", "n_hidden", "feature_probability", "importance", "n_instances", "relu")


def plain(value: Any) -> Any:
    """``value`` as JSON numbers and lists (a tensor or array becomes nested lists of floats)."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value if value is None or isinstance(value, bool) else float(value)


def toy_settings(*, n_features: int, n_hidden: int, feature_probability: Any, importance: Any = None,
                 n_instances: int = 1, steps: int = 5_000, relu: bool = True, batch_size: int = 1024,
                 lr: float = 1e-3) -> dict[str, Any]:
    """Every argument of ``train_toy`` but the seed, in the JSON form the cache key hashes."""
    return {"n_features": int(n_features), "n_hidden": int(n_hidden),
            "feature_probability": plain(feature_probability), "importance": plain(importance),
            "n_instances": int(n_instances), "steps": int(steps), "relu": bool(relu),
            "batch_size": int(batch_size), "lr": float(lr)}


def toy_model(quick: bool, seed: int, **options: Any) -> zoo.Recipe:
    """The recipe: ``build_toy`` of the options' shape, trained by ``train_toy`` with ``seed``."""
    missing = [name for name in ("n_features", "n_hidden", "feature_probability") if name not in options]
    if missing:
        raise ValueError(f"the zoo subject 'toy_model' is made from its options; give {', '.join(missing)} "
                         "(for example zoo.load('toy_model', n_features=5, n_hidden=2, feature_probability=0.1))")
    settings = toy_settings(**options)

    def train(model, checkpoint_dir) -> None:
        model.load_state_dict(train_toy(**settings, seed=seed).state_dict())

    return zoo.Recipe(config={"toy": settings, "seed": seed, "version": VERSION},
                      build=lambda: build_toy(**{k: settings[k] for k in SHAPE}), train=train, per_preset=False)
