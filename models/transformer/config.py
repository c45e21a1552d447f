"""Configuration of the from-scratch transformer: the GPT-2 family and the Llama family."""

import math
from dataclasses import dataclass
from typing import Literal, Optional

ACT_FNS = ("relu", "gelu", "gelu_new", "silu")
NORMALIZATIONS = ("LN", "RMS", None)
POSITIONAL_EMBEDDINGS = ("standard", "rotary")


@dataclass(frozen=True, kw_only=True)
class TransformerConfig:
    """Shape and options of a decoder-only transformer, named as in TransformerLens.

    >>> cfg = TransformerConfig(d_model=64, n_layers=2, n_heads=4, d_mlp=256, d_vocab=100, n_ctx=32)
    >>> cfg.d_head
    16

    ``d_head`` defaults to ``d_model // n_heads``. ``d_mlp=None`` builds an
    attention-only model. ``normalization`` is ``"LN"`` (pre-LN blocks plus a final
    LN), ``"RMS"`` (RMSNorm, Zhang & Sennrich 2019: no centring, gain ``w`` only) or
    ``None``. With ``tied_embeddings`` the unembedding is ``W_E.T`` and has no
    parameters of its own (no ``b_U`` either, as in GPT-2). ``use_bias`` switches the
    biases of attention, MLP and unembedding; LayerNorms always keep ``w`` and ``b``.

    The Llama family (Touvron et al. 2023) is the same decoder with four options, named
    as in TransformerLens: ``positional_embedding="rotary"`` (RoPE, Su et al. 2021, on
    the first ``rotary_dim`` dimensions of each query and key head, base
    ``rotary_base``; no ``W_pos``), ``gated_mlp`` (``act(x W_gate) * (x W_in)``, Shazeer
    2020), ``n_key_value_heads`` (grouped-query attention, Ainslie et al. 2023: query
    head ``h`` reads key/value head ``h // (n_heads / n_key_value_heads)``) and
    ``act_fn="silu"``:

    >>> llama = TransformerConfig(d_model=64, n_layers=2, n_heads=4, d_mlp=128, d_vocab=100, n_ctx=32,
    ...     normalization="RMS", positional_embedding="rotary", gated_mlp=True, n_key_value_heads=2,
    ...     act_fn="silu", use_bias=False)
    >>> llama.rotary_dim, llama.n_key_value_heads
    (16, 2)
    """

    d_model: int
    n_layers: int
    n_heads: int
    d_mlp: Optional[int]
    d_vocab: int
    n_ctx: int
    d_head: Optional[int] = None
    act_fn: Literal["relu", "gelu", "gelu_new", "silu"] = "gelu_new"
    normalization: Optional[Literal["LN", "RMS"]] = "LN"
    positional_embedding: Literal["standard", "rotary"] = "standard"
    rotary_base: float = 10000.0
    rotary_dim: Optional[int] = None
    gated_mlp: bool = False
    n_key_value_heads: Optional[int] = None
    tied_embeddings: bool = False
    use_bias: bool = True
    init_range: float = 0.02
    eps: float = 1e-5
    seed: Optional[int] = 0

    def __post_init__(self) -> None:
        self._check_types()
        for name in ("d_model", "n_layers", "n_heads", "d_vocab", "n_ctx"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}; set {name}=1 or more.")
        if self.d_mlp is not None and (not isinstance(self.d_mlp, int) or self.d_mlp <= 0):
            raise ValueError(
                f"d_mlp must be a positive integer (or None for an attention-only model), got {self.d_mlp!r}."
            )
        if self.d_head is None:
            if self.d_model % self.n_heads != 0:
                raise ValueError(
                    f"d_model={self.d_model} is not divisible by n_heads={self.n_heads}, so d_head cannot be "
                    f"derived; pass d_head explicitly or choose n_heads dividing d_model."
                )
            object.__setattr__(self, "d_head", self.d_model // self.n_heads)
        elif not isinstance(self.d_head, int) or self.d_head <= 0:
            raise ValueError(f"d_head must be a positive integer (or None for d_model // n_heads), got {self.d_head!r}.")
        if self.act_fn not in ACT_FNS:
            raise ValueError(f"act_fn={self.act_fn!r} is not supported; use one of {ACT_FNS}.")
        if self.normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization={self.normalization!r} is not supported; use 'LN', 'RMS' or None.")
        if self.positional_embedding not in POSITIONAL_EMBEDDINGS:
            raise ValueError(f"positional_embedding={self.positional_embedding!r} is not supported; "
                             f"use one of {POSITIONAL_EMBEDDINGS}.")
        if self.positional_embedding == "rotary":
            if self.rotary_dim is None:
                object.__setattr__(self, "rotary_dim", self.d_head)
            if not isinstance(self.rotary_dim, int) or self.rotary_dim <= 0 or self.rotary_dim % 2 \
                    or self.rotary_dim > self.d_head:
                raise ValueError(f"rotary_dim must be an even positive integer at most d_head={self.d_head}, "
                                 f"got {self.rotary_dim!r}.")
            if not self.rotary_base > 0:
                raise ValueError(f"rotary_base must be positive, got {self.rotary_base!r}.")
        elif self.rotary_dim is not None:
            raise ValueError("rotary_dim is set but positional_embedding is 'standard'; "
                             "set positional_embedding='rotary' or drop rotary_dim.")
        if self.gated_mlp and self.d_mlp is None:
            raise ValueError("gated_mlp=True needs an MLP; set d_mlp (an attention-only model has none).")
        if self.n_key_value_heads is not None:
            kv = self.n_key_value_heads
            if not isinstance(kv, int) or isinstance(kv, bool) or kv <= 0 or self.n_heads % kv:
                raise ValueError(f"n_key_value_heads must be a positive integer dividing n_heads={self.n_heads}, "
                                 f"got {kv!r}; use None for one key/value head per query head.")
        if not self.init_range > 0:
            raise ValueError(f"init_range must be positive, got {self.init_range!r}.")
        if not self.eps > 0:
            raise ValueError(f"eps must be positive, got {self.eps!r}.")

    def _check_types(self) -> None:
        """Refuse values of the wrong type by field name (``d_mlp=True`` is an int to Python,
        ``eps="1e-5"`` would fail later inside a comparison)."""
        def integer(value) -> bool:
            return isinstance(value, int) and not isinstance(value, bool)

        for name in ("d_mlp", "d_head", "rotary_dim", "n_key_value_heads", "seed"):
            value = getattr(self, name)
            if value is not None and not integer(value):
                raise ValueError(f"{name} must be an integer or None, got {value!r}.")
        for name in ("gated_mlp", "tied_embeddings", "use_bias"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}.")
        for name in ("rotary_base", "init_range", "eps"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)):
                raise ValueError(f"{name} must be a finite number, got {value!r}.")

    @property
    def n_kv_heads(self) -> int:
        """Key/value heads per layer: ``n_key_value_heads``, or ``n_heads`` without grouping."""
        return self.n_heads if self.n_key_value_heads is None else self.n_key_value_heads

    @property
    def device(self) -> None:
        """Always None: a model's device is where its weights are (``model.W_E.device``), not a setting.

        TransformerLens's tools read ``cfg.device`` to place their result tensors; None puts them
        on torch's default device, as TransformerLens does for a CPU model.
        """
        return None

    @property
    def normalization_type(self) -> Optional[str]:
        """TransformerLens's name for ``normalization`` (``"LN"``, ``"RMS"`` or None), read by its
        ``ActivationCache`` (which norm ``apply_ln_to_stack`` undoes) and its logit lens."""
        return self.normalization

    @property
    def positional_embedding_type(self) -> str:
        """TransformerLens's name for ``positional_embedding`` (``"standard"`` or ``"rotary"``)."""
        return self.positional_embedding

    @property
    def attn_only(self) -> bool:
        """True when the blocks have no MLP (``d_mlp is None``)."""
        return self.d_mlp is None

    def require_standard_heads(self) -> None:
        """Raise unless ``n_heads * d_head == d_model``, which fused-QKV peers (GPT-2) need."""
        if self.n_heads * self.d_head != self.d_model:
            raise ValueError(
                f"n_heads * d_head = {self.n_heads} * {self.d_head} = {self.n_heads * self.d_head} must equal "
                f"d_model={self.d_model} here; set d_head={self.d_model // self.n_heads} or change n_heads."
            )
