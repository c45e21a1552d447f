"""CLIP: the loss against Radford et al.'s pseudocode, embeddings, hooks, errors, and a tiny
training run that reads attributes zero-shot."""

import pytest
import torch
import torch.nn.functional as F

from models.clip import Clip, ClipConfig, contrastive_loss, train_clip, zero_shot_classify
from models.data.shapes import all_captions, encode_captions, make_shapes

SMALL = dict(d_model=32, d_mlp=64, d_embed=8)


def test_loss_with_distinct_captions_is_radford_figure_3():
    logits = torch.randn(6, 6, generator=torch.Generator().manual_seed(0)) * 3
    labels = torch.arange(6)
    reference = (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2
    torch.testing.assert_close(contrastive_loss(logits, torch.arange(6)), reference)


def test_loss_treats_duplicate_captions_as_shared_positives():
    # Images 0 and 1 share a caption: each of them should spread its target over both columns.
    logits = torch.tensor([[2.0, 1.0, 0.0], [0.5, 1.5, -1.0], [0.0, 0.3, 2.0]])
    ids = torch.tensor([7, 7, 9])
    log_rows, log_cols = F.log_softmax(logits, 1), F.log_softmax(logits.T, 1)
    image_loss = -(0.5 * (log_rows[0, 0] + log_rows[0, 1]) + 0.5 * (log_rows[1, 0] + log_rows[1, 1]) + log_rows[2, 2]) / 3
    caption_loss = -(0.5 * (log_cols[0, 0] + log_cols[0, 1]) + 0.5 * (log_cols[1, 0] + log_cols[1, 1]) + log_cols[2, 2]) / 3
    torch.testing.assert_close(contrastive_loss(logits, ids), (image_loss + caption_loss) / 2)


def test_logits_are_scaled_cosines_of_unit_embeddings():
    clip = Clip(ClipConfig(**SMALL))
    images, tokens = torch.rand(4, 1, 16, 16), encode_captions(all_captions()[:3])
    image_embed, caption_embed = clip.encode_image(images), clip.encode_caption(tokens)
    torch.testing.assert_close(image_embed.norm(dim=-1), torch.ones(4))
    torch.testing.assert_close(caption_embed.norm(dim=-1), torch.ones(3))
    torch.testing.assert_close(clip(images, tokens), (1 / 0.07) * image_embed @ caption_embed.T)
    torch.testing.assert_close(clip.encode_caption(all_captions()[:3]), caption_embed)


def test_hooks_cover_both_encoders_and_padding_is_ignored():
    clip = Clip(ClipConfig(**SMALL))
    _, cache = clip.run_with_cache(torch.rand(2, 1, 16, 16), encode_captions(["a circle", "a square"]))
    for name in ("image_encoder.hook_embed", "image_encoder.mlp.hook_post", "image_encoder.hook_embedding",
                 "caption_encoder.hook_embed", "caption_encoder.hook_pooled", "caption_encoder.hook_embedding", "hook_logits"):
        assert name in cache, f"missing hook {name}"
    short = encode_captions(["a circle"])[:, :2]  # the same caption without its padding
    torch.testing.assert_close(clip.encode_caption(short), clip.encode_caption(["a circle"]))


def test_bad_inputs_are_clear_errors():
    clip = Clip(ClipConfig(**SMALL))
    with pytest.raises(ValueError, match="unknown word"):
        clip.encode_caption(["a blue circle"])
    with pytest.raises(ValueError, match=r"expected images of shape \[batch 1 16 16\]"):
        clip.encode_image(torch.rand(2, 1, 8, 8))
    with pytest.raises(ValueError, match="one caption per image"):
        train_clip(clip, torch.rand(3, 1, 16, 16), ["a circle"], steps=1)
    with pytest.raises(ValueError, match="d_embed"):
        ClipConfig(d_embed=0)


def test_a_short_training_run_reads_attributes_zero_shot():
    data = make_shapes(800, seed=0)
    clip = Clip(ClipConfig(**SMALL))
    losses = train_clip(clip, data.images, data.captions, steps=60, batch_size=96, lr=3e-3)
    assert losses["loss"].tail(10).mean() < losses["loss"].head(5).mean() - 0.5
    test = make_shapes(300, seed=1)
    best = zero_shot_classify(clip, test.images, all_captions())
    predicted_hat = torch.tensor(["with a hat" in all_captions()[i] for i in best.tolist()])
    accuracy = (predicted_hat == torch.tensor(test.attributes["hat"].to_numpy())).float().mean()
    assert accuracy > 0.8, f"zero-shot hat accuracy {accuracy:.2f} should be far above chance (0.5)"
