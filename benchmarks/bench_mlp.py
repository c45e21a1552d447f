"""Training throughput of the hand-written backprop against torch.autograd, same network, same run.

    OMP_NUM_THREADS=1 python benchmarks/bench_mlp.py [--epochs 20] [--repeats 3]

Three ways to train the 64-16-16-10 digit network by SGD on the 8x8 digits, from the
same initial weights over the same mini-batches:

- ``hand``: ``Network.SGD`` (backprop written as matrix equations, no autograd);
- ``autograd``: the same ``Network`` with ``requires_grad_(True)``, ``cost().backward()``
  and the same update, so only the gradient computation differs;
- ``torch.nn``: the idiomatic peer, ``nn.Sequential`` of ``nn.Linear`` with
  ``torch.optim.SGD`` and the same cost.

Prints examples per second (best of ``repeats``, process CPU time, one thread) and the
ratio hand / peer; a ratio of at least 1 means the hand-written backprop is as fast.
"""

import argparse
import time

import torch
from torch import nn

from models.data.digits import load_digits_split, one_hot
from models.mlp import DIGIT_PRESETS, Network

SIZES = [64, 16, 16, 10]


def batches(n: int, epochs: int, mini_batch_size: int, seed: int) -> list[torch.Tensor]:
    # the exact order Network.SGD draws, so every method sees the same mini-batches
    generator = torch.Generator().manual_seed(seed)
    order = []
    for _ in range(epochs):
        perm = torch.randperm(n, generator=generator)
        order += [perm[s:s + mini_batch_size] for s in range(0, n, mini_batch_size)]
    return order


def train_hand(net: Network, x, y, order, eta: float) -> None:
    for batch in order:
        net.update_mini_batch(x[batch], y[batch], eta)


def train_autograd(net: Network, x, y, order, eta: float) -> None:
    net.requires_grad_(True)
    params = list(net.parameters())
    for batch in order:
        for p in params:
            p.grad = None
        net.cost(x[batch], y[batch]).backward()
        with torch.no_grad():
            for p in params:
                p.sub_(p.grad, alpha=eta)
    net.requires_grad_(False)


def torch_nn_peer(net: Network, activation: str, cost: str) -> nn.Sequential:
    modules: list[nn.Module] = []
    for i, layer in enumerate(net.layers):
        linear = nn.Linear(layer.W.shape[1], layer.W.shape[0], dtype=layer.W.dtype)
        with torch.no_grad():
            linear.weight.copy_(layer.W)
            linear.bias.copy_(layer.b)
        modules.append(linear)
        if i < len(net.layers) - 1:
            modules.append(nn.Sigmoid() if activation == "sigmoid" else nn.ReLU())
        elif cost == "mse":
            modules.append(nn.Sigmoid())
    return nn.Sequential(*modules)


def train_torch_nn(model: nn.Sequential, cost: str, x, y, order, eta: float) -> None:
    optimizer = torch.optim.SGD(model.parameters(), lr=eta)
    labels = y.argmax(-1)
    for batch in order:
        optimizer.zero_grad(set_to_none=True)
        out = model(x[batch])
        if cost == "mse":
            loss = nn.functional.mse_loss(out, y[batch], reduction="sum") / len(batch)
        else:
            loss = nn.functional.cross_entropy(out, labels[batch])
        loss.backward()
        optimizer.step()


def measure(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = load_digits_split()
    x, y = data.x_train, one_hot(data.y_train)
    print(f"training throughput, {SIZES}, {len(x)} examples x {args.epochs} epochs, one thread, best of {args.repeats}")
    print(f"{'variant':<24}{'hand ex/s':>12}{'autograd ex/s':>15}{'torch.nn ex/s':>15}{'hand/autograd':>15}{'hand/torch.nn':>15}")
    for (activation, cost), preset in DIGIT_PRESETS.items():
        mb, eta = int(preset["mini_batch_size"]), float(preset["eta"])
        order = batches(len(x), args.epochs, mb, seed=0)
        n_examples = sum(len(b) for b in order)
        nets = {}

        def fresh() -> Network:
            return Network(SIZES, activation=activation, cost=cost, seed=0)

        def run_hand():
            nets["hand"] = fresh()
            train_hand(nets["hand"], x, y, order, eta)

        def run_autograd():
            nets["autograd"] = fresh()
            train_autograd(nets["autograd"], x, y, order, eta)

        def run_torch_nn():
            train_torch_nn(torch_nn_peer(fresh(), activation, cost), cost, x, y, order, eta)

        t_hand, t_auto, t_nn = (measure(f, args.repeats) for f in (run_hand, run_autograd, run_torch_nn))
        gap = max(float((a - b).abs().max()) for a, b in zip(nets["hand"].parameters(), nets["autograd"].parameters()))
        speeds = [n_examples / t for t in (t_hand, t_auto, t_nn)]
        print(f"{activation + '/' + cost:<24}{speeds[0]:>12,.0f}{speeds[1]:>15,.0f}{speeds[2]:>15,.0f}"
              f"{t_auto / t_hand:>15.2f}{t_nn / t_hand:>15.2f}   (max |hand - autograd| weight after training: {gap:.1e})")


if __name__ == "__main__":
    main()
