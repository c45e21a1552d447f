import itertools

import pytest
import torch

from models.transformer import PRESETS, Transformer, count_parameters
from tests.models.transformer.conftest import small_config

OPTIONS = list(itertools.product(["relu", "gelu", "gelu_new"], ["LN", None], [True, False], [True, False], [32, None]))


@pytest.mark.parametrize("act_fn, normalization, tied, use_bias, d_mlp", OPTIONS)
def test_count_matches_instantiated_model(act_fn, normalization, tied, use_bias, d_mlp):
    cfg = small_config(act_fn=act_fn, normalization=normalization, tied_embeddings=tied, use_bias=use_bias,
                       d_mlp=d_mlp, d_head=5, n_heads=3)
    counts = count_parameters(cfg)
    model = Transformer(cfg)
    assert counts["total"] == sum(p.numel() for p in model.parameters()), f"analytic count wrong for {cfg}"
    def component_of(name: str) -> str:
        parts = name.split(".")
        if parts[0] == "blocks":
            return "ln" if parts[2].startswith("ln") else parts[2]
        return {"ln_final": "ln"}.get(parts[0], parts[0])

    for component in ("embed", "pos_embed", "attn", "mlp", "ln", "unembed"):
        actual = sum(p.numel() for name, p in model.named_parameters() if component_of(name) == component)
        assert counts[component] == actual, f"{component}: counted {counts[component]}, model has {actual}"


def test_gpt3_reproduces_3blue1brown_table():
    counts = count_parameters(PRESETS["gpt3"], biases=False, layer_norms=False, pos_embed=False)
    assert counts["embed"] == 617_558_016 == 50257 * 12288
    assert counts["unembed"] == 617_558_016
    assert counts["attn"] == 57_982_058_496 == 96 * 4 * 12288**2
    assert counts["mlp"] == 115_964_116_992
    assert counts["pos_embed"] == counts["ln"] == 0
    assert round(counts["total"] / 1e9) == 175


@pytest.mark.parametrize("name, published", [
    ("gpt2-small", 124_439_808), ("gpt2-medium", 354_823_168),
    ("gpt2-large", 774_030_080), ("gpt2-xl", 1_557_611_200),
])
def test_gpt2_presets_match_published_and_hf(name, published):
    from transformers import GPT2LMHeadModel

    from models.transformer.convert import gpt2_config

    assert count_parameters(PRESETS[name])["total"] == published
    with torch.device("meta"):  # shapes only: nothing is allocated
        hf = GPT2LMHeadModel(gpt2_config(PRESETS[name]))
    assert sum(p.numel() for p in hf.parameters()) == published, "HF GPT-2 disagrees with the published size"


def test_presets_have_expected_context():
    assert PRESETS["gpt3"].n_ctx == 2048 and PRESETS["gpt2-small"].n_ctx == 1024
    assert {cfg.d_vocab for name, cfg in PRESETS.items() if name.startswith("gpt")} == {50257}


LLAMA_OPTIONS = list(itertools.product([None, 1, 3], [True, False], [8, 6], [True, False]))


@pytest.mark.parametrize("n_kv, tied, rotary_dim, gated", LLAMA_OPTIONS)
def test_count_matches_instantiated_llama_family_model(n_kv, tied, rotary_dim, gated):
    cfg = small_config(n_heads=3, d_head=8, n_key_value_heads=n_kv, tied_embeddings=tied, normalization="RMS",
                       positional_embedding="rotary", rotary_dim=rotary_dim, gated_mlp=gated, act_fn="silu",
                       use_bias=False)
    model = Transformer(cfg)
    assert count_parameters(cfg)["total"] == sum(p.numel() for p in model.parameters()), f"wrong for {cfg}"
    assert count_parameters(cfg)["pos_embed"] == 0, "rotary models have no W_pos"


@pytest.mark.parametrize("n_layers, d_model, n_heads, n_kv, d_mlp, tied", [
    (2, 64, 8, 2, 96, True), (3, 48, 6, 6, 100, False), (1, 32, 4, 1, 7, True),
])
def test_llama_counts_equal_hugging_face(n_layers, d_model, n_heads, n_kv, d_mlp, tied):
    from transformers import LlamaForCausalLM

    from models.transformer.convert_llama import llama_config

    cfg = small_config(n_layers=n_layers, d_model=d_model, n_heads=n_heads, n_key_value_heads=n_kv, d_mlp=d_mlp,
                       tied_embeddings=tied, normalization="RMS", positional_embedding="rotary", gated_mlp=True,
                       act_fn="silu", use_bias=False)
    with torch.device("meta"):
        hf = LlamaForCausalLM(llama_config(cfg))
    assert count_parameters(cfg)["total"] == sum(p.numel() for p in hf.parameters())


@pytest.mark.parametrize("name, published", [("smollm2-135m", 134_515_008), ("llama-2-7b", 6_738_415_616)])
def test_llama_presets_match_published_and_hf(name, published):
    from transformers import LlamaForCausalLM

    from models.transformer.convert_llama import llama_config

    assert count_parameters(PRESETS[name])["total"] == published
    with torch.device("meta"):
        hf = LlamaForCausalLM(llama_config(PRESETS[name]))
    assert sum(p.numel() for p in hf.parameters()) == published, "HF Llama disagrees with the published size"
