"""A Hugging Face tokenizer behind the small interface our ``Transformer`` delegates to.

``Transformer.to_tokens`` / ``to_str_tokens`` / ``to_string`` call the attached tokenizer's
methods of the same names (as TransformerLens does); this adapter gives a
``transformers`` tokenizer those methods, plus left-padded batches with an attention
mask for generation and the model's chat template.

>>> from models import zoo
>>> tokenizer = zoo.load("smollm2").tokenizer      # HFTokenizer(its transformers tokenizer)
>>> tokenizer.to_str_tokens("The capital of France")
['The', ' capital', ' of', ' France']
"""

from typing import Any, Optional, Union

import torch
from jaxtyping import Int
from torch import Tensor

from models.transformer.tokenizer import token_ids


class HFTokenizer:
    """Wraps a ``transformers`` tokenizer. ``prepend_bos=None`` follows the tokenizer's own rule
    (SmolLM2's adds no BOS token, as its own ``generate`` examples do not)."""

    def __init__(self, tokenizer: Any):
        self.tokenizer = tokenizer
        self.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self.bos_token_id = tokenizer.bos_token_id
        self.eos_token_id = tokenizer.eos_token_id

    @property
    def d_vocab(self) -> int:
        return len(self.tokenizer)

    def __len__(self) -> int:
        return len(self.tokenizer)

    def encode(self, text: str, prepend_bos: Optional[bool] = None) -> list[int]:
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        own_bos = bool(getattr(self.tokenizer, "add_bos_token", False))
        if (own_bos if prepend_bos is None else prepend_bos) and self.bos_token_id is not None:
            ids = [self.bos_token_id, *ids]
        return ids

    def batch(self, texts: Union[str, list[str]], prepend_bos: Optional[bool] = None,
              padding_side: str = "right") -> tuple[Int[Tensor, "batch pos"], Int[Tensor, "batch pos"]]:
        """Token ids and attention mask (1 at real tokens) of several texts, padded on ``padding_side``."""
        if padding_side not in ("left", "right"):
            raise ValueError(f"padding_side must be 'left' or 'right', got {padding_side!r}.")
        texts = [texts] if isinstance(texts, str) else list(texts)
        if not texts:
            raise ValueError("to_tokens needs at least one text.")
        rows = [self.encode(t, prepend_bos) for t in texts]
        if not all(rows):
            raise ValueError(f"text {texts[[bool(r) for r in rows].index(False)]!r} tokenizes to nothing.")
        width = max(map(len, rows))
        tokens = torch.full((len(rows), width), self.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            span = slice(width - len(row), width) if padding_side == "left" else slice(0, len(row))
            tokens[i, span], mask[i, span] = torch.tensor(row), 1
        return tokens, mask

    def to_tokens(self, text: Union[str, list[str]], prepend_bos: Optional[bool] = None) -> Int[Tensor, "batch pos"]:
        """[batch pos] token ids; a list of texts is right-padded (use ``batch`` for the mask)."""
        return self.batch(text, prepend_bos)[0]

    def to_str_tokens(self, input: Union[str, Tensor, list[int]], prepend_bos: Optional[bool] = None) -> list[str]:
        """Each token decoded on its own (``' capital'``, not ``'Ġcapital'``)."""
        ids = self.encode(input, prepend_bos) if isinstance(input, str) else token_ids(input)
        return [self.tokenizer.decode([i]) for i in ids]

    def to_string(self, tokens: Union[Tensor, list[int]]) -> Union[str, list[str]]:
        """Decode [pos] to a string or [batch pos] to a list, special tokens (padding) dropped."""
        if isinstance(tokens, Tensor) and tokens.ndim == 2:
            return [self.to_string(row) for row in tokens]
        return self.tokenizer.decode(token_ids(tokens), skip_special_tokens=True)

    def span_tokens(self, text: str, part: str, prepend_bos: Optional[bool] = None) -> tuple[int, int]:
        """Half-open token span ``(start, stop)`` of the last occurrence of ``part`` in ``text``, as
        ``encode(text)`` tokenizes it: the tokens whose characters overlap ``part``'s (so a subject
        is found even where BPE merges its first letter with the space before it)."""
        begin = text.rfind(part)
        if not part or begin < 0:
            raise ValueError(f"{part!r} does not occur in the prompt {text!r}")
        end = begin + len(part)
        encoded = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        offset = len(self.encode(text, prepend_bos)) - len(encoded["input_ids"])  # a BOS token, if any
        inside = [i for i, (a, b) in enumerate(encoded["offset_mapping"]) if a < end and b > begin]
        return inside[0] + offset, inside[-1] + 1 + offset

    @property
    def has_chat_template(self) -> bool:
        """Whether the model was tuned to chat (its tokenizer carries a chat template)."""
        return bool(getattr(self.tokenizer, "chat_template", None))

    def chat_prompt(self, messages: list[dict[str, str]]) -> str:
        """The model's chat template applied to ``[{"role": ..., "content": ...}, ...]``, ready for the
        assistant's reply."""
        if not self.has_chat_template:
            raise ValueError("this tokenizer has no chat template; prompt the model with plain text.")
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def __repr__(self) -> str:
        return f"HFTokenizer({type(self.tokenizer).__name__}, d_vocab={self.d_vocab})"
