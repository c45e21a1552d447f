"""Move weights between our ``Transformer`` and its two reference implementations.

* TransformerLens's native bridge (``TransformerBridge.boot_native``): ``nn.Linear``
  layout, keys ``blocks.{L}.attn.q.weight`` [(head_index d_head) d_model], ...
* Hugging Face ``GPT2LMHeadModel``: ``Conv1D`` layout [in out], Q, K and V fused in
  ``c_attn``, keys ``transformer.h.{L}.attn.c_attn.weight`` [d_model (3 d_model)], ...

>>> cfg = TransformerConfig(d_model=16, n_layers=1, n_heads=2, d_mlp=32, d_vocab=20, n_ctx=8)
>>> model = Transformer(cfg)
>>> hf = to_hf_gpt2(model)      # a GPT2LMHeadModel computing the same function
>>> back = from_hf_gpt2(hf)     # and back again

Peers have parameters we may lack (the bridge always has biases and ``b_U``;
GPT-2 always has biases): those are written as zeros, and reading them back
refuses non-zero values rather than silently dropping them.
"""

from typing import Any, Optional

import einops
import torch
from torch import Tensor

from models.transformer.config import TransformerConfig
from models.transformer.model import Transformer

StateDict = dict[str, Tensor]


def _zeros_like_bias(sd: StateDict, name: str, shape: tuple[int, ...], like: Tensor) -> Tensor:
    return sd[name] if name in sd else torch.zeros(shape, dtype=like.dtype, device=like.device)


def _expect_zero(tensor: Tensor, what: str, fix: str = "") -> None:
    if torch.count_nonzero(tensor):
        raise ValueError(
            f"{what} is non-zero but the target has no such parameter, so converting would change the "
            f"model; " + (fix or "convert into a config with use_bias=True and tied_embeddings=False.")
        )


def _W_U(sd: StateDict, cfg: TransformerConfig) -> Tensor:
    return sd["embed.W_E"].T if cfg.tied_embeddings else sd["unembed.W_U"]


# ----- TransformerLens native bridge ---------------------------------------------------------


def bridge_config(cfg: TransformerConfig, dtype: torch.dtype = torch.float32) -> Any:
    """The ``TransformerBridgeConfig`` of a native bridge model with ``cfg``'s architecture."""
    from transformer_lens.config import TransformerBridgeConfig

    require_standard_family(cfg, "TransformerLens's native bridge")
    return TransformerBridgeConfig(
        d_model=cfg.d_model, n_layers=cfg.n_layers, n_heads=cfg.n_heads, d_head=cfg.d_head,
        d_mlp=cfg.d_mlp if cfg.d_mlp is not None else 4 * cfg.d_model, attn_only=cfg.attn_only,
        d_vocab=cfg.d_vocab, n_ctx=cfg.n_ctx, act_fn=cfg.act_fn, normalization_type=cfg.normalization,
        eps=cfg.eps, seed=cfg.seed, dtype=dtype, init_weights=False,
    )


def to_bridge_state_dict(sd: StateDict, cfg: TransformerConfig) -> StateDict:
    """Our state dict -> the native bridge's ``state_dict()`` keys and layouts."""
    out: StateDict = {"embed.weight": sd["embed.W_E"], "pos_embed.weight": sd["pos_embed.W_pos"]}
    like = sd["embed.W_E"]
    for L in range(cfg.n_layers):
        p, q = f"blocks.{L}.", f"blocks.{L}."
        for ln in ("ln1", "ln2") if not cfg.attn_only else ("ln1",):
            if cfg.normalization == "LN":
                out[q + f"{ln}.weight"], out[q + f"{ln}.bias"] = sd[p + f"{ln}.w"], sd[p + f"{ln}.b"]
        for name in "QKV":
            W = sd[p + f"attn.W_{name}"]
            out[q + f"attn.{name.lower()}.weight"] = einops.rearrange(
                W, "head_index d_model d_head -> (head_index d_head) d_model")
            b = _zeros_like_bias(sd, p + f"attn.b_{name}", (cfg.n_heads, cfg.d_head), like)
            out[q + f"attn.{name.lower()}.bias"] = einops.rearrange(b, "head_index d_head -> (head_index d_head)")
        out[q + "attn.o.weight"] = einops.rearrange(
            sd[p + "attn.W_O"], "head_index d_head d_model -> d_model (head_index d_head)")
        out[q + "attn.o.bias"] = _zeros_like_bias(sd, p + "attn.b_O", (cfg.d_model,), like)
        if not cfg.attn_only:
            out[q + "mlp.in.weight"] = sd[p + "mlp.W_in"].T
            out[q + "mlp.in.bias"] = _zeros_like_bias(sd, p + "mlp.b_in", (cfg.d_mlp,), like)
            out[q + "mlp.out.weight"] = sd[p + "mlp.W_out"].T
            out[q + "mlp.out.bias"] = _zeros_like_bias(sd, p + "mlp.b_out", (cfg.d_model,), like)
    if cfg.normalization == "LN":
        out["ln_final.weight"], out["ln_final.bias"] = sd["ln_final.w"], sd["ln_final.b"]
    out["unembed.weight"] = _W_U(sd, cfg).T
    out["unembed.bias"] = _zeros_like_bias(sd, "unembed.b_U", (cfg.d_vocab,), like)
    return {k: v.detach().clone().contiguous() for k, v in out.items()}


def from_bridge_state_dict(bsd: StateDict, cfg: TransformerConfig) -> StateDict:
    """The native bridge's ``state_dict()`` -> our state dict for ``cfg``."""
    out: StateDict = {"embed.W_E": bsd["embed.weight"], "pos_embed.W_pos": bsd["pos_embed.weight"]}
    for L in range(cfg.n_layers):
        p = f"blocks.{L}."
        for ln in ("ln1", "ln2") if not cfg.attn_only else ("ln1",):
            if cfg.normalization == "LN":
                out[p + f"{ln}.w"], out[p + f"{ln}.b"] = bsd[p + f"{ln}.weight"], bsd[p + f"{ln}.bias"]
        for name in "QKV":
            out[p + f"attn.W_{name}"] = einops.rearrange(
                bsd[p + f"attn.{name.lower()}.weight"], "(head_index d_head) d_model -> head_index d_model d_head",
                head_index=cfg.n_heads)
            bias = einops.rearrange(bsd[p + f"attn.{name.lower()}.bias"], "(head_index d_head) -> head_index d_head",
                                    head_index=cfg.n_heads)
            _set_bias(out, p + f"attn.b_{name}", bias, cfg)
        out[p + "attn.W_O"] = einops.rearrange(
            bsd[p + "attn.o.weight"], "d_model (head_index d_head) -> head_index d_head d_model", head_index=cfg.n_heads)
        _set_bias(out, p + "attn.b_O", bsd[p + "attn.o.bias"], cfg)
        if not cfg.attn_only:
            out[p + "mlp.W_in"] = bsd[p + "mlp.in.weight"].T
            _set_bias(out, p + "mlp.b_in", bsd[p + "mlp.in.bias"], cfg)
            out[p + "mlp.W_out"] = bsd[p + "mlp.out.weight"].T
            _set_bias(out, p + "mlp.b_out", bsd[p + "mlp.out.bias"], cfg)
    if cfg.normalization == "LN":
        out["ln_final.w"], out["ln_final.b"] = bsd["ln_final.weight"], bsd["ln_final.bias"]
    _set_unembed(out, bsd["unembed.weight"].T, bsd.get("unembed.bias"), cfg)
    return {k: v.detach().clone().contiguous() for k, v in out.items()}


def _set_bias(out: StateDict, name: str, bias: Tensor, cfg: TransformerConfig) -> None:
    if cfg.use_bias:
        out[name] = bias
    else:
        _expect_zero(bias, name)


def _set_unembed(out: StateDict, W_U: Tensor, b_U: Optional[Tensor], cfg: TransformerConfig) -> None:
    if cfg.tied_embeddings:
        if not torch.equal(W_U, out["embed.W_E"].T):
            raise ValueError("the unembedding differs from W_E.T, so it cannot load into tied_embeddings=True.")
        if b_U is not None:
            _expect_zero(b_U, "unembed.b_U")
        return
    out["unembed.W_U"] = W_U
    if cfg.use_bias:
        out["unembed.b_U"] = b_U if b_U is not None else torch.zeros(cfg.d_vocab, dtype=W_U.dtype)
    elif b_U is not None:
        _expect_zero(b_U, "unembed.b_U")


def to_bridge(model: Transformer) -> Any:
    """A TransformerLens native ``TransformerBridge`` with ``model``'s config, weights and dtype."""
    from transformer_lens.model_bridge import TransformerBridge
    import transformer_lens.model_bridge.sources.native  # noqa: F401  (attaches boot_native)

    dtype = model.embed.W_E.dtype
    bridge = TransformerBridge.boot_native(bridge_config(model.cfg, dtype), dtype=dtype,
                                           device=model.embed.W_E.device)
    bridge.load_state_dict(to_bridge_state_dict(model.state_dict(), model.cfg), strict=True)
    return bridge


def from_bridge(bridge: Any, cfg: TransformerConfig) -> Transformer:
    """Our ``Transformer`` for ``cfg`` holding a native bridge's weights."""
    model = Transformer(cfg).to(bridge.cfg.dtype)
    model.load_state_dict(from_bridge_state_dict(bridge.state_dict(), cfg), strict=True)
    return model


# ----- Hugging Face GPT-2 ----------------------------------------------------------------------


def gpt2_config(cfg: TransformerConfig) -> Any:
    """The ``transformers.GPT2Config`` of ``cfg`` (eager attention, so patterns are returned)."""
    from transformers import GPT2Config

    require_standard_family(cfg, "GPT-2")
    if cfg.normalization != "LN" or cfg.attn_only:
        raise ValueError("GPT-2 has LayerNorms and MLPs: use normalization='LN' and a d_mlp.")
    cfg.require_standard_heads()
    config = GPT2Config(
        vocab_size=cfg.d_vocab, n_positions=cfg.n_ctx, n_embd=cfg.d_model, n_layer=cfg.n_layers,
        n_head=cfg.n_heads, n_inner=cfg.d_mlp, activation_function=cfg.act_fn,
        layer_norm_epsilon=cfg.eps, tie_word_embeddings=cfg.tied_embeddings,
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
    )
    config._attn_implementation = "eager"
    return config


# GPT2Config options under which Hugging Face computes something our Transformer does not:
# option -> (the value we compute, what it changes)
GPT2_EXACT = {
    "scale_attn_weights": (True, "scores are divided by sqrt(d_head)"),
    "scale_attn_by_inverse_layer_idx": (False, "scores are not also divided by the layer index + 1"),
    "reorder_and_upcast_attn": (False, "scores are computed in the model's dtype"),
    "add_cross_attention": (False, "the blocks have no cross-attention"),
}
GPT2_ACTIVATIONS = {"gelu_new": "gelu_new", "gelu_pytorch_tanh": "gelu_new", "gelu": "gelu", "relu": "relu"}


def require_standard_family(cfg: TransformerConfig, target: str) -> None:
    """Raise unless ``cfg`` is of the GPT-2 family (learned positions, ungated MLP, one K/V per head)."""
    if cfg.positional_embedding != "standard" or cfg.gated_mlp or cfg.n_key_value_heads is not None \
            or cfg.normalization == "RMS" or cfg.act_fn == "silu":
        raise ValueError(f"{target} has learned positions, LayerNorm, an ungated MLP and one key/value head per "
                         f"query head; this config is of the Llama family (use models.transformer.convert_llama).")


def config_from_gpt2(config: Any, **overrides: Any) -> TransformerConfig:
    """Our ``TransformerConfig`` for a ``GPT2Config``; refuses options it would compute differently."""
    for option, (ours, meaning) in GPT2_EXACT.items():
        value = getattr(config, option, ours)
        if bool(value) != ours:
            raise ValueError(f"GPT2Config.{option}={value!r} cannot be represented: in our Transformer {meaning}. "
                             f"Convert a model with {option}={ours}.")
    if config.activation_function not in GPT2_ACTIVATIONS:
        raise ValueError(f"GPT2Config.activation_function={config.activation_function!r} cannot be represented; "
                         f"ours are {sorted(GPT2_ACTIVATIONS)}.")
    fields = dict(
        d_model=config.n_embd, n_layers=config.n_layer, n_heads=config.n_head,
        d_mlp=config.n_inner or 4 * config.n_embd, d_vocab=config.vocab_size, n_ctx=config.n_positions,
        act_fn=GPT2_ACTIVATIONS[config.activation_function], eps=config.layer_norm_epsilon,
        tied_embeddings=bool(getattr(config, "tie_word_embeddings", True)),
    )
    return TransformerConfig(**{**fields, **overrides})


def to_hf_gpt2_state_dict(sd: StateDict, cfg: TransformerConfig) -> StateDict:
    """Our state dict -> ``GPT2LMHeadModel.state_dict()`` keys ([in out] Conv1D weights, fused QKV)."""
    cfg.require_standard_heads()
    like = sd["embed.W_E"]
    out: StateDict = {"transformer.wte.weight": sd["embed.W_E"], "transformer.wpe.weight": sd["pos_embed.W_pos"]}
    for L in range(cfg.n_layers):
        p, h = f"blocks.{L}.", f"transformer.h.{L}."
        out[h + "ln_1.weight"], out[h + "ln_1.bias"] = sd[p + "ln1.w"], sd[p + "ln1.b"]
        out[h + "ln_2.weight"], out[h + "ln_2.bias"] = sd[p + "ln2.w"], sd[p + "ln2.b"]
        out[h + "attn.c_attn.weight"] = torch.cat([
            einops.rearrange(sd[p + f"attn.W_{n}"], "head_index d_model d_head -> d_model (head_index d_head)")
            for n in "QKV"], dim=1)
        out[h + "attn.c_attn.bias"] = torch.cat([
            einops.rearrange(_zeros_like_bias(sd, p + f"attn.b_{n}", (cfg.n_heads, cfg.d_head), like),
                             "head_index d_head -> (head_index d_head)") for n in "QKV"])
        out[h + "attn.c_proj.weight"] = einops.rearrange(
            sd[p + "attn.W_O"], "head_index d_head d_model -> (head_index d_head) d_model")
        out[h + "attn.c_proj.bias"] = _zeros_like_bias(sd, p + "attn.b_O", (cfg.d_model,), like)
        out[h + "mlp.c_fc.weight"] = sd[p + "mlp.W_in"]
        out[h + "mlp.c_fc.bias"] = _zeros_like_bias(sd, p + "mlp.b_in", (cfg.d_mlp,), like)
        out[h + "mlp.c_proj.weight"] = sd[p + "mlp.W_out"]
        out[h + "mlp.c_proj.bias"] = _zeros_like_bias(sd, p + "mlp.b_out", (cfg.d_model,), like)
    out["transformer.ln_f.weight"], out["transformer.ln_f.bias"] = sd["ln_final.w"], sd["ln_final.b"]
    if "unembed.b_U" in sd:
        _expect_zero(sd["unembed.b_U"], "unembed.b_U", "GPT-2's lm_head has no bias: zero b_U first.")
    out["lm_head.weight"] = _W_U(sd, cfg).T
    return {k: v.detach().clone().contiguous() for k, v in out.items()}


def from_hf_gpt2_state_dict(hf_sd: StateDict, cfg: TransformerConfig) -> StateDict:
    """``GPT2LMHeadModel.state_dict()`` -> our state dict for ``cfg``."""
    out: StateDict = {"embed.W_E": hf_sd["transformer.wte.weight"], "pos_embed.W_pos": hf_sd["transformer.wpe.weight"]}
    for L in range(cfg.n_layers):
        p, h = f"blocks.{L}.", f"transformer.h.{L}."
        out[p + "ln1.w"], out[p + "ln1.b"] = hf_sd[h + "ln_1.weight"], hf_sd[h + "ln_1.bias"]
        out[p + "ln2.w"], out[p + "ln2.b"] = hf_sd[h + "ln_2.weight"], hf_sd[h + "ln_2.bias"]
        Ws = hf_sd[h + "attn.c_attn.weight"].split(cfg.d_model, dim=1)
        bs = hf_sd[h + "attn.c_attn.bias"].split(cfg.d_model)
        for n, W, b in zip("QKV", Ws, bs):
            out[p + f"attn.W_{n}"] = einops.rearrange(
                W, "d_model (head_index d_head) -> head_index d_model d_head", head_index=cfg.n_heads)
            _set_bias(out, p + f"attn.b_{n}", einops.rearrange(
                b, "(head_index d_head) -> head_index d_head", head_index=cfg.n_heads), cfg)
        out[p + "attn.W_O"] = einops.rearrange(
            hf_sd[h + "attn.c_proj.weight"], "(head_index d_head) d_model -> head_index d_head d_model",
            head_index=cfg.n_heads)
        _set_bias(out, p + "attn.b_O", hf_sd[h + "attn.c_proj.bias"], cfg)
        out[p + "mlp.W_in"] = hf_sd[h + "mlp.c_fc.weight"]
        _set_bias(out, p + "mlp.b_in", hf_sd[h + "mlp.c_fc.bias"], cfg)
        out[p + "mlp.W_out"] = hf_sd[h + "mlp.c_proj.weight"]
        _set_bias(out, p + "mlp.b_out", hf_sd[h + "mlp.c_proj.bias"], cfg)
    out["ln_final.w"], out["ln_final.b"] = hf_sd["transformer.ln_f.weight"], hf_sd["transformer.ln_f.bias"]
    lm_head = hf_sd.get("lm_head.weight", hf_sd["transformer.wte.weight"])
    _set_unembed(out, lm_head.T, None, cfg)
    return {k: v.detach().clone().contiguous() for k, v in out.items()}


def to_hf_gpt2(model: Transformer) -> Any:
    """A ``transformers.GPT2LMHeadModel`` (built locally, eval mode) computing the same function."""
    from transformers import GPT2LMHeadModel

    hf = GPT2LMHeadModel(gpt2_config(model.cfg)).to(model.embed.W_E.dtype).eval()
    missing, unexpected = hf.load_state_dict(to_hf_gpt2_state_dict(model.state_dict(), model.cfg), strict=False)
    missing = [k for k in missing if not k.endswith((".attn.bias", ".attn.masked_bias"))]
    if missing or unexpected:
        raise RuntimeError(f"GPT-2 state dict mismatch: missing {missing}, unexpected {unexpected}")
    return hf


def from_hf_gpt2(hf_model: Any, **overrides: Any) -> Transformer:
    """Our ``Transformer`` holding a ``GPT2LMHeadModel``'s weights (config read from the model)."""
    cfg = config_from_gpt2(hf_model.config, **overrides)
    model = Transformer(cfg).to(hf_model.dtype)
    model.load_state_dict(from_hf_gpt2_state_dict(hf_model.state_dict(), cfg), strict=True)
    return model
