"""Causal tracing on the Llama family (no positional embedding: the noise goes into ``hook_embed`` alone)."""

import numpy as np
import pytest
import torch

from interp.tracing import causal_trace, embedding_std, window_layers
from tests.interp._llama import GROUPINGS, tiny_llama

TOKENS = torch.tensor([[4, 11, 12, 7, 8, 9]])
SUBJECT = (1, 3)
KINDS = {"resid": "blocks.{layer}.hook_resid_post", "mlp": "blocks.{layer}.hook_mlp_out",
         "attn": "blocks.{layer}.hook_attn_out"}


def reference_trace(model, noise, answer, window):
    """ROME's procedure written out: one forward per restored site, the noise samples as its batch."""
    samples = noise.shape[0]
    _, clean = model.run_with_cache(TOKENS)
    n_layers, n_pos = model.cfg.n_layers, TOKENS.shape[1]

    def add_noise(act, hook):
        act = act.clone()
        act[:, SUBJECT[0]:SUBJECT[1]] += noise
        return act

    def score(hooks):
        logits = model.run_with_hooks(TOKENS.repeat(samples, 1), fwd_hooks=[("hook_embed", add_noise), *hooks])
        return torch.softmax(logits[:, -1], dim=-1)[:, answer].mean().item()

    def restore(name, pos):
        def hook(act, hook):
            act[:, pos] = clean[name][0, pos]
            return act

        return name, hook

    rows = {}
    for kind, pattern in KINDS.items():
        for layer in range(n_layers):
            restored = [layer] if kind == "resid" else window_layers(layer, window, n_layers)
            for pos in range(n_pos):
                rows[(kind, layer, pos)] = score([restore(pattern.format(layer=other), pos) for other in restored])
    return rows, score([])


@pytest.mark.parametrize("grouping", list(GROUPINGS))
def test_causal_trace_on_a_llama_equals_one_forward_per_restored_site(grouping):
    model = tiny_llama(GROUPINGS[grouping], seed=8)
    samples, window, answer, seed = 3, 2, 3, 0
    std = embedding_std(model, TOKENS)
    df = causal_trace(model, TOKENS, SUBJECT, answer=answer, noise_std=3 * std, samples=samples, window=window,
                      seed=seed, max_rows=10)  # several chunks
    noise = torch.randn(samples, SUBJECT[1] - SUBJECT[0], model.cfg.d_model,
                        generator=torch.Generator().manual_seed(seed)) * 3 * std
    expected, corrupted = reference_trace(model, noise, answer, window)
    ours = df.set_index(["kind", "layer", "pos"])["score"]
    assert len(ours) == len(expected) == 3 * 3 * 6
    assert max(abs(ours[site] - value) for site, value in expected.items()) <= 1e-6
    assert df["corrupted"].iloc[0] == pytest.approx(corrupted, abs=1e-6)
    assert np.ptp(list(expected.values())) > 1e-3, "restoring some site should move the answer probability"
    # the last block's output at the last position is all the logits read: restoring it restores the clean run
    assert ours[("resid", 2, 5)] == pytest.approx(df["clean"].iloc[0], abs=1e-6)
