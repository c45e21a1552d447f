"""The digit networks of the analysis: every variant from every seed, as tidy tables.

    from analyses.digits import Config
    from analyses.digits.training import trained_variants

    networks, history, runs = trained_variants(Config.quick().variants(), seeds=[0, 1])
    runs[["variant", "seed", "test_accuracy", "cpu_seconds"]]

:func:`trained_variants` (what the analysis runs) takes them from the zoo (subject
``digit_network``, one per variant and seed), training the missing ones as one sweep, so a
second run trains nothing and reads the same history and training times the first one
recorded. :func:`train_variants` trains them afresh as a sweep, with nothing cached (the
test that serial, process and Ray sweeps agree bit for bit uses it).
"""

from typing import Any

import pandas as pd
import torch

from analyses.subjects import load, train_missing
from interp.parallel import map_tasks
from models.data.digits import DigitSplit
from models.digit_subject import Training, build_network, train_network
from models.mlp import Network

SETTINGS = ("activation", "cost", "hidden", "epochs", "mini_batch_size", "eta", "anneal")


def settings(variant: dict[str, Any]) -> dict[str, Any]:
    """A variant's training settings as plain numbers and strings (``anneal`` defaults to False)."""
    return {"activation": variant["activation"], "cost": variant["cost"], "hidden": [int(h) for h in variant["hidden"]],
            "epochs": int(variant["epochs"]), "mini_batch_size": int(variant["mini_batch_size"]),
            "eta": float(variant["eta"]), "anneal": bool(variant.get("anneal", False))}


def trained_variants(variants: dict[str, dict], seeds: list[int], mnist_dir: str | None = None
                     ) -> tuple[dict[tuple[str, int], Network], pd.DataFrame, pd.DataFrame]:
    """Every variant from every seed, from the zoo (the missing ones trained first, as one sweep).

    Returns what :func:`train_variants` does; the timing columns are those measured when
    each network was trained.
    """
    requests = {(label, seed): {"subject": "digit_network", "seed": seed, "mnist_dir": mnist_dir, **settings(v)}
                for label, v in variants.items() for seed in seeds}
    train_missing(list(requests.values()), name="digit networks")
    trained = {}
    for key, request in requests.items():
        net, history = load(request)
        trained[key] = (net, Training(history["epochs"], history["cpu_seconds"], history["wall_seconds"]))
    return tables(trained)


def train_variant(task: dict, data: DigitSplit) -> dict:
    """A task of :func:`train_variants`: one variant trained from one seed. Returns what rebuilds the network
    (its weights and biases, layer by layer), the per-epoch records of ``Network.SGD`` and the CPU
    (``time.process_time``, of the process that trained it) and wall seconds training took."""
    net = build_network(data, task, task["seed"])
    training = train_network(net, data, task, task["seed"])
    return {"weights": [W.detach().clone() for W in net.weights], "biases": [b.detach().clone() for b in net.biases],
            "history": training.epochs, "cpu_seconds": training.cpu_seconds, "wall_seconds": training.wall_seconds}


def rebuild_network(task: dict, result: dict, data: DigitSplit) -> Network:
    """The network a :func:`train_variant` task trained, from its result."""
    net = build_network(data, task, task["seed"])
    with torch.no_grad():
        for layer, W, b in zip(net.layers, result["weights"], result["biases"]):
            layer.W.copy_(W)
            layer.b.copy_(b)
    return net


def train_variants(data: DigitSplit, variants: dict[str, dict], seeds: list[int]
                   ) -> tuple[dict[tuple[str, int], Network], pd.DataFrame, pd.DataFrame]:
    """Train every variant from every seed, one task per (variant, seed) (:func:`interp.parallel.map_tasks`;
    the data go to each worker once); nothing is cached.

    ``variants`` maps a label to ``activation, cost, hidden, epochs, mini_batch_size, eta``
    (and optionally ``anneal``).
    Returns the networks, the per-epoch history (variant, seed, epoch, metric, value) and
    one row per run with final accuracies and the CPU and wall seconds training took (the only
    columns that differ between two runs, or between backends).
    """
    tasks = [{"variant": label, **settings(v), "data": data.name, "seed": seed}
             for label, v in variants.items() for seed in seeds]
    results = map_tasks(train_variant, tasks, shared=data, name="digit networks")
    return tables({(task["variant"], task["seed"]): (
        rebuild_network(task, result, data), Training(result["history"], result["cpu_seconds"], result["wall_seconds"]))
        for task, result in zip(tasks, results)})


def tables(trained: dict[tuple[str, int], tuple[Network, Training]]
           ) -> tuple[dict[tuple[str, int], Network], pd.DataFrame, pd.DataFrame]:
    """The networks, the per-epoch history (long format) and one row per run, from each (variant, seed)'s training."""
    networks, history, runs = {}, [], []
    for (label, seed), (net, training) in trained.items():
        networks[(label, seed)] = net
        records = training.epochs
        for record in records:
            for metric in ("cost", "train_accuracy", "test_accuracy"):
                history.append({"variant": label, "seed": seed, "epoch": record["epoch"], "metric": metric,
                                "value": record[metric]})
        runs.append({"variant": label, "seed": seed, "train_accuracy": records[-1]["train_accuracy"],
                     "test_accuracy": records[-1]["test_accuracy"], "cpu_seconds": training.cpu_seconds,
                     "wall_seconds": training.wall_seconds})
    return networks, pd.DataFrame(history), pd.DataFrame(runs)


def accuracy_summary(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean, standard deviation, min and max test accuracy and worst training time per variant."""
    grouped = runs.groupby("variant", sort=False)
    return pd.DataFrame({
        "seeds": grouped["seed"].count(),
        "test_accuracy_mean": grouped["test_accuracy"].mean(),
        "test_accuracy_std": grouped["test_accuracy"].std(ddof=1).fillna(0.0),
        "test_accuracy_min": grouped["test_accuracy"].min(),
        "test_accuracy_max": grouped["test_accuracy"].max(),
        "max_cpu_seconds": grouped["cpu_seconds"].max(),
    }).reset_index()
