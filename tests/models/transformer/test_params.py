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
    assert {cfg.d_vocab for cfg in PRESETS.values()} == {50257}
