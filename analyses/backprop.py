"""Is the hand-written backprop the chain rule, term by term and on every weight?

Part 4 of the 3Blue1Brown series: on a network with one neuron per layer the gradient of
``C = (a^(L) - y)^2`` with respect to the last weight is ``a^(L-1) * sigma'(z^(L)) *
2(a^(L) - y)``, and each earlier weight adds a factor ``w * sigma'(z)`` per layer. We
evaluate those factors one by one, multiply them, and check the product against
``Network.backprop``, central finite differences and ``torch.autograd`` (all float64).
Then the same three-way check on every weight and bias of full networks of several
shapes, for both activations and both costs.

    from analyses.backprop import Config, run
    run(Config.quick()).save("reports")
"""

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import torch
from jaxtyping import Float
from torch import Tensor

from interp.progress import note
from interp.report import Report
from models.mlp import Network

VARIANTS = (("sigmoid", "mse"), ("relu", "cross_entropy"), ("sigmoid", "cross_entropy"), ("relu", "mse"))


@dataclass(frozen=True)
class Config:
    seed: int = 0
    chain_layers: int = 3
    shapes: tuple[str, ...] = ("64-16-16-10", "8-7-6-5", "5-4-3", "4-9-1-9-3", "3-2")
    batch_size: int = 20
    fd_step: float = 1e-6

    def __post_init__(self) -> None:
        if self.chain_layers < 1:
            raise ValueError(f"chain_layers must be at least 1, got {self.chain_layers}")
        if not self.shapes:
            raise ValueError("shapes must list at least one network shape such as '64-16-16-10'")
        for shape in self.shapes:
            try:
                sizes = parse_shape(shape)
            except ValueError:
                sizes = []
            if len(sizes) < 2 or min(sizes) < 1:
                raise ValueError(f"shapes: {shape!r} must be layer widths joined by '-', e.g. '64-16-16-10'")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")
        if not 0 < self.fd_step < 1e-2:
            raise ValueError(f"fd_step must be a small positive step such as 1e-6, got {self.fd_step}")

    @classmethod
    def quick(cls) -> "Config":
        return cls(shapes=("8-7-6-5", "5-4-3", "4-9-1-9-3"), batch_size=8)


def parse_shape(shape: str) -> list[int]:
    return [int(s) for s in shape.split("-")]


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


def plot_agreement(points: pd.DataFrame) -> "plt.Figure":
    """Backprop gradient components against autograd's and finite differences' (symlog axes)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    long = points.melt(id_vars=["backprop", "shape", "activation", "cost"], value_vars=["autograd", "finite_difference"],
                       var_name="reference", value_name="reference_value")
    long["variant"] = long["activation"] + "/" + long["cost"]
    long["reference"] = long["reference"].map({"autograd": "torch.autograd", "finite_difference": "finite differences"})
    # one panel per variant: the variants' points coincide on the diagonal, so in one panel only the
    # last one drawn would show
    grid = sns.relplot(long, x="reference_value", y="backprop", hue="variant", col="variant", row="reference", s=8,
                       alpha=0.6, height=2.3, aspect=1.0, linewidth=0, legend=False,
                       facet_kws={"margin_titles": True})
    for ax in grid.axes.flat:
        # symlog: linear within 1e-4 of zero, logarithmic beyond, so small and large components both show
        ax.set_xscale("symlog", linthresh=1e-4)
        ax.set_yscale("symlog", linthresh=1e-4)
        # the diagonal beneath the points (zorder 0), which sit on it: drawn over them, it hid them
        diagonal = np.concatenate([-np.geomspace(1, 1e-4, 20), [0.0], np.geomspace(1e-4, 1, 20)])
        ax.plot(diagonal, diagonal, color="grey", linestyle=":", linewidth=0.8, zorder=0)
        ax.set_xticks([-1, -1e-2, 0, 1e-2, 1])  # fewer ticks: symlog's default labels collide at this size
        ax.set_yticks([-1, -1e-2, -1e-4, 0, 1e-4, 1e-2, 1])
        ax.xaxis.set_tick_params(labelsize=7)
        ax.yaxis.set_tick_params(labelsize=7)
    grid.set_titles(col_template="{col_name}", row_template="{row_name}")
    grid.set_axis_labels("reference component", "backprop component")
    diagonal_key = plt.Line2D([], [], color="grey", linestyle=":", linewidth=1.2,
                              label="exact agreement (backprop = reference); axes linear within ±1e-4, log beyond")
    grid.figure.legend(handles=[diagonal_key], loc="lower center", bbox_to_anchor=(0.5, 0.0), frameon=False, fontsize=9)
    grid.figure.subplots_adjust(bottom=0.16)
    return grid.figure


def plot_relative_errors(checks: pd.DataFrame) -> "plt.Figure":
    """Worst relative error of backprop per network, against each reference, on a log scale."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    long = checks.melt(id_vars=["shape", "activation", "cost"],
                       value_vars=["autograd_max_rel_err_elementwise", "fd_max_rel_err_elementwise"],
                       var_name="reference", value_name="max_relative_error")
    long["reference"] = long["reference"].map({"autograd_max_rel_err_elementwise": "torch.autograd",
                                               "fd_max_rel_err_elementwise": "finite differences"})
    long["variant"] = long["activation"] + "/" + long["cost"]
    long["max_relative_error"] = long["max_relative_error"].clip(lower=1e-17)  # exact agreement drawn at 1e-17
    fig, ax = plt.subplots(figsize=(7.5, 3.6))
    sns.stripplot(long, x="max_relative_error", y="shape", hue="reference", dodge=True, size=6, ax=ax, log_scale=True)
    # the acceptance line beneath the points (zorder 0), so a point on it stays visible
    ax.axvline(1e-8, color="k", linestyle="--", linewidth=0.8, zorder=0, label="1e-8 acceptance")
    ax.set(xlabel="max elementwise relative error over all parameters (log scale)", ylabel="network shape")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), title="reference", frameon=False)
    fig.tight_layout()
    return fig


def run(config: Config) -> Report:
    report = Report("backprop", "Backpropagation is the chain rule: checked term by term and on every weight",
                    config=asdict(config),
                    summary="Every gradient here is computed three or four ways, all in float64: "
                            "`models.mlp.Network.backprop` (matrix equations written by hand), central finite "
                            f"differences (step {config.fd_step:g}), `torch.autograd`, and for the chain, the product "
                            "of the Part 4 factors evaluated one at a time.")
    _chain_section(report, config)
    _full_section(report, config)
    return report


def _chain_section(report: Report, config: Config) -> None:
    sizes = [1] * (config.chain_layers + 1)
    net = Network(sizes, activation="sigmoid", cost="mse", seed=config.seed, dtype=torch.float64)
    generator = torch.Generator().manual_seed(config.seed + 1)
    with torch.no_grad():
        for layer in net.layers:
            layer.W.copy_(torch.randn(1, 1, generator=generator, dtype=torch.float64) * 2)
            layer.b.copy_(torch.randn(1, generator=generator, dtype=torch.float64))
    x = torch.rand(1, 1, generator=generator, dtype=torch.float64)
    y = torch.ones(1, 1, dtype=torch.float64)
    table = chain_rule_table(net, x, y, config.fd_step)
    last = table.iloc[0]
    sigma_prime = last["sigma'(z)"]
    L = config.chain_layers
    worst = table[["rel_err_backprop", "rel_err_autograd"]].to_numpy().max()
    worst_fd = table["rel_err_finite_difference"].max()
    report.headline("chain_max_rel_err_autograd", float(f"{worst:.3g}"),
                    "one-neuron chain: worst relative gap between the factor-by-factor product and backprop/autograd")
    section = report.section(
        "The chain rule on one neuron per layer",
        f"A sigmoid network with {L} weights in a row ({'-'.join(map(str, sizes))}), random weights and biases, "
        f"input x = {float(x):.4f}, wanted output y = 1, cost C = (a^({L}) - y)^2. For the last weight the series' "
        f"three factors are dz/dw = a^({L - 1}) = {last['dz/dparam']:.6f}, da/dz = sigma'(z^({L})) = "
        f"{sigma_prime:.6f} and dC/da = 2(a^({L}) - y) = {last['dC/da']:.6f}; their product "
        f"{last['chain_rule']:.10f} is what backprop returns ({last['backprop']:.10f}), autograd returns "
        f"({last['autograd']:.10f}) and finite differences estimate ({last['finite_difference']:.10f}). Earlier "
        "layers reuse dC/da from the layer above times w * sigma'(z): that reuse is backpropagation.\n\n"
        f"Worst relative gap to the factor product: {worst:.1e} for backprop and autograd (float64 rounding), "
        f"{worst_fd:.1e} for finite differences (their truncation and rounding error at step {config.fd_step:g}).")
    section.table(table, "chain_rule", "One row per parameter, last layer first: the three factors, their product, "
                  "and the gradient from backprop, finite differences and autograd, with relative errors to the product.")


def _full_section(report: Report, config: Config) -> None:
    rows, points = [], []
    total = len(config.shapes) * len(VARIANTS)
    for shape in config.shapes:
        for activation, cost in VARIANTS:
            note(f"backprop: network {len(rows) + 1}/{total} ({shape}, {activation}/{cost}): backprop, autograd and "
                 "finite differences on every weight")
            row, pts = full_network_check(parse_shape(shape), activation, cost, config.batch_size, config.seed,
                                          config.fd_step)
            rows.append(row)
            if shape == config.shapes[0]:
                points.append(pts)
    checks = pd.DataFrame(rows)
    worst_auto = float(checks[["autograd_max_rel_err_normwise", "autograd_max_rel_err_elementwise"]].to_numpy().max())
    worst_fd = float(checks["fd_max_rel_err_elementwise"].max())
    worst_fd_norm = float(checks["fd_max_rel_err_normwise"].max())
    n_params = int(checks["parameters"].sum())
    report.headline("full_max_rel_err_autograd", float(f"{worst_auto:.3g}"),
                    "every parameter of every checked network: worst relative error of backprop against torch.autograd "
                    "(acceptance: below 1e-8)")
    report.headline("full_max_rel_err_finite_difference", float(f"{worst_fd:.3g}"),
                    "the same against central finite differences")
    verdict = "below" if worst_auto < 1e-8 else "NOT below"
    section = report.section(
        "Every weight of the full network",
        f"{len(checks)} random float64 networks ({len(config.shapes)} shapes x {len(VARIANTS)} activation/cost "
        f"variants, nonzero biases, a batch of {config.batch_size} random inputs and one-hot targets), "
        f"{n_params:,} parameters in all. Two error measures, both maximised over all parameters: the error "
        "relative to the tensor's largest gradient component (normwise) and the elementwise relative error over "
        "components at least 1e-8 of that largest one. Against torch.autograd the worst is "
        f"{worst_auto:.1e}, {verdict} the 1e-8 acceptance. Against finite differences the worst normwise error is "
        f"{worst_fd_norm:.1e} and the worst elementwise one {worst_fd:.1e}: a central difference's absolute error "
        f"(truncation ~h^2, rounding ~1e-16/h) is largest relative to the smallest components. (Shape 3-2 has no "
        "hidden layer, so its two activations give the same network.)")
    section.figure(plot_relative_errors(checks), "relative_errors",
                   "Worst elementwise relative error of backprop per network and reference; dashed line: 1e-8.")
    section.figure(plot_agreement(pd.concat(points, ignore_index=True)), "gradient_agreement",
                   f"Every gradient component of the {config.shapes[0]} networks, one column per activation/cost "
                   "variant: backprop against autograd (top) and finite differences (bottom), symlog axes; the "
                   "dotted diagonal is exact agreement"
                   + (", which every point sits on at this scale." if worst_fd < 1e-3 else "."))
    section.table(checks, "full_network_check", "Worst relative errors per network.")
