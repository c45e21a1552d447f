"""Procedural shapes: determinism, captions agree with attributes, known areas and centres."""

from collections import Counter

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.datasets import load_digits

from models.data.digits import digit_images
from models.data.shapes import (
    ATTRIBUTES, N_CTX, VOCAB, all_captions, bag_of_words, caption_for, encode_captions, make_shapes,
    render_shapes, sample_attributes,
)


def one(shape="square", size="large", filled=True, position="left", hat=False) -> pd.DataFrame:
    return pd.DataFrame([{"shape": shape, "size": size, "filled": filled, "position": position, "hat": hat}])


def test_same_seed_same_data_and_other_seed_other_data():
    a, b, c = make_shapes(64, seed=3), make_shapes(64, seed=3), make_shapes(64, seed=4)
    assert torch.equal(a.images, b.images) and a.captions == b.captions
    pd.testing.assert_frame_equal(a.attributes, b.attributes)
    assert not torch.equal(a.images, c.images), "a different seed should give different images"


def test_images_and_captions_agree_with_attributes():
    data = make_shapes(200, seed=0)
    assert data.images.shape == (200, 1, 16, 16) and data.images.dtype == torch.float32
    assert 0.0 <= float(data.images.min()) and float(data.images.max()) <= 1.0
    for caption, row in zip(data.captions, data.attributes.itertuples()):
        assert caption == caption_for(row.shape, row.size, row.filled, row.position, row.hat)
        assert ("with a hat" in caption) == row.hat and row.shape in caption and row.position in caption
        assert all_captions()[row.caption_id] == caption
    assert len(set(all_captions())) == 48 == int(np.prod([len(v) for v in ATTRIBUTES.values()]))


def test_attributes_are_roughly_uniform():
    attributes = sample_attributes(4800, seed=1)
    counts = attributes["shape"].value_counts()
    assert counts.min() > 1400, f"shapes should be drawn uniformly, got {counts.to_dict()}"


@pytest.mark.parametrize("shape, area", [("square", (2 * 0.85 * 4) ** 2), ("circle", np.pi * 16)])
def test_filled_shape_has_its_geometric_area(shape, area):
    image = render_shapes(one(shape=shape), jitter=False)[0, 0]
    # 4x supersampling quantises each edge to a quarter pixel: at most 2 x 7 x 0.25 = 3.5 px^2 off.
    assert float(image.sum()) == pytest.approx(area, abs=3.5)


def test_outline_is_lighter_and_hat_adds_eight_pixels():
    filled = render_shapes(one(), jitter=False)[0, 0].sum()
    outlined = render_shapes(one(filled=False), jitter=False)[0, 0].sum()
    hat = render_shapes(one(hat=True), jitter=False)[0, 0].sum()
    assert outlined < 0.75 * filled
    assert float(hat - filled) == pytest.approx(8.0, abs=0.5), "the hat is a 2x2 crown on a 4x1 brim"


def test_position_moves_the_centre_of_mass():
    xs = torch.arange(16).float() + 0.5
    for position, centre in (("left", 4.5), ("right", 11.5)):
        image = render_shapes(one(shape="circle", position=position), jitter=False)[0, 0]
        assert float((image.sum(0) * xs).sum() / image.sum()) == pytest.approx(centre, abs=0.1)


def test_encode_captions_pads_and_round_trips():
    captions = ["a small filled circle on the left with a hat", "a large square"]
    tokens = encode_captions(captions)
    assert tokens.shape == (2, N_CTX)
    for caption, row in zip(captions, tokens.tolist()):
        assert [VOCAB[i] for i in row if i != 0] == caption.split()


@pytest.mark.parametrize("caption, fragment", [("a purple circle", "purple"), ("a <pad>", "<pad>"), ("", "words"), ("a " * 12, "words")])
def test_bad_captions_raise_clear_errors(caption, fragment):
    with pytest.raises(ValueError, match=fragment):
        encode_captions([caption])


def test_bag_of_words_counts_like_counter():
    caption = "a large outlined triangle on the right with a hat"
    counts = Counter(caption.split())
    vector = bag_of_words(caption)[0]
    assert {VOCAB[i]: int(v) for i, v in enumerate(vector.tolist()) if v} == dict(counts)


def test_render_rejects_incomplete_attributes():
    with pytest.raises(ValueError, match="hat"):
        render_shapes(one().drop(columns=["hat"]))


def test_digit_images_match_scikit_learn():
    images, labels = digit_images()
    reference = load_digits()
    assert images.shape == (1797, 1, 8, 8)
    np.testing.assert_allclose(images[:, 0].numpy(), reference.images / 16.0, rtol=0, atol=1e-7)
    assert labels.tolist() == reference.target.tolist()
