"""The from-scratch transformer (GPT-2 and Llama families), hookable with TransformerLens's names."""

import difflib
from typing import Any, Callable, Literal, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor, nn

from transformer_lens import HookedRootModule
from transformer_lens.hook_points import HookPoint

from models.transformer.attention import attention_layout
from models.transformer.block import TransformerBlock, make_norm
from models.transformer.config import TransformerConfig
from models.transformer.embed import Embed, PosEmbed
from models.transformer.tl_surface import TransformerLensSurface
from models.transformer.unembed import Unembed

TokensLike = Union[str, list[str], Int[Tensor, "batch pos"], Int[Tensor, "pos"]]


class UnknownHookError(KeyError, ValueError):
    """A hook name that the model does not have; the message lists the closest valid names."""

    def __str__(self) -> str:
        return str(self.args[0])


def check_hook_name(name: str, valid: Sequence[str]) -> None:
    """Raise ``UnknownHookError`` naming the closest valid hook names unless ``name`` is valid."""
    if name in valid:
        return
    close = difflib.get_close_matches(name, list(valid), n=5, cutoff=0.5)
    hint = f"closest valid names: {close}" if close else f"valid names include: {list(valid)[:8]}"
    raise UnknownHookError(f"unknown hook name {name!r}; {hint}")


class Transformer(TransformerLensSurface, HookedRootModule):
    """A decoder-only transformer (GPT-2 or Llama layout) whose activations pass through ``HookPoint``s.

    >>> cfg = TransformerConfig(d_model=32, n_layers=2, n_heads=4, d_mlp=128, d_vocab=50, n_ctx=16)
    >>> model = Transformer(cfg)
    >>> tokens = torch.randint(0, 50, (2, 8))
    >>> logits, cache = model.run_with_cache(tokens)
    >>> logits.shape, cache["blocks.1.attn.hook_pattern"].shape
    (torch.Size([2, 8, 50]), torch.Size([2, 4, 8, 8]))

    Parameters and hooks carry TransformerLens's names (``blocks.0.attn.W_Q``,
    ``blocks.0.hook_resid_pre``, ...), so weights move to and from TransformerLens
    and Hugging Face GPT-2 through ``models.transformer.convert`` (Hugging Face Llama through
    ``models.transformer.convert_llama``).
    """

    def __init__(self, cfg: TransformerConfig, tokenizer: Any = None):
        super().__init__()
        self.cfg = cfg
        self.tokenizer = tokenizer
        self.embed = Embed(cfg)
        self.hook_embed = HookPoint()  # [batch pos d_model]
        if cfg.positional_embedding == "standard":  # rotary positions live in the attention
            self.pos_embed = PosEmbed(cfg)
            self.hook_pos_embed = HookPoint()  # [batch pos d_model]
        self.blocks = nn.ModuleList([TransformerBlock(cfg) for _ in range(cfg.n_layers)])
        self.ln_final = make_norm(cfg)
        self.unembed = Unembed(cfg, self.embed)
        self.init_weights()
        self.setup()

    @torch.no_grad()
    def init_weights(self) -> None:
        """GPT-2 initialisation: weights ~ N(0, init_range), biases 0, LN gains 1; seeded by ``cfg.seed``.

        A private generator keeps the global torch RNG untouched. Each weight is drawn as a contiguous
        tensor of its shape, so a parameter stored transposed (GatedMLP's) gets the same values a
        row-major one would: the storage layout never changes the weights a seed gives.
        """
        generator = torch.Generator().manual_seed(self.cfg.seed) if self.cfg.seed is not None else None
        for name, param in self.named_parameters():
            leaf = name.rsplit(".", 1)[-1].lstrip("_")  # _W_K, _W_V: grouped key/value heads
            if leaf.startswith("W_"):  # drawn in the logical (row-major) order, whatever the storage layout
                draw = torch.empty(param.shape, dtype=param.dtype).normal_(0.0, self.cfg.init_range, generator=generator)
                param.copy_(draw)
            elif leaf == "w":
                param.fill_(1.0)
            else:
                param.zero_()

    # ----- forward ---------------------------------------------------------------

    def forward(
        self,
        input: TokensLike,
        return_type: Optional[Literal["logits", "loss", "both"]] = "logits",
        loss_per_token: bool = False,
        stop_at_layer: Optional[int] = None,
        start_at_layer: Optional[int] = None,
        prefix_kv: Optional[Sequence[tuple[Tensor, Tensor]]] = None,
        attention_mask: Optional[Int[Tensor, "batch key_pos"]] = None,
        past_kv_cache: Optional[Any] = None,
    ) -> Any:
        """Logits [batch pos d_vocab], next-token loss, both as a tuple, or None.

        With ``stop_at_layer=L`` the residual stream entering block ``L``
        [batch pos d_model] is returned instead (TransformerLens's convention).
        With ``start_at_layer=L``, ``input`` is that residual stream [batch pos d_model]
        and only blocks ``L`` onwards run (their hooks fire, the embedding hooks do not):
        ``model(model(tokens, stop_at_layer=L), start_at_layer=L) == model(tokens)``.
        ``prefix_kv``: one ``(k, v)`` pair per block run (the ``attn.hook_k`` / ``hook_v``
        activations ``[batch prefix_pos kv_head_index d_head]`` of the positions before ``input``,
        a KV cache): ``input`` (tokens, or with ``start_at_layer`` the residual stream) then holds
        the later positions only, at positions ``prefix_pos, prefix_pos + 1, ...``, and the logits
        are those of the later positions.
        ``attention_mask`` [batch key_pos] (1 at real tokens, 0 at padding; covering the prefix
        positions first when ``prefix_kv`` is given), as Hugging Face takes it: padding keys are
        not attended to, and positions count real tokens only, so a left-padded row computes
        what the row alone computes.
        """
        if return_type not in ("logits", "loss", "both", None):
            raise ValueError(f"return_type={return_type!r}; use 'logits', 'loss', 'both' or None.")
        for name, layer in (("stop_at_layer", stop_at_layer), ("start_at_layer", start_at_layer)):
            if layer is not None and not -self.cfg.n_layers <= layer <= self.cfg.n_layers:
                raise ValueError(f"{name}={layer} is outside [-{self.cfg.n_layers}, {self.cfg.n_layers}].")
        if past_kv_cache is not None and prefix_kv is not None:
            raise ValueError("give the earlier positions as prefix_kv or as past_kv_cache, not both.")
        n_prefix = past_kv_cache.n_filled if past_kv_cache is not None else prefix_kv[0][0].shape[1] if prefix_kv else 0
        positions, key_mask = None, None
        if attention_mask is not None:
            n_input = input.shape[1] if isinstance(input, Tensor) and input.ndim >= 2 else None
            key_mask = self._as_mask(attention_mask, n_prefix, n_input)
            positions = (key_mask.long().cumsum(-1) - 1).clamp(min=0)
        elif n_prefix:
            positions = torch.arange(n_prefix + (input.shape[1] if isinstance(input, Tensor) else 0),
                                     device=self.embed.W_E.device)[None]
        if start_at_layer is None:
            tokens = self._as_tokens(input)
            residual = self.hook_embed(self.embed(tokens))
            if self.cfg.positional_embedding == "standard":
                own = None if positions is None else positions[:, n_prefix:]
                residual = residual + self.hook_pos_embed(self.pos_embed(tokens, own))
        else:
            residual = self._as_residual(input)
            if return_type in ("loss", "both"):
                raise ValueError("start_at_layer takes a residual stream, not tokens, so there is no next-token "
                                 "loss; use return_type='logits' and compute the loss from the logits.")
        blocks = self.blocks[start_at_layer:stop_at_layer]
        caches = [None] * len(blocks) if past_kv_cache is None else past_kv_cache.blocks[start_at_layer:stop_at_layer]
        if prefix_kv is None:
            prefix_kv = [None] * len(blocks)
        elif len(prefix_kv) != len(blocks):
            raise ValueError(f"prefix_kv needs one (k, v) per block run ({len(blocks)}), got {len(prefix_kv)}.")
        if n_prefix and residual.shape[1] + n_prefix > self.cfg.n_ctx:
            raise ValueError(f"prefix of {n_prefix} and input of {residual.shape[1]} positions "
                             f"exceed n_ctx={self.cfg.n_ctx}.")
        n_query = residual.shape[1]
        layout = attention_layout(self.cfg, n_query, n_prefix + n_query, positions, key_mask, residual.dtype,
                                  residual.device, prefix_rotated=past_kv_cache is not None) if len(blocks) else None
        for block, prefix, cache in zip(blocks, prefix_kv, caches):
            residual = block(residual, prefix, layout, cache)
        if stop_at_layer is not None:
            return residual
        if self.ln_final is not None:
            residual = self.ln_final(residual)
        logits = self.unembed(residual)
        if return_type == "logits":
            return logits
        if return_type is None:
            return None
        loss = next_token_loss(logits, tokens, per_token=loss_per_token)
        return loss if return_type == "loss" else (logits, loss)

    def _as_mask(self, attention_mask: Any, n_prefix: int, n_input: Optional[int]) -> Tensor:
        if not isinstance(attention_mask, Tensor) or attention_mask.ndim != 2:
            raise ValueError("attention_mask must be a [batch key_pos] tensor of 0s and 1s (1 at real tokens).")
        if n_input is not None and attention_mask.shape[1] != n_prefix + n_input:
            raise ValueError(f"attention_mask covers {attention_mask.shape[1]} positions but the prefix and input "
                             f"hold {n_prefix} + {n_input}; give one entry per key position, prefix first.")
        return attention_mask.to(self.embed.W_E.device).bool()

    def _as_residual(self, input: Any) -> Float[Tensor, "batch pos d_model"]:
        if not isinstance(input, Tensor) or input.ndim != 3 or input.shape[-1] != self.cfg.d_model \
                or not input.is_floating_point():
            shape = tuple(input.shape) if isinstance(input, Tensor) else type(input).__name__
            raise ValueError(f"with start_at_layer the input must be the residual stream [batch pos d_model="
                             f"{self.cfg.d_model}] (floating point), got {shape}.")
        if input.shape[1] > self.cfg.n_ctx:
            raise ValueError(f"residual stream of {input.shape[1]} positions is longer than n_ctx={self.cfg.n_ctx}.")
        return input

    def _as_tokens(self, input: TokensLike) -> Int[Tensor, "batch pos"]:
        if isinstance(input, (str, list)):
            tokens = self.to_tokens(input)
        elif isinstance(input, Tensor):
            tokens = input if input.ndim == 2 else input.unsqueeze(0) if input.ndim == 1 else None
            if tokens is None:
                raise ValueError(f"tokens must have shape [batch pos] or [pos], got {tuple(input.shape)}.")
            if tokens.is_floating_point() or tokens.is_complex() or tokens.dtype == torch.bool:
                raise ValueError(f"tokens must be integer token ids, got dtype {tokens.dtype}.")
            # int8/int16/int32 cannot index W_E, and uint8 would index it as a boolean mask
            tokens = tokens.long()
        else:
            raise ValueError(f"expected a token tensor or a string, got {type(input).__name__}.")
        if tokens.numel() == 0:
            raise ValueError(f"tokens of shape {tuple(tokens.shape)} hold no token; give at least one sequence "
                             "of at least one token.")
        if tokens.shape[1] > self.cfg.n_ctx:
            raise ValueError(
                f"sequence of {tokens.shape[1]} tokens is longer than n_ctx={self.cfg.n_ctx}; "
                f"truncate the input (tokens[:, -{self.cfg.n_ctx}:]) or build the model with a larger n_ctx."
            )
        if tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) >= self.cfg.d_vocab):
            raise ValueError(
                f"token ids must lie in [0, {self.cfg.d_vocab}) (d_vocab={self.cfg.d_vocab}), got range "
                f"[{int(tokens.min())}, {int(tokens.max())}]; check the tokenizer matches the model."
            )
        return tokens.to(self.embed.W_E.device)

    # ----- hook-name checking -----------------------------------------------------------
    # HookedRootModule fails on an unknown name with a bare KeyError (add_hook, hooks())
    # or silently caches nothing (run_with_cache names_filter). Check names up front.

    def _check_names(self, names: Union[str, Callable, Sequence[str], None]) -> None:
        if names is None or callable(names):
            return
        for name in [names] if isinstance(names, str) else names:
            check_hook_name(name, list(self.hook_dict))

    def _enable_hook(self, name: Union[str, Callable], hook: Callable, dir: Literal["fwd", "bwd"]):
        self._check_names(name)
        super()._enable_hook(name, hook, dir)

    def add_hook(self, name: Union[str, Callable], hook: Callable, *args: Any, **kwargs: Any) -> None:
        self._check_names(name)
        super().add_hook(name, hook, *args, **kwargs)

    def get_caching_hooks(self, names_filter: Any = None, *args: Any, **kwargs: Any) -> tuple[dict, list, list]:
        self._check_names(names_filter)
        return super().get_caching_hooks(names_filter, *args, **kwargs)

    # ----- tokens, text and sampling (delegated, as in TransformerLens) ----------------------

    def _require_tokenizer(self) -> Any:
        if self.tokenizer is None:
            raise ValueError(
                "this model has no tokenizer: set model.tokenizer = CharTokenizer.from_corpus(text) "
                "(or WordTokenizer) or pass token tensors."
            )
        return self.tokenizer

    def to_tokens(self, text: Union[str, list[str]], prepend_bos: Optional[bool] = None) -> Int[Tensor, "batch pos"]:
        """Tokenize with the attached tokenizer: ``model.to_tokens("hello")`` -> [1 pos].

        ``prepend_bos=None`` follows the tokenizer's own rule (ours prepend ``<bos>``; SmolLM2's
        adds nothing)."""
        kwargs = {} if prepend_bos is None else {"prepend_bos": prepend_bos}
        return self._require_tokenizer().to_tokens(text, **kwargs)

    def to_str_tokens(self, input: Union[str, Tensor], prepend_bos: Optional[bool] = None) -> list[str]:
        """The token strings of a text or a 1-D / single-row token tensor."""
        kwargs = {} if prepend_bos is None else {"prepend_bos": prepend_bos}
        return self._require_tokenizer().to_str_tokens(input, **kwargs)

    def to_string(self, tokens: Tensor) -> Union[str, list[str]]:
        """Decode [pos] to a string or [batch pos] to a list of strings."""
        return self._require_tokenizer().to_string(tokens)

    def generate(self, prompt: TokensLike, max_new_tokens: int = 20, **kwargs: Any) -> Any:
        """Sample a continuation; see ``models.transformer.sampling.generate``."""
        from models.transformer.sampling import generate

        return generate(self, prompt, max_new_tokens, **kwargs)

def next_token_loss(
    logits: Float[Tensor, "batch pos d_vocab"], tokens: Int[Tensor, "batch pos"], per_token: bool = False
) -> Union[Float[Tensor, ""], Float[Tensor, "batch pos_minus_1"]]:
    """Cross-entropy of predicting ``tokens[:, 1:]`` from ``logits[:, :-1]`` (mean, or per token)."""
    if tokens.shape[1] < 2:
        raise ValueError("next-token loss needs at least 2 tokens per sequence; pass a longer input.")
    log_probs = F.log_softmax(logits[:, :-1], dim=-1)
    per_position = -log_probs.gather(-1, tokens[:, 1:, None]).squeeze(-1)
    return per_position if per_token else per_position.mean()
