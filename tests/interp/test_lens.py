"""The logit lens against TransformerLens's accumulated residual stream, on both families."""

import pytest
import torch

from interp.lens import lens_labels, lens_names, lens_top, logit_lens
from models.transformer import Transformer, TransformerConfig

LLAMA = {"normalization": "RMS", "positional_embedding": "rotary", "gated_mlp": True, "act_fn": "silu",
         "n_key_value_heads": 1}


@pytest.mark.parametrize("extra", [{}, LLAMA], ids=["gpt2", "llama"])
def test_lens_equals_transformer_lens_accumulated_resid_through_the_final_norm(extra):
    torch.manual_seed(0)
    cfg = TransformerConfig(d_model=32, n_layers=3, n_heads=2, d_mlp=64, d_vocab=50, n_ctx=16, **extra)
    model = Transformer(cfg).eval()
    tokens = torch.randint(0, 50, (1, 7))
    probs = logit_lens(model, tokens)
    _, cache = model.run_with_cache(tokens)
    resid = cache.accumulated_resid(incl_mid=False, apply_ln=False)[:, 0]  # [layer pos d_model]: embed .. final
    expected = model.unembed(model.ln_final(resid)).softmax(-1)
    assert probs.shape == (4, 7, 50)
    torch.testing.assert_close(probs, expected, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(probs[-1], model(tokens)[0].softmax(-1), atol=1e-6, rtol=1e-5)
    logits, cache = model.run_with_cache(tokens, names_filter=lens_names(3))
    assert torch.equal(logit_lens(model, tokens, logits=logits, cache=cache), probs)
    with pytest.raises(ValueError, match="both logits and cache"):
        logit_lens(model, tokens, cache=cache)
    top = lens_top(probs, k=3)
    assert torch.equal(top.indices[..., 0], probs.argmax(-1))
    assert lens_labels(3) == ["embed", "0", "1", "2"]


def test_lens_refuses_a_batch_and_a_model_whose_output_is_not_the_unembedded_residual():
    cfg = TransformerConfig(d_model=16, n_layers=1, n_heads=2, d_mlp=32, d_vocab=20, n_ctx=8)
    model = Transformer(cfg).eval()
    with pytest.raises(ValueError, match=r"\[1 pos\]"):
        logit_lens(model, torch.zeros(2, 3, dtype=torch.long))
    run_with_cache = model.run_with_cache

    def temperature_scaled(*args, **kwargs):  # an output that is not unembed(ln_final(resid))
        logits, cache = run_with_cache(*args, **kwargs)
        return logits * 3, cache

    model.run_with_cache = temperature_scaled
    with pytest.raises(RuntimeError, match="differs from the model's own output"):
        logit_lens(model, torch.tensor([[1, 2, 3]]))
