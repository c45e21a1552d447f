"""Causal tracing on the Llama family (no positional embedding: the noise goes into ``hook_embed`` alone)."""

import numpy as np
import pytest
import torch

from interp.patching import causal_trace, embedding_std, trace_site_by_site
from tests.interp._llama import GROUPINGS, tiny_llama

TOKENS = torch.tensor([[4, 11, 12, 7, 8, 9]])
SUBJECT = (1, 3)
KINDS = ("resid", "mlp", "attn")


@pytest.mark.parametrize("grouping", list(GROUPINGS))
def test_causal_trace_on_a_llama_equals_one_forward_per_restored_site(grouping):
    model = tiny_llama(GROUPINGS[grouping], seed=8)
    samples, window, answer, seed = 3, 2, 3, 0
    std = embedding_std(model, TOKENS)
    df = causal_trace(model, TOKENS, SUBJECT, answer=answer, noise_std=3 * std, samples=samples, window=window,
                      seed=seed, max_rows=10)  # several chunks
    noise = torch.randn(samples, SUBJECT[1] - SUBJECT[0], model.cfg.d_model,
                        generator=torch.Generator().manual_seed(seed)) * 3 * std
    sites = [(kind, layer, pos) for kind in KINDS for layer in range(3) for pos in range(TOKENS.shape[1])]
    scores, corrupted = trace_site_by_site(model, TOKENS, SUBJECT, noise, answer, sites, window=window)
    expected = dict(zip(sites, scores))
    ours = df.set_index(["kind", "layer", "pos"])["score"]
    assert len(ours) == len(expected) == 3 * 3 * 6
    assert max(abs(ours[site] - value) for site, value in expected.items()) <= 1e-6
    assert df["corrupted"].iloc[0] == pytest.approx(corrupted, abs=1e-6)
    assert np.ptp(list(expected.values())) > 1e-3, "restoring some site should move the answer probability"
    # the last block's output at the last position is all the logits read: restoring it restores the clean run
    assert ours[("resid", 2, 5)] == pytest.approx(df["clean"].iloc[0], abs=1e-6)


def test_the_fast_engine_runs_and_gives_the_hooked_batches_numbers(monkeypatch):
    import interp.patching.tracing as tracing

    calls = []
    real = tracing.restored_scores
    monkeypatch.setattr(tracing, "restored_scores", lambda *a, **k: calls.append(1) or real(*a, **k))
    model = tiny_llama(GROUPINGS["grouped"], seed=3)
    std = embedding_std(model, TOKENS)
    kwargs = dict(answer=2, noise_std=3 * std, samples=4, window=3, seed=1)
    fast = causal_trace(model, TOKENS, SUBJECT, **kwargs)
    assert calls, "the fast engine should have traced a model that honours every shortcut"
    hooked = causal_trace(model, TOKENS, SUBJECT, fast=False, **kwargs)
    assert np.abs(fast["score"].to_numpy() - hooked["score"].to_numpy()).max() <= 1e-6
    assert fast["corrupted"].iloc[0] == pytest.approx(hooked["corrupted"].iloc[0], abs=1e-7)


def test_a_metric_reading_every_position_is_traced_by_the_hooked_batches(monkeypatch):
    import interp.patching.tracing as tracing

    calls = []
    real = tracing.restored_scores
    monkeypatch.setattr(tracing, "restored_scores", lambda *a, **k: calls.append(1) or real(*a, **k))
    model = tiny_llama(GROUPINGS["grouped"], seed=3)

    def every_position(logits):  # mean probability of token 2 over all positions
        return torch.softmax(logits, -1)[..., 2].mean(-1)

    df = causal_trace(model, TOKENS, SUBJECT, metric=every_position, noise_std=1.0, samples=2, window=2)
    assert not calls
    noise = torch.randn(2, 2, model.cfg.d_model, generator=torch.Generator().manual_seed(0))

    def noised(act, hook):
        act = act.clone()
        act[:, 1:3] += noise
        return act

    _, clean = model.run_with_cache(TOKENS)

    def restore(act, hook):
        act[:, 4] = clean["blocks.1.hook_resid_post"][0, 4]
        return act

    logits = model.run_with_hooks(TOKENS.repeat(2, 1), fwd_hooks=[("hook_embed", noised),
                                                                 ("blocks.1.hook_resid_post", restore)])
    row = df.set_index(["kind", "layer", "pos"]).loc[("resid", 1, 4)]
    assert row["score"] == pytest.approx(float(every_position(logits).mean().detach()), abs=1e-6)


@pytest.mark.slow
def test_on_smollm2_the_trace_equals_one_forward_per_site_on_transformer_lens(smollm2_and_its_bridge):
    """ROME's resolution (window 10 of 30 layers) on the real model: our fast trace on our SmolLM2 against
    ROME's one-forward-per-site procedure on TransformerLens's bridge, on a subset of sites."""
    model, bridge = smollm2_and_its_bridge
    text = "The capital of France is the city of"
    tokens = model.to_tokens(text)
    subject = model.tokenizer.span_tokens(text, "France")
    paris = model.to_single_token(" Paris")
    samples, seed, std = 3, 0, 0.05
    df = causal_trace(model, tokens, subject, answer=paris, noise_std=3 * std, samples=samples, window=10, seed=seed)
    noise = torch.randn(samples, subject[1] - subject[0], model.cfg.d_model,
                        generator=torch.Generator().manual_seed(seed)) * 3 * std
    last = tokens.shape[1] - 1
    sites = [(kind, layer, pos) for kind in KINDS for layer in (0, 4, 15, 29) for pos in (0, subject[0], subject[1], last)]
    theirs, corrupted = trace_site_by_site(bridge, tokens, subject, noise, paris, sites, window=10)
    ours = df.set_index(["kind", "layer", "pos"])["score"]
    assert max(abs(ours[site] - value) for site, value in zip(sites, theirs)) <= 1e-4
    assert df["corrupted"].iloc[0] == pytest.approx(corrupted, abs=1e-4)
    assert df["clean"].iloc[0] - df["corrupted"].iloc[0] > 0.2, "noising 'France' should cost ' Paris' probability"
    assert np.ptp(theirs) > 0.1
