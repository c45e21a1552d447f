"""Move weights between our ``Transformer`` and Hugging Face's ``LlamaForCausalLM``.

Hugging Face stores every projection as ``nn.Linear`` [out in]: ``q_proj`` [(head_index d_head)
d_model], ``k_proj`` / ``v_proj`` [(kv_head_index d_head) d_model], ``o_proj`` [d_model
(head_index d_head)], ``gate_proj`` / ``up_proj`` [d_mlp d_model], ``down_proj`` [d_model d_mlp].
Ours are TransformerLens's [in out] per head: ``W_Q`` [head_index d_model d_head], ``_W_K``
[kv_head_index d_model d_head] (grouped heads), ``W_gate`` / ``W_in`` [d_model d_mlp], ...

>>> cfg = TransformerConfig(d_model=16, n_layers=1, n_heads=4, d_mlp=32, d_vocab=20, n_ctx=8,
...     normalization="RMS", positional_embedding="rotary", gated_mlp=True, n_key_value_heads=2,
...     act_fn="silu", use_bias=False)
>>> hf = to_hf_llama(Transformer(cfg))   # a LlamaForCausalLM computing the same function
>>> back = from_hf_llama(hf)             # and back again

Converters refuse a configuration they cannot represent exactly (RoPE scaling, biases in
one place but not the other, another activation) instead of converting it approximately.
"""

from typing import Any

import einops
import torch
from torch import Tensor

from models.transformer.config import TransformerConfig
from models.transformer.model import Transformer

StateDict = dict[str, Tensor]
LLAMA_ACTIVATIONS = {"silu": "silu", "relu": "relu", "gelu": "gelu", "gelu_pytorch_tanh": "gelu_new"}


def require_llama_family(cfg: TransformerConfig) -> None:
    """Raise unless ``cfg`` has RMSNorm, rotary positions on whole heads, a gated MLP and no biases."""
    problems = []
    if cfg.normalization != "RMS":
        problems.append("normalization='RMS'")
    if cfg.positional_embedding != "rotary" or cfg.rotary_dim != cfg.d_head:
        problems.append("positional_embedding='rotary' with rotary_dim=d_head")
    if not cfg.gated_mlp:
        problems.append("gated_mlp=True")
    if cfg.use_bias:
        problems.append("use_bias=False (Llama's lm_head has no bias)")
    if cfg.act_fn not in {v: k for k, v in LLAMA_ACTIVATIONS.items()}:
        problems.append(f"act_fn in {sorted(set(LLAMA_ACTIVATIONS.values()))}")
    if problems:
        raise ValueError(f"Hugging Face Llama cannot represent this config; it needs {', '.join(problems)}.")


def llama_config(cfg: TransformerConfig) -> Any:
    """The ``transformers.LlamaConfig`` of ``cfg`` (eager attention, so patterns are returned)."""
    from transformers import LlamaConfig

    require_llama_family(cfg)
    act = {v: k for k, v in LLAMA_ACTIVATIONS.items()}[cfg.act_fn]
    config = LlamaConfig(
        vocab_size=cfg.d_vocab, hidden_size=cfg.d_model, intermediate_size=cfg.d_mlp,
        num_hidden_layers=cfg.n_layers, num_attention_heads=cfg.n_heads, num_key_value_heads=cfg.n_kv_heads,
        head_dim=cfg.d_head, hidden_act=act, max_position_embeddings=cfg.n_ctx, rms_norm_eps=cfg.eps,
        tie_word_embeddings=cfg.tied_embeddings, attention_bias=False, mlp_bias=False,
        rope_parameters={"rope_type": "default", "rope_theta": cfg.rotary_base},
        bos_token_id=None, eos_token_id=None, pad_token_id=None,
    )
    config._attn_implementation = "eager"
    return config


def config_from_llama(config: Any, **overrides: Any) -> TransformerConfig:
    """Our ``TransformerConfig`` for a ``LlamaConfig``; refuses options it would compute differently."""
    rope = dict(getattr(config, "rope_parameters", None) or {})
    rope_type = rope.pop("rope_type", "default")
    theta = rope.pop("rope_theta", getattr(config, "rope_theta", 10000.0))
    rope.pop("partial_rotary_factor", None) if rope.get("partial_rotary_factor", 1.0) == 1.0 else None
    if rope_type != "default" or rope:
        raise ValueError(f"rope_parameters {getattr(config, 'rope_parameters', None)} cannot be represented: our "
                         f"rotary embedding is RoPE without scaling (rope_type 'default', rope_theta only).")
    if getattr(config, "attention_bias", False) or getattr(config, "mlp_bias", False):
        raise ValueError("LlamaConfig with attention_bias or mlp_bias cannot be represented: our Llama family has "
                         "no biases (use_bias would also add one to the unembedding, which Llama lacks).")
    if getattr(config, "pretraining_tp", 1) != 1:
        raise ValueError(f"pretraining_tp={config.pretraining_tp} splits the matmuls (summing in another order); "
                         "set pretraining_tp=1.")
    if config.hidden_act not in LLAMA_ACTIVATIONS:
        raise ValueError(f"hidden_act={config.hidden_act!r} cannot be represented; ours are {sorted(LLAMA_ACTIVATIONS)}.")
    n_kv = config.num_key_value_heads or config.num_attention_heads
    fields = dict(
        d_model=config.hidden_size, n_layers=config.num_hidden_layers, n_heads=config.num_attention_heads,
        d_head=getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads,
        d_mlp=config.intermediate_size, d_vocab=config.vocab_size, n_ctx=config.max_position_embeddings,
        act_fn=LLAMA_ACTIVATIONS[config.hidden_act], eps=float(config.rms_norm_eps), normalization="RMS",
        positional_embedding="rotary", rotary_base=float(theta), gated_mlp=True,
        n_key_value_heads=None if n_kv == config.num_attention_heads else n_kv,
        tied_embeddings=bool(getattr(config, "tie_word_embeddings", False)), use_bias=False,
    )
    return TransformerConfig(**{**fields, **overrides})


def _kv_name(cfg: TransformerConfig, n: str) -> str:
    return f"attn._W_{n}" if cfg.n_key_value_heads is not None else f"attn.W_{n}"


def to_hf_llama_state_dict(sd: StateDict, cfg: TransformerConfig) -> StateDict:
    """Our state dict -> ``LlamaForCausalLM.state_dict()`` keys and layouts."""
    require_llama_family(cfg)
    out: StateDict = {"model.embed_tokens.weight": sd["embed.W_E"], "model.norm.weight": sd["ln_final.w"]}
    for L in range(cfg.n_layers):
        p, h = f"blocks.{L}.", f"model.layers.{L}."
        out[h + "input_layernorm.weight"] = sd[p + "ln1.w"]
        out[h + "post_attention_layernorm.weight"] = sd[p + "ln2.w"]
        out[h + "self_attn.q_proj.weight"] = einops.rearrange(
            sd[p + "attn.W_Q"], "head_index d_model d_head -> (head_index d_head) d_model")
        for n in "KV":
            out[h + f"self_attn.{n.lower()}_proj.weight"] = einops.rearrange(
                sd[p + _kv_name(cfg, n)], "head_index d_model d_head -> (head_index d_head) d_model")
        out[h + "self_attn.o_proj.weight"] = einops.rearrange(
            sd[p + "attn.W_O"], "head_index d_head d_model -> d_model (head_index d_head)")
        out[h + "mlp.gate_proj.weight"] = sd[p + "mlp.W_gate"].T
        out[h + "mlp.up_proj.weight"] = sd[p + "mlp.W_in"].T
        out[h + "mlp.down_proj.weight"] = sd[p + "mlp.W_out"].T
    out["lm_head.weight"] = sd["embed.W_E"] if cfg.tied_embeddings else sd["unembed.W_U"].T
    return {k: v.detach().clone().contiguous() for k, v in out.items()}


def from_hf_llama_state_dict(hf_sd: StateDict, cfg: TransformerConfig) -> StateDict:
    """``LlamaForCausalLM.state_dict()`` -> our state dict for ``cfg``."""
    require_llama_family(cfg)
    out: StateDict = {"embed.W_E": hf_sd["model.embed_tokens.weight"], "ln_final.w": hf_sd["model.norm.weight"]}
    for L in range(cfg.n_layers):
        p, h = f"blocks.{L}.", f"model.layers.{L}."
        out[p + "ln1.w"] = hf_sd[h + "input_layernorm.weight"]
        out[p + "ln2.w"] = hf_sd[h + "post_attention_layernorm.weight"]
        out[p + "attn.W_Q"] = einops.rearrange(
            hf_sd[h + "self_attn.q_proj.weight"], "(head_index d_head) d_model -> head_index d_model d_head",
            d_head=cfg.d_head)
        for n in "KV":
            out[p + _kv_name(cfg, n)] = einops.rearrange(
                hf_sd[h + f"self_attn.{n.lower()}_proj.weight"],
                "(head_index d_head) d_model -> head_index d_model d_head", d_head=cfg.d_head)
        out[p + "attn.W_O"] = einops.rearrange(
            hf_sd[h + "self_attn.o_proj.weight"], "d_model (head_index d_head) -> head_index d_head d_model",
            d_head=cfg.d_head)
        out[p + "mlp.W_gate"] = hf_sd[h + "mlp.gate_proj.weight"].T
        out[p + "mlp.W_in"] = hf_sd[h + "mlp.up_proj.weight"].T
        out[p + "mlp.W_out"] = hf_sd[h + "mlp.down_proj.weight"].T
    lm_head = hf_sd.get("lm_head.weight", hf_sd["model.embed_tokens.weight"])
    if cfg.tied_embeddings:
        if not torch.equal(lm_head, out["embed.W_E"]):
            raise ValueError("lm_head differs from embed_tokens, so it cannot load into tied_embeddings=True.")
    else:
        out["unembed.W_U"] = lm_head.T
    return {k: v.detach().clone().contiguous() for k, v in out.items()}


def to_hf_llama(model: Transformer) -> Any:
    """A ``transformers.LlamaForCausalLM`` (built locally, eval mode) computing the same function."""
    from transformers import LlamaForCausalLM

    hf = LlamaForCausalLM(llama_config(model.cfg)).to(model.embed.W_E.dtype).eval()
    missing, unexpected = hf.load_state_dict(to_hf_llama_state_dict(model.state_dict(), model.cfg), strict=False)
    missing = [k for k in missing if not (k == "lm_head.weight" and model.cfg.tied_embeddings)]
    if missing or unexpected:
        raise RuntimeError(f"Llama state dict mismatch: missing {missing}, unexpected {unexpected}")
    return hf


def from_hf_llama(hf_model: Any, **overrides: Any) -> Transformer:
    """Our ``Transformer`` holding a ``LlamaForCausalLM``'s weights (config read from the model)."""
    cfg = config_from_llama(hf_model.config, **overrides)
    model = Transformer(cfg).to(hf_model.dtype)
    model.load_state_dict(from_hf_llama_state_dict(hf_model.state_dict(), cfg), strict=True)
    return model
