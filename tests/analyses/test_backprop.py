"""The backprop analysis: the chain-rule table against hand-derived numbers, and the quick report."""

import json
import math

import pytest
import torch

from analyses import backprop
from models.mlp import Network


def test_chain_rule_table_matches_a_hand_computed_chain():
    net = Network([1, 1, 1], activation="sigmoid", cost="mse", dtype=torch.float64)
    with torch.no_grad():
        net.layers[0].W.fill_(0.5), net.layers[0].b.fill_(-0.2)
        net.layers[1].W.fill_(-1.5), net.layers[1].b.fill_(0.3)
    x, y = torch.tensor([[0.8]], dtype=torch.float64), torch.tensor([[1.0]], dtype=torch.float64)
    table = backprop.chain_rule_table(net, x, y, step=1e-6).set_index("parameter")
    sig = lambda z: 1 / (1 + math.exp(-z))  # noqa: E731
    a1 = sig(0.5 * 0.8 - 0.2)
    a2 = sig(-1.5 * a1 + 0.3)
    dw2 = a1 * a2 * (1 - a2) * 2 * (a2 - 1)
    dw1 = 0.8 * a1 * (1 - a1) * (-1.5) * a2 * (1 - a2) * 2 * (a2 - 1)
    assert table.loc["w^(2)", "chain_rule"] == pytest.approx(dw2, rel=1e-12)
    assert table.loc["w^(1)", "chain_rule"] == pytest.approx(dw1, rel=1e-12)
    for column in ("backprop", "autograd"):
        assert table.loc["w^(1)", column] == pytest.approx(dw1, rel=1e-12)
    assert table.loc["w^(1)", "finite_difference"] == pytest.approx(dw1, rel=1e-6)
    with pytest.raises(ValueError, match="one-neuron|1, 1"):
        backprop.chain_rule_table(Network([2, 1], dtype=torch.float64), torch.rand(1, 2, dtype=torch.float64), y, 1e-6)


def test_relative_errors_ignores_exact_zeros_but_not_real_gaps():
    ref = [torch.tensor([1.0, 0.0, 1e-3], dtype=torch.float64)]
    assert backprop.relative_errors([ref[0].clone()], ref) == {"max_rel_err_normwise": 0.0, "max_rel_err_elementwise": 0.0}
    off = backprop.relative_errors([torch.tensor([1.0, 1e-20, 1.1e-3], dtype=torch.float64)], ref)
    assert off["max_rel_err_elementwise"] == pytest.approx(0.1)


def test_config_validation():
    with pytest.raises(ValueError, match="64-16-16-10"):
        backprop.Config(shapes=("64-x",))
    with pytest.raises(ValueError, match="fd_step"):
        backprop.Config(fd_step=0.5)


def test_quick_report_is_complete_and_meets_the_acceptance(tmp_path):
    report = backprop.run(backprop.Config.quick())
    folder = report.save(tmp_path)
    assert {p.stem for p in (folder / "figures").glob("*.png")} == {"relative_errors", "gradient_agreement"}
    assert (folder / "chain_rule.csv").is_file() and (folder / "full_network_check.csv").is_file()
    headline = json.loads((folder / "results.json").read_text())["headline"]
    assert headline["full_max_rel_err_autograd"] < 1e-8, "hand-written backprop disagrees with torch.autograd"
    assert headline["chain_max_rel_err_autograd"] < 1e-12
