"""Same weights, same numbers: our Transformer against TransformerLens's native bridge and HF GPT-2."""

import pytest
import torch

from models.transformer import Transformer
from models.transformer.convert import (
    from_bridge, from_hf_gpt2, to_bridge, to_bridge_state_dict, from_bridge_state_dict, to_hf_gpt2,
)
from tests.models.transformer.conftest import small_config

TOLERANCE = {torch.float32: 1e-4, torch.float64: 1e-9}
COMPARED = ["blocks.{L}.hook_resid_pre", "blocks.{L}.attn.hook_pattern", "blocks.{L}.mlp.hook_post",
            "blocks.{L}.hook_resid_post"]


def randomised(cfg, dtype):
    """A model with every parameter random, so biases and LN gains are exercised too."""
    model = Transformer(cfg).to(dtype)
    generator = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=generator, dtype=dtype) * 0.3 + (1.0 if p.ndim == 1 else 0.0))
    return model


def tokens_for(cfg):
    return torch.randint(0, cfg.d_vocab, (2, cfg.n_ctx), generator=torch.Generator().manual_seed(3))


def hf_activations(hf, tokens):
    """GPT-2's residual stream, patterns and MLP activations, captured with torch hooks."""
    acts, handles = {}, []
    for L, block in enumerate(hf.transformer.h):
        def pre(module, args, kwargs, L=L):
            acts[f"blocks.{L}.hook_resid_pre"] = (args[0] if args else kwargs["hidden_states"]).detach()

        def post(module, args, kwargs, output, L=L):
            acts[f"blocks.{L}.hook_resid_post"] = (output[0] if isinstance(output, tuple) else output).detach()

        def mlp_post(module, args, L=L):
            acts[f"blocks.{L}.mlp.hook_post"] = args[0].detach()

        handles += [block.register_forward_pre_hook(pre, with_kwargs=True),
                    block.register_forward_hook(post, with_kwargs=True),
                    block.mlp.c_proj.register_forward_pre_hook(mlp_post)]
    try:
        out = hf(tokens, output_attentions=True)
    finally:
        for handle in handles:
            handle.remove()
    for L, pattern in enumerate(out.attentions):
        acts[f"blocks.{L}.attn.hook_pattern"] = pattern.detach()
    return out.logits.detach(), acts


CONFIGS = {
    "gelu_new-tied": small_config(tied_embeddings=True),
    "relu-untied": small_config(act_fn="relu"),
    "gelu": small_config(act_fn="gelu", n_heads=4),
}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("name", list(CONFIGS))
def test_matches_hf_gpt2(name, dtype):
    cfg = CONFIGS[name]
    model = randomised(cfg, dtype)
    if model.unembed.b_U is not None:
        with torch.no_grad():
            model.unembed.b_U.zero_()  # GPT-2's lm_head has no bias
    tokens = tokens_for(cfg)
    hf = to_hf_gpt2(model)
    hf_logits, hf_acts = hf_activations(hf, tokens)
    logits, cache = model.run_with_cache(tokens)
    tol = TOLERANCE[dtype]
    torch.testing.assert_close(logits, hf_logits, rtol=0, atol=tol, msg=lambda m: f"logits differ from GPT-2: {m}")
    for L in range(cfg.n_layers):
        for key in (k.format(L=L) for k in COMPARED):
            torch.testing.assert_close(cache[key], hf_acts[key], rtol=0, atol=tol, msg=lambda m: f"{key}: {m}")
    back = from_hf_gpt2(hf)
    for key, value in model.state_dict().items():
        assert torch.equal(back.state_dict()[key], value), f"{key} changed in a round trip through GPT-2"


BRIDGE_CONFIGS = {
    **CONFIGS,
    "attn-only": small_config(d_mlp=None),
    "no-ln-no-bias": small_config(normalization=None, use_bias=False),
    "d_head-not-d_model/n_heads": small_config(d_head=5, n_heads=3),
}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("name", list(BRIDGE_CONFIGS))
def test_matches_transformer_lens_bridge(name, dtype):
    cfg = BRIDGE_CONFIGS[name]
    model = randomised(cfg, dtype)
    tokens = tokens_for(cfg)
    bridge = to_bridge(model)
    tl_logits, tl_cache = bridge.run_with_cache(tokens)
    logits, cache = model.run_with_cache(tokens)
    tol = TOLERANCE[dtype]
    assert tl_logits.dtype == dtype
    torch.testing.assert_close(logits, tl_logits, rtol=0, atol=tol, msg=lambda m: f"logits differ from TL: {m}")
    for L in range(cfg.n_layers):
        for template in COMPARED:
            key = template.format(L=L)
            if "mlp" in key and cfg.attn_only:
                continue
            torch.testing.assert_close(cache[key], tl_cache[key], rtol=0, atol=tol, msg=lambda m: f"{key}: {m}")
    # Every hook the bridge shares with us by name holds the same activation, except
    # hook_attn_scores: TL 4.3's bridge fires it on the native model with the
    # post-softmax weights (AttentionBridge reuses the returned pattern), whereas we
    # keep TransformerLens's HookedTransformer meaning, the masked pre-softmax scores.
    for key in cache:
        if key.endswith("hook_attn_scores"):
            torch.testing.assert_close(cache[key].softmax(-1), tl_cache[key], rtol=0, atol=tol,
                                       msg=lambda m: f"{key}: bridge no longer fires the pattern here? {m}")
        elif key in tl_cache:
            torch.testing.assert_close(cache[key], tl_cache[key], rtol=0, atol=tol, msg=lambda m: f"{key}: {m}")
    back = from_bridge(bridge, cfg)
    for key, value in model.state_dict().items():
        assert torch.equal(back.state_dict()[key], value), f"{key} changed in a round trip through the bridge"


def test_conversion_refuses_to_drop_nonzero_biases():
    cfg = small_config()
    bridge_sd = to_bridge_state_dict(randomised(cfg, torch.float32).state_dict(), cfg)
    with pytest.raises(ValueError, match="use_bias"):
        from_bridge_state_dict(bridge_sd, small_config(use_bias=False))


def test_gpt2_refuses_a_nonzero_unembedding_bias():
    with pytest.raises(ValueError, match="lm_head has no bias"):
        to_hf_gpt2(randomised(small_config(), torch.float32))


def test_gpt2_needs_standard_heads():
    with pytest.raises(ValueError, match="d_model"):
        to_hf_gpt2(Transformer(small_config(d_head=5, n_heads=3)))
