"""Small random Llama-family models, and TransformerLens bridges over their Hugging Face form (not a test module)."""

import functools
import os
import tempfile

import torch

from models.transformer import Transformer, TransformerConfig

LLAMA = dict(normalization="RMS", positional_embedding="rotary", gated_mlp=True, act_fn="silu", use_bias=False,
             rotary_base=500.0)
# n_key_value_heads: 2 -> two query heads per key/value head; None -> one each
GROUPINGS = {"grouped": 2, "ungrouped": None}


def tiny_llama(n_key_value_heads=2, seed=0, dtype=torch.float32, n_layers=3) -> Transformer:
    """A 3-layer Llama (4 query heads, d_model 32) with every weight random, norm gains around 1, eval mode."""
    cfg = TransformerConfig(d_model=32, n_layers=n_layers, n_heads=4, d_mlp=48, d_vocab=50, n_ctx=16,
                            n_key_value_heads=n_key_value_heads, seed=seed, **LLAMA)
    model = Transformer(cfg).to(dtype)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():  # large enough that each site moves the logits well above rounding
            p.copy_(torch.randn(p.shape, generator=generator, dtype=dtype) * (0.1 if p.ndim == 1 else 0.25)
                    + (1.0 if p.ndim == 1 else 0.0))
    return model.eval()


@functools.lru_cache(maxsize=4)
def word_tokenizer(d_vocab: int = 50):
    """A Hugging Face fast tokenizer of ``d_vocab`` words ``t0 t1 ...`` (the bridge wants one)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    inner = Tokenizer(models.WordLevel({f"t{i}": i for i in range(d_vocab)}, unk_token="t0"))
    inner.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=inner, unk_token="t0", bos_token="t1", eos_token="t2",
                                   pad_token="t0")


def llama_bridge(model: Transformer):
    """TransformerLens's bridge over the Hugging Face ``LlamaForCausalLM`` with ``model``'s weights (eval mode).

    Booted from a saved folder, as a user boots a downloaded model; the folder is gone afterwards.
    """
    from transformer_lens.model_bridge import TransformerBridge

    from models.transformer.convert_llama import to_hf_llama

    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local folder: no Hub probes
    with tempfile.TemporaryDirectory() as folder:
        to_hf_llama(model).save_pretrained(folder)
        word_tokenizer(model.cfg.d_vocab).save_pretrained(folder)
        bridge = TransformerBridge.boot_transformers(folder, dtype=model.W_E.dtype)
    return bridge.eval()
