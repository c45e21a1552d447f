"""Procedural 16x16 shapes with attributes and captions (the digits live in models.data.digits).

Example::

    from models.data.shapes import make_shapes, encode_captions

    data = make_shapes(512, seed=0)
    data.images.shape          # torch.Size([512, 1, 16, 16]), values in [0, 1]
    data.captions[0]           # e.g. 'a small filled circle on the left with a hat'
    data.attributes.iloc[0]    # shape, size, position, filled, hat
    tokens = encode_captions(data.captions)   # [batch pos] ids into VOCAB, 0 = padding

Every image is drawn from its attributes plus a little continuous jitter (sub-pixel
position, size, brightness), so images that share a caption still differ, which is what
the diffusion analysis needs to tell a diverse sampler from a collapsed one. Shapes are
rendered at 4x resolution and averaged down (anti-aliasing), with a private numpy
generator: the same seed gives the same images on every machine.
"""

import itertools
from dataclasses import dataclass

import einops
import numpy as np
import pandas as pd
import torch
from jaxtyping import Float, Int
from torch import Tensor

IMAGE_SIZE = 16
SUPERSAMPLE = 4

# Attribute name -> its values; the order fixes the caption index used as a class label.
ATTRIBUTES: dict[str, tuple] = {
    "shape": ("circle", "square", "triangle"),
    "size": ("small", "large"),
    "filled": (True, False),
    "position": ("left", "right"),
    "hat": (True, False),
}

PAD = "<pad>"
VOCAB: tuple[str, ...] = (
    PAD, "a", "small", "large", "filled", "outlined", "circle", "square", "triangle",
    "on", "the", "left", "right", "with", "hat",
)
N_CTX = 11  # the longest caption: "a small filled circle on the left with a hat"


def caption_for(shape: str, size: str, filled: bool, position: str, hat: bool) -> str:
    """The caption of one set of attributes, e.g. 'a large outlined square on the right'."""
    caption = f"a {size} {'filled' if filled else 'outlined'} {shape} on the {position}"
    return caption + (" with a hat" if hat else "")


def all_captions() -> list[str]:
    """Every caption the generator can produce, in label order (48 of them)."""
    return [caption_for(*values) for values in itertools.product(*ATTRIBUTES.values())]


def encode_captions(captions: list[str] | str) -> Int[Tensor, "batch pos"]:
    """Token ids [batch pos] of whitespace-separated captions, right-padded with 0 (``<pad>``).

    >>> encode_captions(["a small circle"]).tolist()
    [[1, 2, 6, 0, 0, 0, 0, 0, 0, 0, 0]]

    Unknown words raise a ValueError listing the vocabulary, so a typo in a prompt fails
    loudly instead of silently becoming padding.
    """
    if isinstance(captions, str):
        captions = [captions]
    index = {word: i for i, word in enumerate(VOCAB)}
    tokens = torch.zeros(len(captions), N_CTX, dtype=torch.long)
    for row, caption in enumerate(captions):
        words = caption.lower().split()
        unknown = [w for w in words if w not in index or w == PAD]
        if unknown:
            raise ValueError(
                f"unknown word(s) {unknown} in caption {caption!r}; captions may only use "
                f"{[w for w in VOCAB if w != PAD]}"
            )
        if not words or len(words) > N_CTX:
            raise ValueError(f"caption {caption!r} has {len(words)} words; use 1 to {N_CTX}")
        tokens[row, : len(words)] = torch.tensor([index[w] for w in words])
    return tokens


def bag_of_words(captions: list[str] | str) -> Float[Tensor, "batch d_vocab"]:
    """Word counts [batch d_vocab] of captions (padding column zeroed): the diffusion condition.

    >>> bag_of_words("a circle with a hat")[0, :3].tolist()
    [0.0, 2.0, 0.0]
    """
    tokens = encode_captions(captions)
    counts = torch.zeros(tokens.shape[0], len(VOCAB))
    counts.scatter_add_(1, tokens, torch.ones_like(tokens, dtype=torch.float))
    counts[:, 0] = 0.0
    return counts


@dataclass(frozen=True)
class ShapesData:
    """Images [batch 1 16 16] in [0, 1], one caption each, attributes as a DataFrame."""

    images: Float[Tensor, "batch channel height width"]
    captions: list[str]
    attributes: pd.DataFrame  # columns: shape size filled position hat caption_id

    def __len__(self) -> int:
        return len(self.captions)


def sample_attributes(n: int, seed: int = 0) -> pd.DataFrame:
    """``n`` rows of attributes, each drawn uniformly and independently, with ``caption_id``."""
    if n < 1:
        raise ValueError(f"n must be a positive number of images, got {n}")
    rng = np.random.default_rng(seed)
    columns = {name: np.asarray(values, dtype=object)[rng.integers(len(values), size=n)] for name, values in ATTRIBUTES.items()}
    frame = pd.DataFrame(columns)
    frame["filled"] = frame["filled"].astype(bool)
    frame["hat"] = frame["hat"].astype(bool)
    lookup = {c: i for i, c in enumerate(all_captions())}
    frame["caption_id"] = [lookup[caption_for(*row)] for row in frame[list(ATTRIBUTES)].itertuples(index=False)]
    return frame


def render_shapes(attributes: pd.DataFrame, seed: int = 0, jitter: bool = True, chunk: int = 1024) -> Float[Tensor, "batch channel height width"]:
    """Draw one 16x16 image per row of ``attributes`` (see :func:`sample_attributes`).

    >>> render_shapes(sample_attributes(3)).shape
    torch.Size([3, 1, 16, 16])

    Geometry, in output pixels: centres at x = 4.5 (left) or 11.5 (right), y = 10;
    radius 2.5 (small) or 4 (large); outlines 1 px thick; the hat is a 2x2 crown on a
    4x1 brim, 0.75 px above the top of the shape. Jitter moves the centre by up to +-0.75 px,
    scales the radius by up to +-10% and the brightness between 0.75 and 1.
    """
    missing = set(ATTRIBUTES) - set(attributes.columns)
    if missing:
        raise ValueError(f"attributes lack column(s) {sorted(missing)}; build them with sample_attributes")
    n = len(attributes)
    rng = np.random.default_rng(seed)
    unit = rng.uniform(-1.0, 1.0, size=(n, 3)) if jitter else np.zeros((n, 3))
    brightness = rng.uniform(0.75, 1.0, size=n) if jitter else np.ones(n)
    # Chunks bound the memory of the supersampled masks (n x 64 x 64 per intermediate).
    parts = [
        _render(attributes.iloc[start : start + chunk], unit[start : start + chunk], brightness[start : start + chunk])
        for start in range(0, n, chunk)
    ]
    return einops.rearrange(torch.from_numpy(np.concatenate(parts)), "batch height width -> batch 1 height width")


def _render(attributes: pd.DataFrame, unit: np.ndarray, brightness: np.ndarray) -> np.ndarray:
    cx = np.where(attributes["position"].to_numpy() == "left", 4.5, 11.5) + 0.75 * unit[:, 0]
    cy = 10.0 + 0.75 * unit[:, 1]
    r = np.where(attributes["size"].to_numpy() == "small", 2.5, 4.0) * (1.0 + 0.1 * unit[:, 2])
    shape = attributes["shape"].to_numpy()
    filled = attributes["filled"].to_numpy().astype(bool)
    hat = attributes["hat"].to_numpy().astype(bool)

    # Pixel-centre coordinates of the supersampled grid, in output-pixel units.
    fine = ((np.arange(IMAGE_SIZE * SUPERSAMPLE) + 0.5) / SUPERSAMPLE).astype(np.float32)
    y, x = np.meshgrid(fine, fine, indexing="ij")
    x, y = x[None], y[None]  # broadcast against [n 1 1] parameters
    c_x, c_y, rad = (v.astype(np.float32)[:, None, None] for v in (cx, cy, r))

    def inside(shrink: float) -> np.ndarray:
        rr = rad - shrink
        circle = (x - c_x) ** 2 + (y - c_y) ** 2 <= rr**2
        square = np.maximum(np.abs(x - c_x), np.abs(y - c_y)) <= 0.85 * rr
        # Upward triangle, apex (c_x, c_y - rr), base y = c_y + rr, half-width rr at the base;
        # an inset by `shrink` moves the apex down twice as far as the sides move in.
        apex = c_y - rad + 2.2 * shrink
        base = c_y + rad - shrink
        height = np.maximum(base - apex, 1e-6)
        half = (rad - shrink) * (y - apex) / height
        triangle = (y >= apex) & (y <= base) & (np.abs(x - c_x) <= half)
        kind = shape[:, None, None]
        return np.where(kind == "circle", circle, np.where(kind == "square", square, triangle))

    mask = inside(0.0) & (filled[:, None, None] | ~inside(1.0))
    top = np.where(shape == "square", c_y[:, 0, 0] - 0.85 * r, c_y[:, 0, 0] - r)[:, None, None]
    # A 0.75 px gap keeps the hat a separate mark even on a filled shape.
    crown = (np.abs(x - c_x) <= 1.0) & (y >= top - 3.75) & (y < top - 1.75)
    brim = (np.abs(x - c_x) <= 2.0) & (y >= top - 1.75) & (y < top - 0.75)
    mask = mask | (hat[:, None, None] & (crown | brim))

    pooled = einops.reduce(mask.astype(np.float32), "b (h s1) (w s2) -> b h w", "mean", s1=SUPERSAMPLE, s2=SUPERSAMPLE)
    return pooled * brightness[:, None, None].astype(np.float32)


def make_shapes(n: int, seed: int = 0, jitter: bool = True) -> ShapesData:
    """``n`` random shapes images with captions and attributes; the same seed gives the same data."""
    attributes = sample_attributes(n, seed)
    # A second, derived seed for the jitter keeps attributes and geometry independent streams.
    images = render_shapes(attributes, seed=seed + 1_000_003, jitter=jitter)
    captions = [all_captions()[i] for i in attributes["caption_id"]]
    return ShapesData(images, captions, attributes)

