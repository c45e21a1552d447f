"""Measurements on trained digit networks, each a small pure function returning a tidy DataFrame.

    from models.mlp import train_digit_network
    from models.data.digits import load_digits_split
    from analyses.digits.measures import confusion, noise_confidence

    data = load_digits_split()
    net, _ = train_digit_network(seed=0)
    confusion(net, data.x_test, data.y_test).head()          # true, predicted, count
    noise_confidence(net, data.x_test, n_noise=100, seed=0)   # input, confidence, predicted

Used by :mod:`analyses.digits`; training is in :mod:`analyses.digits.training`, plotting in
:mod:`analyses.digits.plots`.
"""

import math

import einops
import numpy as np
import pandas as pd
import torch
from jaxtyping import Float
from torch import Tensor

from models.data.digits import DigitSplit, one_hot
from models.mlp import Network


def confusion(net: Network, x: Float[Tensor, "batch pixel"], labels: Tensor) -> pd.DataFrame:
    """Counts of (true digit, predicted digit) on ``x``, all 100 pairs present."""
    predicted = net(x).argmax(-1)
    counts = einops.rearrange(torch.bincount(labels * 10 + predicted, minlength=100), "(true pred) -> true pred", true=10)
    return pd.DataFrame([{"true": t, "predicted": p, "count": int(counts[t, p])} for t in range(10) for p in range(10)])


def confusions(networks: dict[str, Network], x: Float[Tensor, "batch pixel"], labels: Tensor) -> pd.DataFrame:
    """:func:`confusion` of every network, with its ``variant`` label."""
    return pd.concat([confusion(net, x, labels).assign(variant=label) for label, net in networks.items()],
                     ignore_index=True)


def first_layer_weights(net: Network, height: int, width: int) -> pd.DataFrame:
    """The first layer's weights as images: one row per (neuron, row, col)."""
    W = net.weights[0].detach().double().cpu().numpy()
    if W.shape[1] != height * width:
        raise ValueError(f"first layer has {W.shape[1]} inputs, not {height}x{width} pixels")
    neuron, pixel = np.indices(W.shape)
    return pd.DataFrame({"neuron": neuron.ravel(), "row": pixel.ravel() // width, "col": pixel.ravel() % width,
                         "weight": W.ravel()})


def edge_templates(height: int, width: int, n_orientations: int = 12, widths: tuple[float, ...] = (1.5, 3.0, math.inf)
                   ) -> tuple[Float[Tensor, "template pixel"], pd.DataFrame]:
    """A bank of clean oriented edge and bar detectors on a ``height x width`` grid.

    An edge is ``tanh(d / 0.7)`` of the signed distance ``d`` to a line through a pixel
    centre; a bar is ``exp(-d^2 / 2)``; both under a Gaussian window of the given width
    (``inf``: the whole image). Every orientation, centre and width is one template.
    """
    rows, cols = np.indices((height, width), dtype=np.float64)
    templates, meta = [], []
    for theta in np.arange(n_orientations) * np.pi / n_orientations:
        normal = (np.sin(theta), np.cos(theta))
        for cy in range(height):
            for cx in range(width):
                d = (rows - cy) * normal[0] + (cols - cx) * normal[1]
                r2 = (rows - cy) ** 2 + (cols - cx) ** 2
                for sigma in widths:
                    window = np.ones_like(r2) if math.isinf(sigma) else np.exp(-r2 / (2 * sigma**2))
                    for kind, profile in (("edge", np.tanh(d / 0.7)), ("bar", np.exp(-(d**2) / 2))):
                        templates.append((profile * window).ravel())
                        meta.append({"kind": kind, "orientation_deg": round(float(np.degrees(theta)), 1),
                                     "row": cy, "col": cx, "window": sigma})
    return torch.tensor(np.array(templates)), pd.DataFrame(meta)


def best_template_match(vectors: Float[Tensor, "n pixel"], templates: Float[Tensor, "template pixel"],
                        mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Largest |cosine similarity| of each vector with any template, and which template.

    Both sides are centred (a constant offset is no edge) and restricted to ``mask``
    pixels (pixels that never vary in the data carry no learned structure).
    """
    v, t = vectors.double(), templates.double()
    if mask is not None:
        v, t = v[:, mask], t[:, mask]
    v = v - v.mean(-1, keepdim=True)
    t = t - t.mean(-1, keepdim=True)
    v = v / v.norm(dim=-1, keepdim=True).clamp_min(1e-300)
    t = t / t.norm(dim=-1, keepdim=True).clamp_min(1e-300)
    cosine = (v @ t.T).abs()
    best, index = cosine.max(-1)
    return best, index


def edge_likeness(net: Network, data: DigitSplit, n_random: int = 200, seed: int = 0) -> pd.DataFrame:
    """How close each first-layer neuron's weights come to a clean edge or bar detector.

    One row per vector: ``source`` is ``trained`` (the network's neurons), ``random``
    (Gaussian vectors, the no-structure baseline) or ``template`` (the bank itself with
    Gaussian noise of equal energy added, what a noisy but real edge detector scores).
    """
    templates, meta = edge_templates(data.height, data.width)
    mask = data.x_train.std(0) > 0
    generator = torch.Generator().manual_seed(seed)
    W = net.weights[0].detach().double()
    random = torch.randn(n_random, W.shape[1], generator=generator, dtype=torch.float64)
    picks = torch.randint(0, len(templates), (n_random,), generator=generator)
    clean = templates[picks] - templates[picks].mean(-1, keepdim=True)
    clean = clean / clean.norm(dim=-1, keepdim=True)
    noise = torch.randn(n_random, W.shape[1], generator=generator, dtype=torch.float64)
    noisy = clean + noise / noise.norm(dim=-1, keepdim=True)
    rows = []
    for source, vectors in (("trained", W), ("random", random), ("noisy template", noisy)):
        best, index = best_template_match(vectors, templates, mask)
        for i, (b, j) in enumerate(zip(best.tolist(), index.tolist())):
            rows.append({"source": source, "neuron": i, "best_cosine": b, **meta.iloc[j].to_dict()})
    return pd.DataFrame(rows)


def noise_confidence(net: Network, x_digits: Float[Tensor, "batch pixel"], n_noise: int, seed: int) -> pd.DataFrame:
    """The network's top output and its confidence on uniform-noise images and on real digits.

    Confidence is the largest output activation: a probability for softmax outputs, the
    largest of ten independent sigmoids for the MSE network.
    """
    generator = torch.Generator().manual_seed(seed)
    noise = torch.rand(n_noise, x_digits.shape[1], generator=generator, dtype=x_digits.dtype)
    rows = []
    for kind, x in (("uniform noise", noise), ("test digits", x_digits)):
        confidence, predicted = net(x).max(-1)
        rows += [{"input": kind, "image": i, "confidence": c, "predicted": p}
                 for i, (c, p) in enumerate(zip(confidence.tolist(), predicted.tolist()))]
    return pd.DataFrame(rows)


def confidence_summary(confidences: pd.DataFrame) -> pd.DataFrame:
    """Per variant and input (noise or digits): the median top-output confidence and the share above 0.9."""
    return confidences.groupby(["variant", "input"], sort=False)["confidence"].agg(
        median="median", above_0_9=lambda c: float((c > 0.9).mean())).reset_index()


def favourite_answer(confidences: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Per variant, the digit it most often answers to uniform noise, and the share of noise images it goes to."""
    noise = confidences[confidences["input"] == "uniform noise"].groupby("variant", sort=False)["predicted"]
    return noise.agg(lambda p: p.value_counts().index[0]), noise.agg(lambda p: p.value_counts(normalize=True).iloc[0])


def noise_images(n: int, n_pixels: int, seed: int) -> Tensor:
    """The first ``n`` noise images :func:`noise_confidence` draws with the same seed."""
    return torch.rand(n, n_pixels, generator=torch.Generator().manual_seed(seed))


def _flat_gradient(net: Network, x: Tensor, y: Tensor) -> Tensor:
    nabla_b, nabla_w = net.backprop(x, y)
    return torch.cat([g.flatten() for pair in zip(nabla_w, nabla_b) for g in pair])


def _step_cost(net: Network, x: Tensor, y: Tensor, step: Tensor) -> float:
    """Cost after subtracting ``step`` (flat, in _flat_gradient's order) from the parameters."""
    saved = [p.detach().clone() for p in net.parameters()]
    params = [p for layer in net.layers for p in (layer.W, layer.b)]
    try:
        offset = 0
        with torch.no_grad():
            for p in params:
                p.sub_(step[offset:offset + p.numel()].view_as(p))
                offset += p.numel()
            return float(net.cost(x, y))
    finally:
        with torch.no_grad():
            for p, s in zip(net.parameters(), saved):
                p.copy_(s)


def bang_for_the_buck(net: Network, x: Tensor, y: Tensor, eta: float, top_fraction: float) -> tuple[pd.DataFrame, dict]:
    """Which parameters one gradient step's cost decrease comes from.

    A step ``-eta * g`` lowers the cost by ``eta * sum_i g_i^2`` to first order (series
    Part 2: the gradient's components say which nudges give the most bang for the buck),
    so parameter ``i`` contributes ``g_i^2 / |g|^2``. Returns the cumulative share
    against the fraction of parameters, ranked by ``|g_i|`` (one row per rank), and the
    top ``top_fraction``'s share both to first order and as actually measured by taking
    the step with only those parameters moved.
    """
    g = _flat_gradient(net, x, y).double()
    share = (g**2).sort(descending=True).values / (g**2).sum()
    n = len(g)
    curve = pd.DataFrame({"rank": np.arange(1, n + 1), "fraction_of_parameters": np.arange(1, n + 1) / n,
                          "share_of_decrease": share.cumsum(0).numpy()})
    k = max(1, int(round(top_fraction * n)))
    top = torch.zeros_like(g)
    top[g.abs().topk(k).indices] = 1.0
    cost = float(net.cost(x, y))
    full = cost - _step_cost(net, x, y, (eta * g).to(net.dtype))
    only_top = cost - _step_cost(net, x, y, (eta * g * top).to(net.dtype))
    summary = {"parameters": n, "top_k": k, "first_order_share": float(share[:k].sum()),
               "actual_decrease_all": full, "actual_decrease_top": only_top,
               "actual_share": only_top / full if full != 0 else float("nan")}
    return curve, summary


def fire_together(net: Network, x: Tensor, y: Tensor, eta: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Weight updates each example asks for against the activations at the weight's two ends.

    For weight ``w_jk`` (from neuron ``k`` in layer ``l-1`` to neuron ``j`` in layer ``l``)
    example ``x`` asks for ``dw_jk = -eta * dC_x/dw_jk = -eta * delta_j(x) a_k(x)``. Hebb's
    "fire together, wire together" predicts the update grows with ``a_j(x) a_k(x)``. For
    the output layer we also use the *wanted* activation ``y_j`` (the series' framing:
    the neuron that should fire). Returns the correlations per layer and a sample of points.
    """
    activations, deltas = net.errors(x, y)
    n = x.shape[0]
    stats, points = [], []
    generator = torch.Generator().manual_seed(0)
    for l, (delta, a_in, a_out) in enumerate(zip(deltas, activations[:-1], activations[1:])):
        update = -eta * n * einops.einsum(delta, a_in, "batch d_out, batch d_in -> batch d_out d_in")
        ends = {"actual": a_out}
        if l == len(deltas) - 1:
            ends["wanted"] = y.to(a_out.dtype)
        for which, a_j in ends.items():
            product = einops.einsum(a_j, a_in, "batch d_out, batch d_in -> batch d_out d_in").flatten().double()
            u = update.flatten().double()
            frame = pd.DataFrame({"update": u.numpy(), "abs_update": u.abs().numpy(), "product": product.numpy()})
            stats.append({"layer": l, "receiving_end": which, "pairs": len(frame),
                          "pearson_update": frame["update"].corr(frame["product"]),
                          "pearson_abs_update": frame["abs_update"].corr(frame["product"]),
                          "spearman_abs_update": frame["abs_update"].corr(frame["product"], method="spearman")})
            keep = torch.randperm(len(frame), generator=generator)[:1500].numpy()
            points.append(frame.iloc[keep].assign(layer=l, receiving_end=which))
    return pd.DataFrame(stats), pd.concat(points, ignore_index=True)


def untrained_twin(net: Network, seed: int) -> Network:
    """A network of the same shape, activation, cost and dtype, freshly initialised from ``seed``."""
    return Network(net.sizes, activation=net.activation, cost=net.cost_name, seed=seed, dtype=net.dtype)


def bang_before_and_after(networks: dict[str, Network], x: Tensor, y: Tensor, etas: dict[str, float],
                          top_fraction: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`bang_for_the_buck` of each network and of its untrained twin (``stage`` initial / trained):
    the cumulative curves and one summary row per (variant, stage)."""
    curves, rows = [], []
    for label, net in networks.items():
        for stage, subject in (("initial", untrained_twin(net, seed)), ("trained", net)):
            curve, summary = bang_for_the_buck(subject, x, y, etas[label], top_fraction)
            curves.append(curve.assign(variant=label, stage=stage))
            rows.append({"variant": label, "stage": stage, **summary})
    return pd.concat(curves, ignore_index=True), pd.DataFrame(rows)


def fire_before_and_after(net: Network, x: Tensor, y: Tensor, eta: float, seed: int
                          ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`fire_together` of the untrained twin and of ``net`` (``stage``), and the untrained one's points."""
    (initial, points), (trained, _) = (fire_together(subject, x, y, eta) for subject in (untrained_twin(net, seed), net))
    return pd.concat([initial.assign(stage="initial"), trained.assign(stage="trained")], ignore_index=True), points
