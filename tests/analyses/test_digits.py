"""The digits analysis: its measurements on constructed inputs, and the quick preset end to end."""

import json

import numpy as np
import pytest
import torch

from analyses import digits
from analyses.digits.training import train_variants
from analyses.digits.measures import best_template_match, bang_for_the_buck, confusion, edge_templates, fire_together
from models.mlp import Network


def test_a_clean_template_scores_one_and_noise_scores_less():
    templates, meta = edge_templates(8, 8)
    assert len(templates) == len(meta) == 12 * 64 * 3 * 2
    best, index = best_template_match(templates[[5, 700]], templates)
    np.testing.assert_allclose(best.numpy(), 1.0, atol=1e-12)
    noise = torch.randn(50, 64, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert float(best_template_match(noise, templates)[0].max()) < 0.9, "random vectors should not look like clean edges"
    # a sign flip is the same detector
    assert float(best_template_match(-templates[[3]], templates)[0]) == pytest.approx(1.0)


def test_confusion_counts_against_sklearn():
    from sklearn.metrics import confusion_matrix

    net = Network([6, 10], cost="cross_entropy", seed=0)
    x = torch.rand(50, 6, generator=torch.Generator().manual_seed(0))
    labels = torch.arange(50) % 10
    table = confusion(net, x, labels)
    expected = confusion_matrix(labels.numpy(), net(x).argmax(-1).numpy(), labels=range(10))
    np.testing.assert_array_equal(table.pivot(index="true", columns="predicted", values="count").to_numpy(), expected)


def test_bang_for_the_buck_on_a_known_gradient():
    # one output weight gets nearly all the gradient: with inputs (1, 0, 0) and target 1 only w_0 and b move
    net = Network([3, 1], activation="sigmoid", cost="mse", seed=0, dtype=torch.float64)
    x = torch.tensor([[1.0, 0.0, 0.0]], dtype=torch.float64)
    curve, summary = bang_for_the_buck(net, x, torch.ones(1, 1, dtype=torch.float64), eta=1e-4, top_fraction=0.25)
    assert summary["parameters"] == 4 and summary["top_k"] == 1
    assert summary["first_order_share"] == pytest.approx(0.5), "w_0 and b have equal gradients (input 1), half each"
    assert summary["actual_share"] == pytest.approx(0.5, rel=1e-3), "a tiny step should match the first-order share"
    assert curve["share_of_decrease"].iloc[-1] == pytest.approx(1.0)


def test_fire_together_output_layer_update_is_wanted_times_input():
    net = Network([4, 3], activation="sigmoid", cost="mse", seed=0, dtype=torch.float64)
    x = torch.rand(5, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    y = torch.eye(3, dtype=torch.float64)[[0, 1, 2, 0, 1]]
    stats, points = fire_together(net, x, y, eta=1.0)
    assert list(stats["receiving_end"]) == ["actual", "wanted"]
    # per-example update equals -eta * n * the per-example share of backprop's gradient
    nabla_b, nabla_w = net.backprop(x[:1], y[:1])
    _, deltas = net.errors(x, y)
    torch.testing.assert_close(-5 * deltas[0][0][:, None] * x[0][None, :], -nabla_w[0])


def test_config_validation():
    with pytest.raises(ValueError, match="top_fraction"):
        digits.Config(top_fraction=2.0)
    with pytest.raises(ValueError, match="n_seeds"):
        digits.Config(n_seeds=0)


def test_same_seed_same_measurements():
    from models.data.digits import load_digits_split

    data = load_digits_split()
    config = digits.Config(n_seeds=1, sigmoid_epochs=2, relu_epochs=2, n_noise=50)
    first, second = (train_variants(data, config.variants(), [0]) for _ in range(2))
    assert first[1].equals(second[1]), "training history changed between two runs with the same seed"
    net_a, net_b = first[0][(digits.RELU, 0)], second[0][(digits.RELU, 0)]
    x, y = data.x_train[:20], torch.nn.functional.one_hot(data.y_train[:20], 10).float()
    assert bang_for_the_buck(net_a, x, y, 0.1, 0.01)[1] == bang_for_the_buck(net_b, x, y, 0.1, 0.01)[1]
    assert fire_together(net_a, x, y, 1.0)[0].equals(fire_together(net_b, x, y, 1.0)[0])


def test_quick_report_is_complete(tmp_path):
    threads = torch.get_num_threads()
    folder = digits.run(digits.Config.quick()).save(tmp_path)
    assert torch.get_num_threads() == threads, "training on one core must not leave torch on one thread"
    names = {p.stem for p in (folder / "figures").glob("*.png")}
    assert names == {"training_curves", "confusion", "first_layer_weights", "edge_likeness", "noise_confidence",
                     "noise_examples", "bang_for_the_buck", "fire_together"}
    for name in ("report.md", "report.html", "results.json", "accuracy_summary.csv", "fire_together.csv"):
        assert (folder / name).is_file(), f"{name} missing from the report folder"
    results = json.loads((folder / "results.json").read_text())
    assert results["headline"]["relu_ce_test_accuracy_mean"] > 0.9, "the quick preset should still learn the digits"


def test_train_variants_is_the_same_serially_on_processes_and_on_ray(ray_cluster):
    """Networks, history and final accuracies equal bit for bit on every backend; the timing columns
    (cpu_seconds, wall_seconds) are measurements of the run and are left out of the comparison."""
    import pandas as pd

    from interp.parallel import sweep_settings
    from models.data.digits import load_digits_split

    data = load_digits_split()
    variants = digits.Config(sigmoid_epochs=3, relu_epochs=3).variants()
    timing = ["cpu_seconds", "wall_seconds"]
    trained = {}
    for backend in ("serial", "processes", "ray"):
        with sweep_settings(backend=backend, workers=2):
            trained[backend] = train_variants(data, variants, [0, 1])

    def same(a, b):
        (nets_a, history_a, runs_a), (nets_b, history_b, runs_b) = a, b
        pd.testing.assert_frame_equal(history_a, history_b, check_exact=True)
        pd.testing.assert_frame_equal(runs_a.drop(columns=timing), runs_b.drop(columns=timing), check_exact=True)
        assert list(nets_a) == list(nets_b)
        for key in nets_a:
            for p, q in zip(nets_a[key].parameters(), nets_b[key].parameters(), strict=True):
                assert torch.equal(p, q), key

    nets, history, runs = trained["serial"]
    assert list(nets) == [(v, s) for v in variants for s in (0, 1)] and len(runs) == 4
    assert (runs[timing] > 0).all().all(), "every run is timed (the only columns that may differ)"
    assert nets[(digits.RELU, 1)].activation == "relu" and nets[(digits.RELU, 1)].dtype == data.x_train.dtype
    x = data.x_test[:50]
    fresh = Network(nets[(digits.SIGMOID, 0)].sizes, activation="sigmoid", cost="mse", seed=0)
    assert not torch.equal(nets[(digits.SIGMOID, 0)](x), fresh(x)), "the rebuilt network carries the trained weights"
    same(trained["serial"], trained["processes"])
    same(trained["serial"], trained["ray"])
    slower = {label: dict(v, eta=v["eta"] / 2) for label, v in variants.items()}
    with pytest.raises(AssertionError):  # the comparison can fail: same seeds, another learning rate, other numbers
        same(trained["serial"], train_variants(data, slower, [0, 1]))
