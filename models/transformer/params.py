"""Parameter counts computed from the config alone, and presets for GPT-2, GPT-3, SmolLM2 and Llama 2.

Nothing is allocated, so ``count_parameters(PRESETS["gpt3"])`` is instant.

>>> counts = count_parameters(PRESETS["gpt3"], biases=False, layer_norms=False, pos_embed=False)
>>> counts["embed"], counts["attn"], counts["mlp"]
(617558016, 57982058496, 115964116992)
"""

from models.transformer.config import TransformerConfig

COMPONENTS = ("embed", "pos_embed", "attn", "mlp", "ln", "unembed")


def count_parameters(
    cfg: TransformerConfig, *, biases: bool = True, layer_norms: bool = True, pos_embed: bool = True
) -> dict[str, int]:
    """Parameters per component (``embed, pos_embed, attn, mlp, ln, unembed``) and ``total``.

    With every switch on, ``total == sum(p.numel() for p in Transformer(cfg).parameters())``.
    ``biases=False`` leaves out every bias (attention, MLP, unembedding and the LN ``b``),
    ``layer_norms=False`` every LayerNorm, ``pos_embed=False`` the position embedding:
    3Blue1Brown's GPT-3 table ("The Parameter Count", Chapter 5/6) counts weight
    matrices only.
    """
    d_model, n_layers, n_heads, n_kv, d_head = cfg.d_model, cfg.n_layers, cfg.n_heads, cfg.n_kv_heads, cfg.d_head
    bias = cfg.use_bias and biases
    # W_Q, W_O per query head; W_K, W_V per key/value head (grouped-query attention shares them)
    attn = 2 * (n_heads + n_kv) * d_model * d_head + ((n_heads + 2 * n_kv) * d_head + d_model if bias else 0)
    n_mlp_matrices = 3 if cfg.gated_mlp else 2  # W_gate, W_in, W_out
    mlp = 0 if cfg.d_mlp is None else n_mlp_matrices * d_model * cfg.d_mlp + (cfg.d_mlp + d_model if bias else 0)
    n_lns = 0 if cfg.normalization is None else n_layers * (1 if cfg.attn_only else 2) + 1
    ln_each = d_model * (2 if biases and cfg.normalization == "LN" else 1)  # RMSNorm has a gain only
    counts = {
        "embed": cfg.d_vocab * d_model,
        "pos_embed": cfg.n_ctx * d_model if pos_embed and cfg.positional_embedding == "standard" else 0,
        "attn": n_layers * attn,
        "mlp": n_layers * mlp,
        "ln": n_lns * ln_each if layer_norms else 0,
        "unembed": 0 if cfg.tied_embeddings else d_model * cfg.d_vocab + (cfg.d_vocab if bias else 0),
    }
    counts["total"] = sum(counts[name] for name in COMPONENTS)
    return counts


def _gpt2(d_model: int, n_layers: int, n_heads: int) -> TransformerConfig:
    # Radford et al. 2019, Table 2; d_mlp = 4 d_model, tied embeddings, no lm_head bias.
    return TransformerConfig(
        d_model=d_model, n_layers=n_layers, n_heads=n_heads, d_mlp=4 * d_model, d_vocab=50257, n_ctx=1024,
        act_fn="gelu_new", normalization="LN", tied_embeddings=True, use_bias=True,
    )


PRESETS: dict[str, TransformerConfig] = {
    # Brown et al. 2020, Table 2.1 (GPT-3 175B). Untied so that, as in 3Blue1Brown's
    # table, the unembedding is counted as its own 617,558,016 weights.
    "gpt3": TransformerConfig(
        d_model=12288, n_layers=96, n_heads=96, d_head=128, d_mlp=4 * 12288, d_vocab=50257, n_ctx=2048,
        act_fn="gelu_new", normalization="LN", tied_embeddings=False, use_bias=True,
    ),
    "gpt2-small": _gpt2(768, 12, 12),
    "gpt2-medium": _gpt2(1024, 24, 16),
    "gpt2-large": _gpt2(1280, 36, 20),
    "gpt2-xl": _gpt2(1600, 48, 25),
    # SmolLM2-135M (Allal et al. 2025; its config.json): 134,515,008 parameters, tied embeddings
    "smollm2-135m": TransformerConfig(
        d_model=576, n_layers=30, n_heads=9, d_head=64, n_key_value_heads=3, d_mlp=1536, d_vocab=49152,
        n_ctx=8192, act_fn="silu", normalization="RMS", eps=9.999999747378752e-06, positional_embedding="rotary",
        rotary_base=100000.0, gated_mlp=True, tied_embeddings=True, use_bias=False,
    ),
    # Llama 2 7B (Touvron et al. 2023, Table 1; meta-llama/Llama-2-7b-hf): 6,738,415,616 parameters
    "llama-2-7b": TransformerConfig(
        d_model=4096, n_layers=32, n_heads=32, d_mlp=11008, d_vocab=32000, n_ctx=4096, act_fn="silu",
        normalization="RMS", eps=1e-5, positional_embedding="rotary", rotary_base=10000.0, gated_mlp=True,
        tied_embeddings=False, use_bias=False,
    ),
}
