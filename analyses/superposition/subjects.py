"""The ``toy_sae`` zoo subject: a sparse autoencoder (:mod:`interp.sae`) trained on the hidden
activations of one ``toy_model`` (:mod:`models.toy_subjects`), both from the zoo's cache after
their first training. It lives here, above ``interp``, because the autoencoder is an instrument.

    >>> from models import zoo
    >>> toy = {"seed": 0, "n_features": 8, "n_hidden": 3, "feature_probability": 0.05, "steps": 30}
    >>> sae = zoo.load("toy_sae", seed=0, toy=toy, samples=500, sample_seed=1, d_sae=16,
    ...                penalty="topk", k=1, steps=20)
    >>> tuple(sae.W_dec.shape), sae.k
    ((16, 3), 1)

Options: ``toy`` (the toy model's zoo options, its ``seed`` among them), ``samples`` inputs
drawn with ``sample_seed`` through it (``models.toy.sample_hidden``; the first instance's
``hook_hidden`` is what the autoencoder reads), and :func:`interp.sae.train_sae`'s
``d_sae``, ``penalty``, ``k``, ``steps``, ``batch_size``, ``lr``, ``l1_coefficient``; the
zoo's ``seed`` is its ``seed``. ``k`` is used by ``penalty="topk"`` only.
"""

from typing import Any

from interp.sae import SparseAutoencoder, train_sae
from models import zoo
from models.toy import sample_hidden

VERSION = 1


def toy_activations(toy: dict[str, Any], samples: int, sample_seed: int):
    """``samples`` hidden activations [samples hidden] of the first instance of the zoo's toy model ``toy``."""
    model = zoo.load("toy_model", **toy)
    return sample_hidden(model, samples, seed=sample_seed)[1][:, 0]


def toy_sae(quick: bool, seed: int, *, toy: dict[str, Any] | None = None, samples: int | None = None,
            sample_seed: int = 0, d_sae: int | None = None, penalty: str = "l1", k: int = 4, steps: int = 3000, batch_size: int = 512, lr: float = 3e-3,
            l1_coefficient: float = 3e-3) -> zoo.Recipe:
    """The recipe: ``train_sae`` with ``seed`` on ``toy_activations(toy, samples, sample_seed)``."""
    if toy is None or samples is None or d_sae is None:
        raise ValueError("the zoo subject 'toy_sae' is made from its options; give toy (a toy_model's options), "
                         "samples and d_sae (see analyses.superposition.subjects)")
    settings = {"penalty": str(penalty), "k": int(k), "steps": int(steps), "batch_size": int(batch_size),
                "lr": float(lr), "l1_coefficient": float(l1_coefficient)}
    data = {"toy": dict(toy), "samples": int(samples), "sample_seed": int(sample_seed)}

    def train(sae, checkpoint_dir) -> None:  # train_sae keeps no checkpoints: an interrupted one starts over
        trained = train_sae(toy_activations(**data), int(d_sae), seed=seed, **settings)
        sae.load_state_dict(trained.state_dict())

    def build() -> SparseAutoencoder:
        return SparseAutoencoder(int(toy["n_hidden"]), int(d_sae), k=settings["k"] if penalty == "topk" else None)

    return zoo.Recipe(config={**data, "d_sae": int(d_sae), "sae": settings, "seed": seed, "version": VERSION},
                      build=build, train=train, per_preset=False)
