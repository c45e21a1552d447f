"""The backprop analysis's measurements: gradients three ways (hand-written backprop, central finite
differences, ``torch.autograd``, all float64), their relative errors, the chain rule term by term on a
one-neuron-per-layer network, and the three-way check on a full network."""

import pandas as pd
import torch
from jaxtyping import Float
from torch import Tensor

from models.mlp import Network


def _params(net: Network) -> list[tuple[str, Tensor]]:
    return [(f"{kind}^({l + 1})", p) for l, layer in enumerate(net.layers) for kind, p in (("w", layer.W), ("b", layer.b))]


def autograd_gradients(net: Network, x: Tensor, y: Tensor) -> list[Tensor]:
    """``torch.autograd`` gradients of ``net.cost`` in ``_params`` order; leaves no grad behind."""
    net.requires_grad_(True)
    try:
        grads = torch.autograd.grad(net.cost(x, y), [p for _, p in _params(net)])
    finally:
        net.requires_grad_(False)
    return list(grads)


def finite_difference_gradients(net: Network, x: Tensor, y: Tensor, step: float) -> list[Tensor]:
    """Central differences ``(C(p + h) - C(p - h)) / 2h`` for every parameter, one at a time."""
    grads = []
    with torch.no_grad():
        for _, p in _params(net):
            g = torch.zeros_like(p)
            flat, g_flat = p.view(-1), g.view(-1)
            for i in range(flat.numel()):
                old = float(flat[i])
                flat[i] = old + step
                up = float(net.cost(x, y))
                flat[i] = old - step
                down = float(net.cost(x, y))
                flat[i] = old
                g_flat[i] = (up - down) / (2 * step)
            grads.append(g)
    return grads


def backprop_gradients(net: Network, x: Tensor, y: Tensor) -> list[Tensor]:
    nabla_b, nabla_w = net.backprop(x, y)
    return [g for pair in zip(nabla_w, nabla_b) for g in pair]


def relative_errors(ours: list[Tensor], reference: list[Tensor]) -> dict[str, float]:
    """Max error relative to each tensor's largest reference component, and the max
    elementwise relative error over components at least 1e-8 of that largest one
    (smaller ones, e.g. dead-ReLU exact zeros, are pure rounding noise)."""
    normwise, elementwise = 0.0, 0.0
    for a, r in zip(ours, reference):
        scale = float(r.abs().max())
        if scale == 0:
            normwise = max(normwise, float((a - r).abs().max() > 0))
            continue
        normwise = max(normwise, float((a - r).abs().max()) / scale)
        big = r.abs() >= 1e-8 * scale
        elementwise = max(elementwise, float(((a - r)[big].abs() / r[big].abs()).max()))
    return {"max_rel_err_normwise": normwise, "max_rel_err_elementwise": elementwise}


def chain_rule_table(net: Network, x: Float[Tensor, "batch 1"], y: Float[Tensor, "batch 1"], step: float) -> pd.DataFrame:
    """The Part 4 chain for a one-neuron-per-layer sigmoid/MSE network, one row per parameter.

    ``dC/dw^(l) = a^(l-1) * sigma'(z^(l)) * dC/da^(l)``, with ``dC/da^(L) = 2(a^(L) - y)`` and
    ``dC/da^(l-1) = w^(l) * sigma'(z^(l)) * dC/da^(l)``; for a bias ``dz/db = 1``.
    """
    if set(net.sizes) != {1} or net.activation != "sigmoid" or net.cost_name != "mse" or x.shape[0] != 1:
        raise ValueError("chain_rule_table needs a sigmoid/MSE Network([1, 1, ..., 1]) and a single example")
    _, activations = net.weighted_inputs_and_activations(x)
    a = [float(t) for t in activations]
    w = [float(layer.W) for layer in net.layers]
    L = len(net.layers)
    sigma_prime = [a[l + 1] * (1 - a[l + 1]) for l in range(L)]
    dC_da = [0.0] * L
    dC_da[L - 1] = 2 * (a[L] - float(y))
    for l in range(L - 2, -1, -1):
        dC_da[l] = w[l + 1] * sigma_prime[l + 1] * dC_da[l + 1]
    references = {
        "backprop": backprop_gradients(net, x, y),
        "finite_difference": finite_difference_gradients(net, x, y, step),
        "autograd": autograd_gradients(net, x, y),
    }
    rows = []
    for l in range(L - 1, -1, -1):
        for kind in ("w", "b"):
            dz = a[l] if kind == "w" else 1.0
            index = 2 * l + (kind == "b")
            row = {"parameter": f"{kind}^({l + 1})", "dz/dparam": dz, "sigma'(z)": sigma_prime[l], "dC/da": dC_da[l],
                   "chain_rule": dz * sigma_prime[l] * dC_da[l]}
            row.update({name: float(g[index]) for name, g in references.items()})
            for name in references:
                row[f"rel_err_{name}"] = abs(row[name] - row["chain_rule"]) / max(abs(row["chain_rule"]), 1e-300)
            rows.append(row)
    return pd.DataFrame(rows)


def full_network_check(sizes: list[int], activation: str, cost: str, batch_size: int, seed: int, step: float
                       ) -> tuple[dict, pd.DataFrame]:
    """Backprop against autograd and finite differences on every parameter of one random network."""
    net = Network(sizes, activation=activation, cost=cost, seed=seed, dtype=torch.float64)
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for layer in net.layers:  # nonzero biases: test the gradient away from the initial point
            layer.b.copy_(0.1 * torch.randn(layer.b.shape, generator=generator, dtype=torch.float64))
    x = torch.rand(batch_size, sizes[0], generator=generator, dtype=torch.float64)
    labels = torch.randint(0, sizes[-1], (batch_size,), generator=generator)
    y = torch.nn.functional.one_hot(labels, sizes[-1]).double()
    ours = backprop_gradients(net, x, y)
    auto = autograd_gradients(net, x, y)
    fd = finite_difference_gradients(net, x, y, step)
    row = {"shape": "-".join(map(str, sizes)), "activation": activation, "cost": cost,
           "parameters": sum(g.numel() for g in ours)}
    row.update({f"autograd_{k}": v for k, v in relative_errors(ours, auto).items()})
    row.update({f"fd_{k}": v for k, v in relative_errors(ours, fd).items()})
    points = pd.DataFrame({"backprop": torch.cat([g.flatten() for g in ours]).numpy(),
                           "autograd": torch.cat([g.flatten() for g in auto]).numpy(),
                           "finite_difference": torch.cat([g.flatten() for g in fd]).numpy()})
    return row, points.assign(shape=row["shape"], activation=activation, cost=cost)

