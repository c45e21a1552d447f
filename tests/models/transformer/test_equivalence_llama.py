"""Same weights, same numbers: our Llama family against Hugging Face's Llama and TransformerLens's bridge."""

import pytest
import torch

from models.transformer import Transformer
from models.transformer.convert import config_from_gpt2, to_bridge, to_hf_gpt2
from models.transformer.convert_llama import (
    config_from_llama, from_hf_llama, llama_config, to_hf_llama,
)
from tests.models.transformer.conftest import small_config
from tests.models.transformer.llama_reference import hf_llama_activations, hf_llama_in_model_dtype

COMPARED = ["blocks.{L}.hook_resid_pre", "blocks.{L}.attn.hook_pattern", "blocks.{L}.mlp.hook_post",
            "blocks.{L}.hook_resid_post"]
LLAMA = dict(normalization="RMS", positional_embedding="rotary", gated_mlp=True, act_fn="silu", use_bias=False,
             n_heads=4, d_model=32, d_mlp=48, rotary_base=500.0)
CONFIGS = {
    "grouped-tied": small_config(**LLAMA, n_key_value_heads=2, tied_embeddings=True),
    "grouped-untied": small_config(**LLAMA, n_key_value_heads=1),
    "ungrouped-tied": small_config(**LLAMA, tied_embeddings=True),
    "ungrouped-untied-d_head": small_config(**LLAMA, d_head=6, n_layers=3),
}


def randomised(cfg, dtype, seed=2):
    """Every parameter random (norm gains around 1), so every weight is exercised."""
    model = Transformer(cfg).to(dtype)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=generator, dtype=dtype) * 0.3 + (1.0 if p.ndim == 1 else 0.0))
    return model.eval()


def tokens_for(cfg, batch=2):
    return torch.randint(0, cfg.d_vocab, (batch, cfg.n_ctx), generator=torch.Generator().manual_seed(3))


@pytest.mark.parametrize("name", list(CONFIGS))
def test_matches_hf_llama_in_float64_to_1e9(name):
    cfg = CONFIGS[name]
    model = randomised(cfg, torch.float64)
    tokens = tokens_for(cfg)
    hf = to_hf_llama(model)
    with hf_llama_in_model_dtype():
        hf_logits, hf_acts = hf_llama_activations(hf, tokens)
    logits, cache = model.run_with_cache(tokens)
    torch.testing.assert_close(logits, hf_logits, rtol=0, atol=1e-9, msg=lambda m: f"logits differ from HF: {m}")
    for L in range(cfg.n_layers):
        for key in (k.format(L=L) for k in COMPARED):
            torch.testing.assert_close(cache[key], hf_acts[key], rtol=0, atol=1e-9, msg=lambda m: f"{key}: {m}")
    back = from_hf_llama(hf)
    assert back.cfg == cfg, "config changed in a round trip through Hugging Face"
    for key, value in model.state_dict().items():
        assert torch.equal(back.state_dict()[key], value), f"{key} changed in a round trip through Llama"


@pytest.mark.parametrize("name", list(CONFIGS))
def test_matches_hf_llama_as_is_in_float32(name):
    """Without lifting Hugging Face's float32 casts (they are no-ops in float32)."""
    cfg = CONFIGS[name]
    model = randomised(cfg, torch.float32)
    tokens = tokens_for(cfg)
    hf_logits, hf_acts = hf_llama_activations(to_hf_llama(model), tokens)
    logits, cache = model.run_with_cache(tokens)
    torch.testing.assert_close(logits, hf_logits, rtol=0, atol=1e-4)
    for key in (k.format(L=L) for k in COMPARED for L in range(cfg.n_layers)):
        torch.testing.assert_close(cache[key], hf_acts[key], rtol=1e-5, atol=1e-4, msg=lambda m: f"{key}: {m}")


def test_float64_agreement_is_not_vacuous():
    """The comparison can fail: a model whose rotary base differs by 1% is caught."""
    cfg = CONFIGS["grouped-tied"]
    model = randomised(cfg, torch.float64)
    hf = to_hf_llama(randomised(small_config(**{**LLAMA, "rotary_base": 505.0}, n_key_value_heads=2,
                                             tied_embeddings=True), torch.float64))
    with hf_llama_in_model_dtype():
        hf_logits, _ = hf_llama_activations(hf, tokens_for(cfg))
    assert (model(tokens_for(cfg)) - hf_logits).abs().max() > 1e-6


def test_left_padding_equals_each_row_alone():
    cfg = CONFIGS["grouped-tied"]
    model = randomised(cfg, torch.float64)
    tokens = tokens_for(cfg, batch=3)
    lengths = [12, 7, 3]
    padded = torch.zeros_like(tokens)
    mask = torch.zeros_like(tokens)
    for row, n in enumerate(lengths):
        padded[row, -n:], mask[row, -n:] = tokens[row, :n], 1
    logits = model(padded, attention_mask=mask)
    hf = to_hf_llama(model)
    with hf_llama_in_model_dtype(), torch.no_grad():
        # positions from the mask, as transformers' generate() computes them (a plain forward counts pads)
        hf_logits = hf(padded, attention_mask=mask, position_ids=(mask.cumsum(-1) - 1).clamp(min=0)).logits
    for row, n in enumerate(lengths):
        alone = model(tokens[row : row + 1, :n])
        torch.testing.assert_close(logits[row : row + 1, -n:], alone, rtol=0, atol=1e-9,
                                   msg=lambda m: f"row {row} differs from the prompt alone: {m}")
        torch.testing.assert_close(logits[row, -n:], hf_logits[row, -n:], rtol=0, atol=1e-9)


def test_key_value_prefix_equals_the_full_forward():
    cfg = CONFIGS["grouped-untied"]
    model = randomised(cfg, torch.float64)
    tokens = tokens_for(cfg)
    full, cache = model.run_with_cache(tokens)
    split = 5
    kv = [(cache[f"blocks.{L}.attn.hook_k"][:, :split], cache[f"blocks.{L}.attn.hook_v"][:, :split])
          for L in range(cfg.n_layers)]
    torch.testing.assert_close(model(tokens[:, split:], prefix_kv=kv), full[:, split:], rtol=0, atol=1e-12)


@pytest.mark.parametrize("change, message", [
    (dict(rope_parameters={"rope_type": "linear", "rope_theta": 10000.0, "factor": 2.0}), "rope"),
    (dict(attention_bias=True), "bias"),
    (dict(mlp_bias=True), "bias"),
    (dict(hidden_act="gelu_fast"), "hidden_act"),
])
def test_llama_converter_refuses_what_it_cannot_represent(change, message):
    config = llama_config(CONFIGS["grouped-tied"])
    for key, value in change.items():
        setattr(config, key, value)
    with pytest.raises(ValueError, match=message):
        config_from_llama(config)


def test_llama_converter_refuses_gpt2_family_configs():
    with pytest.raises(ValueError, match="RMS"):
        to_hf_llama(Transformer(small_config()))
    with pytest.raises(ValueError, match="Llama family"):
        to_hf_gpt2(Transformer(CONFIGS["grouped-tied"]))
    with pytest.raises(ValueError, match="Llama family"):
        to_bridge(Transformer(CONFIGS["grouped-tied"]))


@pytest.mark.parametrize("option, value", [
    ("scale_attn_weights", False), ("scale_attn_by_inverse_layer_idx", True), ("reorder_and_upcast_attn", True),
    ("activation_function", "gelu_fast"),
])
def test_gpt2_converter_refuses_configs_it_computes_differently(option, value):
    from transformers import GPT2Config

    config = GPT2Config(n_embd=16, n_layer=1, n_head=2, vocab_size=20, n_positions=8, **{option: value})
    with pytest.raises(ValueError, match=option):
        config_from_gpt2(config)
