"""Configuration of the from-scratch GPT-style transformer."""

from dataclasses import dataclass
from typing import Literal, Optional

ACT_FNS = ("relu", "gelu", "gelu_new")
NORMALIZATIONS = ("LN", None)


@dataclass(frozen=True, kw_only=True)
class TransformerConfig:
    """Shape and options of a decoder-only transformer, named as in TransformerLens.

    >>> cfg = TransformerConfig(d_model=64, n_layers=2, n_heads=4, d_mlp=256, d_vocab=100, n_ctx=32)
    >>> cfg.d_head
    16

    ``d_head`` defaults to ``d_model // n_heads``. ``d_mlp=None`` builds an
    attention-only model. ``normalization`` is ``"LN"`` (pre-LN blocks plus a final
    LN) or ``None``. With ``tied_embeddings`` the unembedding is ``W_E.T`` and has no
    parameters of its own (no ``b_U`` either, as in GPT-2). ``use_bias`` switches the
    biases of attention, MLP and unembedding; LayerNorms always keep ``w`` and ``b``.
    """

    d_model: int
    n_layers: int
    n_heads: int
    d_mlp: Optional[int]
    d_vocab: int
    n_ctx: int
    d_head: Optional[int] = None
    act_fn: Literal["relu", "gelu", "gelu_new"] = "gelu_new"
    normalization: Optional[Literal["LN"]] = "LN"
    tied_embeddings: bool = False
    use_bias: bool = True
    init_range: float = 0.02
    eps: float = 1e-5
    seed: Optional[int] = 0

    def __post_init__(self) -> None:
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
            raise ValueError(f"normalization={self.normalization!r} is not supported; use 'LN' or None.")
        if not self.init_range > 0:
            raise ValueError(f"init_range must be positive, got {self.init_range!r}.")
        if not self.eps > 0:
            raise ValueError(f"eps must be positive, got {self.eps!r}.")

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
