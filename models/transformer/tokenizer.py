"""Character- and word-level tokenizers built from a corpus, with TransformerLens's methods.

>>> tok = CharTokenizer.from_corpus("hello world")
>>> tokens = tok.to_tokens("hello")           # [1 pos], <bos> first
>>> tok.to_str_tokens("hi")                   # unseen 'i' becomes <unk>
['<bos>', 'h', '<unk>']
>>> tok.to_string(tokens[0, 1:])
'hello'
"""

import json
import os
import re
from collections import Counter
from pathlib import Path
from typing import Iterable, Optional, Union

import torch
from jaxtyping import Int
from torch import Tensor

SPECIAL_TOKENS = ("<pad>", "<bos>", "<unk>")


def token_ids(tokens: Union[Tensor, list[int]]) -> list[int]:
    """One sequence of token ids as a list: a [pos] or [1 pos] tensor, or a list; a string is refused."""
    if isinstance(tokens, str):
        raise ValueError("expected token ids (a tensor or a list of ints), got a string; "
                         "tokenize it first with to_tokens, or pass the ids to decode.")
    if isinstance(tokens, Tensor):
        if tokens.ndim == 2 and tokens.shape[0] == 1:
            tokens = tokens[0]
        if tokens.ndim != 1:
            raise ValueError(f"expected one sequence of tokens, got shape {tuple(tokens.shape)}.")
        return tokens.tolist()
    return list(tokens)


class _VocabTokenizer:
    """Shared machinery: a vocabulary whose first entries are ``SPECIAL_TOKENS``."""

    kind = "base"
    joiner = ""

    def __init__(self, vocab: list[str]):
        if list(vocab[: len(SPECIAL_TOKENS)]) != list(SPECIAL_TOKENS):
            raise ValueError(f"vocab must start with the special tokens {SPECIAL_TOKENS}.")
        if len(set(vocab)) != len(vocab):
            raise ValueError("vocab has duplicate entries; each token must appear once.")
        self.vocab = list(vocab)
        self.index = {token: i for i, token in enumerate(self.vocab)}
        self.pad_token_id, self.bos_token_id, self.unk_token_id = 0, 1, 2

    @property
    def d_vocab(self) -> int:
        return len(self.vocab)

    def __len__(self) -> int:
        return len(self.vocab)

    def split(self, text: str) -> list[str]:
        raise NotImplementedError

    def encode(self, text: str, prepend_bos: bool = True) -> list[int]:
        ids = [self.index.get(piece, self.unk_token_id) for piece in self.split(text)]
        return [self.bos_token_id, *ids] if prepend_bos else ids

    def to_tokens(self, text: Union[str, list[str]], prepend_bos: bool = True) -> Int[Tensor, "batch pos"]:
        """[batch pos] token ids; a list of texts is right-padded with ``<pad>``."""
        texts = [text] if isinstance(text, str) else list(text)
        if not texts:
            raise ValueError("to_tokens needs at least one text.")
        rows = [self.encode(t, prepend_bos) for t in texts]
        width = max(len(row) for row in rows)
        return torch.tensor([row + [self.pad_token_id] * (width - len(row)) for row in rows], dtype=torch.long)

    def to_str_tokens(self, input: Union[str, Tensor, list[int]], prepend_bos: bool = True) -> list[str]:
        """The token strings of one text or one sequence of ids."""
        ids = self.encode(input, prepend_bos) if isinstance(input, str) else self.checked_ids(input)
        return [self.vocab[i] for i in ids]

    def to_string(self, tokens: Union[Tensor, list[int]]) -> Union[str, list[str]]:
        """Decode [pos] to a string or [batch pos] to a list; ``<pad>`` and ``<bos>`` are dropped."""
        if isinstance(tokens, Tensor) and tokens.ndim == 2:
            return [self.to_string(row) for row in tokens]
        skip = {self.pad_token_id, self.bos_token_id}
        return self.joiner.join(self.vocab[i] for i in self.checked_ids(tokens) if i not in skip)

    def checked_ids(self, tokens: Union[Tensor, list[int]]) -> list[int]:
        """``token_ids(tokens)``, refusing ids outside the vocabulary (a negative id would
        otherwise index from the end of it)."""
        ids = token_ids(tokens)
        bad = [i for i in ids if not isinstance(i, int) or isinstance(i, bool) or not 0 <= i < self.d_vocab]
        if bad:
            raise ValueError(f"token id {bad[0]!r} is outside the vocabulary of {self.d_vocab} tokens "
                             f"(ids 0 to {self.d_vocab - 1}); were these tokens made by another tokenizer?")
        return ids

    def save(self, path: Union[str, os.PathLike]) -> None:
        """Write the tokenizer as JSON (``kind`` and ``vocab``)."""
        Path(path).write_text(json.dumps({"kind": self.kind, "vocab": self.vocab}, ensure_ascii=False, indent=1))

    @classmethod
    def load(cls, path: Union[str, os.PathLike]) -> "_VocabTokenizer":
        """Read a tokenizer written by ``save``."""
        data = json.loads(Path(path).read_text())
        kinds = {"char": CharTokenizer, "word": WordTokenizer}
        if data.get("kind") not in kinds:
            raise ValueError(f"{path} is not a saved tokenizer (kind {data.get('kind')!r}).")
        target = kinds[data["kind"]]
        if cls is not _VocabTokenizer and target is not cls:
            raise ValueError(f"{path} holds a {data['kind']} tokenizer; load it with {target.__name__}.load.")
        return target(data["vocab"])

    def __repr__(self) -> str:
        return f"{type(self).__name__}(d_vocab={self.d_vocab})"


class CharTokenizer(_VocabTokenizer):
    """One token per character; ``to_string`` inverts ``to_tokens`` exactly for seen characters."""

    kind = "char"

    @classmethod
    def from_corpus(cls, corpus: Union[str, Iterable[str]]) -> "CharTokenizer":
        text = corpus if isinstance(corpus, str) else "".join(corpus)
        return cls([*SPECIAL_TOKENS, *sorted(set(text))])

    def split(self, text: str) -> list[str]:
        return list(text)


class WordTokenizer(_VocabTokenizer):
    """Words and punctuation marks (``\\w+|[^\\w\\s]``), lower-cased; ``to_string`` joins with spaces."""

    kind = "word"
    joiner = " "
    pattern = re.compile(r"\w+|[^\w\s]")

    @classmethod
    def from_corpus(
        cls, corpus: Union[str, Iterable[str]], max_vocab: Optional[int] = None, min_count: int = 1
    ) -> "WordTokenizer":
        """The ``max_vocab`` most frequent words seen at least ``min_count`` times (ties alphabetical)."""
        texts = [corpus] if isinstance(corpus, str) else list(corpus)
        counts = Counter(word for text in texts for word in cls.pattern.findall(text.lower()))
        words = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
        if max_vocab is not None:
            words = words[: max(0, max_vocab - len(SPECIAL_TOKENS))]
        return cls([*SPECIAL_TOKENS, *words])

    def split(self, text: str) -> list[str]:
        return self.pattern.findall(text.lower())


def load_tokenizer(path: Union[str, os.PathLike]) -> _VocabTokenizer:
    """Read a ``CharTokenizer`` or ``WordTokenizer`` saved as JSON."""
    return _VocabTokenizer.load(path)
