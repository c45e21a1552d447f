"""The ``digit_network`` zoo subject: the digit network of :mod:`models.mlp`, trained by
hand-written backprop, with the per-epoch records and the time its training took.

Example::

    from models import zoo

    net = zoo.load("digit_network", seed=0)                    # ReLU/cross-entropy, 30 epochs
    sigmoid = zoo.load("digit_network", seed=1, activation="sigmoid", cost="mse")
    zoo.history("digit_network", seed=0)["epochs"][-1]          # epoch, cost, train/test accuracy

Options (keyword arguments of ``zoo.load``, all in the cached config): ``activation``,
``cost``, ``hidden``, ``epochs``, ``mini_batch_size``, ``eta``, ``anneal`` (a setting left
out takes :data:`models.mlp.DIGIT_PRESETS`' value for the activation and cost) and
``mnist_dir`` (None: scikit-learn's 8x8 digits). ``quick`` trains 5 epochs unless
``epochs`` is given. Training runs on one torch thread, so the weights are the same
whichever process trains them, and the CPU seconds it took mean the same every time.
"""

import functools
import time
from dataclasses import dataclass
from typing import Any

import torch

from models.data.digits import DigitSplit, load_digits_split, load_mnist, one_hot
from models.mlp import DIGIT_PRESETS, Network

VERSION = 1
QUICK_EPOCHS = 5


@functools.lru_cache(maxsize=4)
def digit_data(mnist_dir: str | None = None) -> DigitSplit:
    """The split a digit network trains on: MNIST from ``mnist_dir``, else scikit-learn's 8x8 digits."""
    return load_mnist(mnist_dir) if mnist_dir else load_digits_split()


@dataclass(frozen=True)
class Training:
    """What :func:`train_network` records: ``Network.SGD``'s per-epoch records and the CPU
    (``time.process_time``) and wall seconds it took; the zoo caches it as the history."""

    epochs: list[dict[str, float]]
    cpu_seconds: float
    wall_seconds: float

    @property
    def history(self) -> dict[str, Any]:
        return {"epochs": self.epochs, "cpu_seconds": self.cpu_seconds, "wall_seconds": self.wall_seconds}


def build_network(data: DigitSplit, settings: dict[str, Any], seed: int) -> Network:
    return Network([data.n_pixels, *settings["hidden"], 10], activation=settings["activation"], cost=settings["cost"],
                   seed=seed, dtype=data.x_train.dtype)


def train_network(net: Network, data: DigitSplit, settings: dict[str, Any], seed: int) -> Training:
    """Nielsen's SGD on ``data`` with ``settings`` (epochs, mini_batch_size, eta, anneal), timed."""
    y_train = one_hot(data.y_train, dtype=data.x_train.dtype)
    cpu, wall = time.process_time(), time.perf_counter()
    records = net.SGD((data.x_train, y_train), settings["epochs"], settings["mini_batch_size"], settings["eta"],
                      test_data=(data.x_test, data.y_test), anneal=settings["anneal"], seed=seed)
    return Training(records, time.process_time() - cpu, time.perf_counter() - wall)


def digit_settings(quick: bool = False, *, activation: str = "relu", cost: str = "cross_entropy",
                   hidden=(16, 16), epochs: int | None = None, mini_batch_size: int | None = None,
                   eta: float | None = None, anneal: bool | None = None) -> dict[str, Any]:
    """Every training setting, the preset's value where one is not given."""
    preset = DIGIT_PRESETS.get((activation, cost), DIGIT_PRESETS[("sigmoid", "mse")] if cost == "mse"
                               else DIGIT_PRESETS[("relu", "cross_entropy")])
    return {"activation": activation, "cost": cost, "hidden": [int(h) for h in hidden],
            "epochs": int(epochs if epochs is not None else QUICK_EPOCHS if quick else preset["epochs"]),
            "mini_batch_size": int(preset["mini_batch_size"] if mini_batch_size is None else mini_batch_size),
            "eta": float(preset["eta"] if eta is None else eta),
            "anneal": bool(preset["anneal"] if anneal is None else anneal)}


def digit_network(quick: bool, seed: int, mnist_dir: str | None = None, **settings: Any):
    """Zoo recipe for the ``digit_network`` subject (options: see the module docstring)."""
    from models import zoo

    chosen = digit_settings(quick, **settings)
    data_name = f"mnist:{mnist_dir}" if mnist_dir else "sklearn-digits-8x8"

    def fit(net: Network, checkpoint_dir) -> Training:  # seconds of training: no checkpoints
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # one thread: the same weights in any process, CPU time per core
        try:
            return train_network(net, digit_data(mnist_dir), chosen, seed)
        finally:
            torch.set_num_threads(threads)

    return zoo.Recipe(config={"network": chosen, "data": data_name, "seed": seed, "version": VERSION},
                      build=lambda: build_network(digit_data(mnist_dir), chosen, seed), train=fit)
