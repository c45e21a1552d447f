"""CLIP measurements for the diffusion analysis: zero-shot attribute accuracy and whether
``image(hat) - image(no hat)`` points along the caption embedding of "hat".

Example::

    from models.clip import Clip, ClipConfig
    from models.data.shapes import make_shapes
    from analyses.diffusion.clip import zero_shot_accuracy, direction_cosines

    clip = Clip(ClipConfig())
    zero_shot_accuracy(clip, make_shapes(64, seed=1))       # one row per attribute
    direction_cosines(clip, n_pairs=64, seed=0)             # image x caption directions
"""

import itertools

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from models.clip import Clip
from models.data.shapes import ATTRIBUTES, ShapesData, all_captions, caption_for, encode_captions, render_shapes, sample_attributes

# (name, attribute, from value, to value, the caption word of the "to" value)
CONTRASTS = (
    ("hat", "hat", False, True, "hat"),
    ("filled", "filled", False, True, "filled"),
    ("large", "size", "small", "large", "large"),
    ("right", "position", "left", "right", "right"),
    ("square", "shape", "circle", "square", "square"),
    ("triangle", "shape", "circle", "triangle", "triangle"),
)


@torch.no_grad()
def zero_shot_accuracy(clip: Clip, data: ShapesData) -> pd.DataFrame:
    """Accuracy of reading each attribute off the most similar captions, with chance level.

    The image is compared with all 48 captions; an attribute's prediction is the value
    whose captions hold the most probability (logsumexp of their logits), so no label is
    ever used: this is zero-shot classification as in Radford et al. (2021, sec. 3.1.2).
    """
    captions = all_captions()
    logits = clip(data.images, encode_captions(captions))
    values = [dict(zip(ATTRIBUTES, v)) for v in itertools.product(*ATTRIBUTES.values())]
    rows = [{"attribute": "caption (all five)", "accuracy": float((logits.argmax(-1).numpy() == data.attributes["caption_id"].to_numpy()).mean()),
             "chance": 1 / len(captions), "n": len(data)}]
    for attribute, options in ATTRIBUTES.items():
        scores = torch.stack([torch.logsumexp(logits[:, [v[attribute] == o for v in values]], dim=-1) for o in options], dim=-1)
        predicted = np.asarray(options, dtype=object)[scores.argmax(-1).numpy()]
        rows.append({"attribute": attribute, "accuracy": float((predicted == data.attributes[attribute].to_numpy()).mean()),
                     "chance": 1 / len(options), "n": len(data)})
    return pd.DataFrame(rows)


@torch.no_grad()
def image_directions(clip: Clip, n_pairs: int, seed: int) -> dict[str, torch.Tensor]:
    """Per contrast, the mean of ``image(to) - image(from)`` over ``n_pairs`` random pairs
    that differ only in that attribute (same other attributes, same jitter), i.e. averaged
    over shapes and every other attribute."""
    base = sample_attributes(n_pairs, seed)
    directions = {}
    for name, attribute, old, new, _ in CONTRASTS:
        before, after = base.copy(), base.copy()
        before[attribute], after[attribute] = old, new
        jitter_seed = seed + 17  # the same jitter for both halves of every pair
        delta = clip.encode_image(render_shapes(after, seed=jitter_seed)) - clip.encode_image(render_shapes(before, seed=jitter_seed))
        directions[name] = delta.mean(0)
    return directions


@torch.no_grad()
def caption_directions(clip: Clip) -> dict[str, torch.Tensor]:
    """Per contrast, the mean of ``caption(to) - caption(from)`` over every caption pair that
    differs only in that attribute: the text side of the same question."""
    directions = {}
    for name, attribute, old, new, _ in CONTRASTS:
        pairs = []
        for values in itertools.product(*ATTRIBUTES.values()):
            attrs = dict(zip(ATTRIBUTES, values))
            if attrs[attribute] == old:
                pairs.append((caption_for(**attrs), caption_for(**{**attrs, attribute: new})))
        before, after = zip(*pairs)
        directions[name] = (clip.encode_caption(list(after)) - clip.encode_caption(list(before))).mean(0)
    return directions


@torch.no_grad()
def direction_cosines(clip: Clip, n_pairs: int = 512, seed: int = 0, n_random: int = 1000) -> pd.DataFrame:
    """Cosine similarity of every image direction with every caption direction, long format.

    Caption directions come in two kinds: ``caption difference`` (see
    :func:`caption_directions`) and ``single word``, the embedding of a one-word caption
    such as "hat" (a caption never seen in training, so a harder test). The image
    directions include ``random (95th pct)``: the 95th percentile of |cosine| between
    ``n_random`` random unit vectors and each caption direction, the level that chance
    alignment reaches in this many dimensions.
    """
    images = image_directions(clip, n_pairs, seed)
    texts = {("caption difference", k): v for k, v in caption_directions(clip).items()}
    texts.update({("single word", name): clip.encode_caption([word])[0] for name, *_, word in CONTRASTS})
    generator = torch.Generator().manual_seed(seed)
    random = F.normalize(torch.randn(n_random, clip.cfg.d_embed, generator=generator), dim=-1)
    rows = []
    for (kind, text_name), text in texts.items():
        for image_name, image in images.items():
            rows.append({"caption_kind": kind, "caption_direction": text_name, "image_direction": image_name,
                         "cosine": float(F.cosine_similarity(image, text, dim=0))})
        chance = float(torch.quantile((random @ F.normalize(text, dim=0)).abs(), 0.95))
        rows.append({"caption_kind": kind, "caption_direction": text_name, "image_direction": "random (95th pct)", "cosine": chance})
    return pd.DataFrame(rows)


@torch.no_grad()
def hat_direction_by_shape(clip: Clip, n_pairs: int, seed: int) -> pd.DataFrame:
    """Cosine of each shape's own hat direction with the caption-difference "hat" direction."""
    text = caption_directions(clip)["hat"]
    rows = []
    for shape in ATTRIBUTES["shape"]:
        base = sample_attributes(n_pairs, seed)
        base["shape"] = shape
        before, after = base.copy(), base.copy()
        before["hat"], after["hat"] = False, True
        delta = clip.encode_image(render_shapes(after, seed=seed + 17)) - clip.encode_image(render_shapes(before, seed=seed + 17))
        rows.append({"shape": shape, "cosine_with_hat_caption_direction": float(F.cosine_similarity(delta.mean(0), text, dim=0))})
    return pd.DataFrame(rows)
