"""interp.probing: known answers, the control task at chance, selectivity against memorisation."""

import numpy as np
import pandas as pd
import pytest
import torch

from interp.activations import collect_activations
from interp.probing import control_labels, probe_accuracy, probe_hooks
from models.mlp import Network


def test_probe_on_random_labels_scores_at_chance():
    rng = np.random.default_rng(0)
    n, k = 600, 4
    X = rng.normal(size=(n, 20))
    labels = rng.integers(0, k, n)  # independent of X
    accuracy = probe_accuracy(X, labels, cv=5, seed=0).mean()
    standard_error = np.sqrt(0.25 * 0.75 / n)
    assert abs(accuracy - 1 / k) < 3 * standard_error, f"random labels scored {accuracy:.3f}, chance is {1 / k}"


def test_control_task_is_at_chance_when_every_example_is_its_own_type():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 3, 450)
    X = np.eye(3)[labels] + 0.25 * rng.normal(size=(450, 3))
    row = probe_hooks({"informative": X}, labels, seed=0).iloc[0]
    assert row["accuracy"] > 0.9, "a linearly decodable label should be probed well"
    assert abs(row["control_accuracy"] - row["chance"]) < 3 * np.sqrt(row["chance"] * (1 - row["chance"]) / 450)
    assert row["selectivity"] == pytest.approx(row["accuracy"] - row["control_accuracy"])


def test_control_task_exposes_memorisation_of_types():
    # X encodes only the example's type (a "word"), not its label: the real task is at chance,
    # and the control task (a random label per type) is memorised, so selectivity is negative
    rng = np.random.default_rng(2)
    types = rng.integers(0, 6, 600)
    labels = rng.integers(0, 2, 600)
    X = np.eye(6)[types] + 0.05 * rng.normal(size=(600, 6))
    row = probe_hooks({"lexical": X}, labels, types=types, seed=3).iloc[0]
    assert row["control_accuracy"] > 0.95
    assert row["selectivity"] < -0.3


def test_control_labels_keep_types_consistent_and_class_distribution():
    labels = np.array([0, 0, 1, 1, 2, 2] * 10)
    types = np.arange(60) % 7
    control = control_labels(labels, types, seed=0)
    for t in range(7):
        assert len(set(control[types == t])) == 1, "all examples of one type share a control label"
    assert sorted(np.bincount(control_labels(labels, None, seed=0))) == [20, 20, 20]


def test_probes_the_digit_network_through_collected_activations():
    net = Network([8, 12, 3], activation="relu", cost="cross_entropy", seed=0)
    x = torch.rand(300, 8, generator=torch.Generator().manual_seed(0))
    labels = (x[:, 0] > 0.5).long().numpy() + (x[:, 1] > 0.5).long().numpy()
    acts = collect_activations(net, x, ["layers.0.hook_pre"])
    df = probe_hooks(acts, labels, seed=0)
    assert list(df.columns[:6]) == ["hook", "accuracy", "accuracy_std", "control_accuracy", "control_std", "selectivity"]
    assert df.loc[0, "accuracy"] > 0.8, "a random linear map keeps this label linearly decodable"


def test_too_few_examples_per_class_is_explained():
    with pytest.raises(ValueError, match="lower cv"):
        probe_accuracy(np.zeros((6, 2)), [0, 0, 0, 0, 1, 1], cv=5)


@pytest.mark.parametrize("backend", ["processes", "ray"])
def test_a_grid_of_layers_gives_the_serial_table_on_processes_and_ray(backend, request):
    from interp.parallel import sweep_settings

    if backend == "ray":
        request.getfixturevalue("ray_cluster")
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 120)
    layers = {f"layer {k}": np.eye(3)[labels] * k / 2 + rng.normal(size=(120, 3)) for k in range(4)}
    serial = probe_hooks(layers, labels, cv=4, seed=1)
    with sweep_settings(backend=backend, workers=2):
        elsewhere = probe_hooks(layers, labels, cv=4, seed=1)
    pd.testing.assert_frame_equal(serial, elsewhere, check_exact=True)
    assert serial.accuracy.is_monotonic_increasing and serial.accuracy.iloc[-1] > 0.6  # the layers differ
