"""The hand-written digit network against torch.autograd, torch.nn.functional and TransformerLens hooks."""

import pytest
import torch
import torch.nn.functional as F

from models.mlp import Network, train_digit_network

VARIANTS = [("sigmoid", "mse"), ("relu", "cross_entropy"), ("relu", "mse"), ("sigmoid", "cross_entropy")]
SHAPES = [[3, 2], [5, 4, 3], [8, 7, 6, 5], [64, 16, 16, 10], [4, 9, 1, 9, 3]]


def random_batch(net: Network, batch: int, seed: int):
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(batch, net.sizes[0], generator=generator, dtype=torch.float64)
    labels = torch.randint(0, net.sizes[-1], (batch,), generator=generator)
    return x, F.one_hot(labels, net.sizes[-1]).double()


def autograd_gradients(net: Network, x, y):
    net.requires_grad_(True)
    try:
        net.cost(x, y).backward()
        return [layer.b.grad.clone() for layer in net.layers], [layer.W.grad.clone() for layer in net.layers]
    finally:
        net.requires_grad_(False)
        for p in net.parameters():
            p.grad = None


def max_relative_error(ours, reference) -> float:
    # relative to the largest reference component of each tensor, so exact zeros (dead ReLUs) are fine
    return max(float((a - r).abs().max() / r.abs().max().clamp_min(1e-300)) for a, r in zip(ours, reference))


@pytest.mark.parametrize("activation,cost", VARIANTS)
@pytest.mark.parametrize("sizes", SHAPES, ids=lambda s: "-".join(map(str, s)))
def test_backprop_equals_autograd_in_float64(sizes, activation, cost):
    net = Network(sizes, activation=activation, cost=cost, seed=len(sizes), dtype=torch.float64)
    for layer in net.layers:  # nonzero biases, so bias gradients are tested away from the origin too
        layer.b.normal_(generator=torch.Generator().manual_seed(1))
    x, y = random_batch(net, batch=7, seed=2)
    nabla_b, nabla_w = net.backprop(x, y)
    ref_b, ref_w = autograd_gradients(net, x, y)
    assert [w.shape for w in nabla_w] == [w.shape for w in net.weights]
    assert max_relative_error(nabla_w, ref_w) < 1e-8, "weight gradients differ from autograd: check BP2/BP4"
    assert max_relative_error(nabla_b, ref_b) < 1e-8, "bias gradients differ from autograd: check BP1/BP3"
    # elementwise too, wherever the reference is not a (near) exact zero
    for ours, ref in zip(nabla_w + nabla_b, ref_w + ref_b):
        big = ref.abs() > 1e-12
        assert torch.all((ours - ref)[big].abs() <= 1e-8 * ref[big].abs()), "elementwise relative error above 1e-8"


@pytest.mark.parametrize("activation,cost", VARIANTS)
def test_forward_and_cost_match_torch_functional(activation, cost):
    net = Network([6, 5, 4], activation=activation, cost=cost, seed=3, dtype=torch.float64)
    x, y = random_batch(net, batch=9, seed=4)
    hidden = F.linear(x, net.weights[0], net.biases[0])
    hidden = torch.sigmoid(hidden) if activation == "sigmoid" else F.relu(hidden)
    logits = F.linear(hidden, net.weights[1], net.biases[1])
    if cost == "cross_entropy":
        torch.testing.assert_close(net.feedforward(x), F.softmax(logits, -1))
        torch.testing.assert_close(net.cost(x, y), F.cross_entropy(logits, y.argmax(-1)))
    else:
        torch.testing.assert_close(net.feedforward(x), torch.sigmoid(logits))
        # the series' cost: sum of squared differences per example, averaged over examples
        torch.testing.assert_close(net.cost(x, y), F.mse_loss(torch.sigmoid(logits), y) * y.shape[1])


def test_sgd_step_is_gradient_descent_with_autograd_gradients():
    net = Network([5, 4, 3], activation="relu", cost="cross_entropy", seed=0, dtype=torch.float64)
    x, y = random_batch(net, batch=6, seed=1)
    ref_b, ref_w = autograd_gradients(net, x, y)
    expected = [w - 0.3 * g for w, g in zip(net.weights, ref_w)] + [b - 0.3 * g for b, g in zip(net.biases, ref_b)]
    net.update_mini_batch(x, y, eta=0.3)
    for got, want in zip(net.weights + net.biases, expected):
        torch.testing.assert_close(got, want)


def test_same_seed_same_training_and_different_seed_differs():
    x = torch.rand(40, 6, generator=torch.Generator().manual_seed(0))
    labels = torch.arange(40) % 3
    runs = []
    for seed in (0, 0, 1):
        net = Network([6, 5, 3], seed=seed)
        history = net.SGD((x, labels), epochs=3, mini_batch_size=7, eta=1.0, test_data=(x, labels), seed=seed)
        runs.append((history, torch.cat([p.flatten() for p in net.parameters()])))
    assert runs[0][0] == runs[1][0] and torch.equal(runs[0][1], runs[1][1]), "same seed must give identical training"
    assert not torch.equal(runs[0][1], runs[2][1])
    assert [r["epoch"] for r in runs[0][0]] == [0, 1, 2, 3]
    assert runs[0][0][-1]["cost"] < runs[0][0][0]["cost"], "three epochs of SGD should lower the cost"


def test_hooks_cache_and_interventions():
    net = Network([6, 5, 4, 3], activation="relu", cost="cross_entropy", seed=0)
    x = torch.rand(2, 6)
    out, cache = net.run_with_cache(x)
    assert list(cache.keys()) == [f"layers.{i}.hook_{kind}" for i in range(3) for kind in ("pre", "post")]
    assert cache["layers.0.hook_pre"].shape == (2, 5) and cache["layers.2.hook_post"].shape == (2, 3)
    torch.testing.assert_close(cache["layers.2.hook_post"], out)
    torch.testing.assert_close(cache["layers.0.hook_post"], F.relu(x @ net.weights[0].T + net.biases[0]))
    assert torch.equal(net.run_with_hooks(x, fwd_hooks=[("layers.1.hook_post", lambda t, hook: t)]), out)
    zeroed = net.run_with_hooks(x, fwd_hooks=[("layers.1.hook_post", lambda t, hook: torch.zeros_like(t))])
    torch.testing.assert_close(zeroed, F.softmax(net.biases[2], -1).expand(2, 3))
    assert all(not hp.fwd_hooks for hp in net.hook_dict.values()), "run_with_hooks must leave no hook attached"


def test_dtype_and_bad_input_errors():
    assert Network([3, 2], dtype=torch.float64).feedforward(torch.rand(1, 3)).dtype == torch.float64
    with pytest.raises(ValueError, match="at least two"):
        Network([3])
    with pytest.raises(ValueError, match="activation"):
        Network([3, 2], activation="tanh")
    with pytest.raises(ValueError, match="cost"):
        Network([3, 2], cost="hinge")
    net = Network([3, 2])
    with pytest.raises(ValueError, match=r"\[batch, 3\]"):
        net.feedforward(torch.rand(4, 5))
    with pytest.raises(ValueError, match="one-hot"):
        net.backprop(torch.rand(4, 3), torch.tensor([0, 1, 1, 0]))


def test_train_digit_network_learns_the_digits():
    net, history = train_digit_network(seed=0, epochs=5)
    assert history[-1]["test_accuracy"] > 0.9, f"5 epochs of ReLU/CE should pass 90% test accuracy, got {history[-1]}"
    _, cache = net.run_with_cache(torch.rand(3, 64))
    assert cache["layers.1.hook_post"].shape == (3, 16)
