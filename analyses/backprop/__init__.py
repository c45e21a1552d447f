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

import pandas as pd
import torch

from analyses.backprop.measures import chain_rule_table, full_network_check, relative_errors  # noqa: F401 (re-exported)
from analyses.backprop.plots import plot_agreement, plot_relative_errors
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
