"""The models an explorer serves: loaded on first use, one instance each, one request at a time on it.

A :class:`Subject` wraps one hooked model (our ``Transformer`` or a TransformerLens bridge) with
what the explorer needs to know about it: whether it predicts the next token (a decoder with an
unembedding: top-k, the logit lens, direct logit attribution, patching and tracing) or is an
encoder (attention patterns and neuron activations only), and a lock. Requests on one model run
one at a time under that lock, so the hooks one request adds never fire in another's forward;
after each request the subject checks that no hook is left attached.

A :class:`Registry` maps names to loaders; the command line fills it with the zoo's subjects.
"""

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Optional

import torch
from torch import Tensor

from interp.explore.errors import BadRequest


@dataclass
class Entry:
    """How to get one model: ``load()`` returns it; ``ready()`` says whether loading is quick (cached)."""

    load: Callable[[], Any]
    description: str = ""
    causal: bool = True
    ready: Callable[[], bool] = lambda: True
    not_ready: str = ""  # what to run to make it ready, shown when it is not
    # page inputs filled in when the model is chosen: a dict, or a function of the loaded model giving one
    example: Any = field(default_factory=dict)


@dataclass
class Subject:
    name: str
    model: Any
    causal: bool
    description: str = ""
    example: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def n_layers(self) -> int:
        return int(self.model.cfg.n_layers)

    @property
    def n_heads(self) -> int:
        return int(self.model.cfg.n_heads)

    @property
    def d_mlp(self) -> int:
        return int(self.model.cfg.d_mlp)

    @property
    def n_ctx(self) -> int:
        return int(self.model.cfg.n_ctx)

    def tokens(self, prompt: str, max_tokens: int) -> Tensor:
        """``[1 pos]`` token ids of ``prompt``, refused (400) when empty or longer than the limit."""
        if not prompt or not prompt.strip():
            raise BadRequest("the prompt is empty: type some text")
        tokens = self.model.to_tokens(prompt)
        n = tokens.shape[-1]
        limit = min(max_tokens, self.n_ctx)
        if n == 0:
            raise BadRequest(f"the prompt {prompt!r} tokenizes to nothing for {self.name}: type other text")
        if n > limit:
            raise BadRequest(f"the prompt has {n} tokens; {self.name} takes at most {limit} here "
                             f"(the model's n_ctx is {self.n_ctx}, the server's limit {max_tokens}): shorten it", status=413)
        return tokens

    def str_tokens(self, tokens: Tensor) -> list[str]:
        return [str(t) for t in self.model.to_str_tokens(tokens[0])]

    def token_id(self, text: str, what: str) -> int:
        """The id of a single-token string (for answers and targets), else 400 saying how it splits."""
        ids = self.model.to_tokens(text, prepend_bos=False)[0].tolist()
        if len(ids) != 1:
            pieces = [str(t) for t in self.model.to_str_tokens(torch.tensor(ids))] if ids else []
            raise BadRequest(f"{what} {text!r} is {len(ids)} tokens for {self.name} ({pieces}); give one token "
                             "(often with its leading space, such as ' Paris')")
        return int(ids[0])

    def require_causal(self, what: str) -> None:
        if not self.causal:
            raise BadRequest(f"{self.name} is an encoder without a next-token head: {what} needs next-token logits; "
                             "attention patterns and neuron activations work on it", status=422)

    def check_layer(self, layer: int) -> None:
        if not 0 <= layer < self.n_layers:
            raise BadRequest(f"layer {layer} is out of range: {self.name} has layers 0 to {self.n_layers - 1}", status=422)

    def check_head(self, head: int) -> None:
        if not 0 <= head < self.n_heads:
            raise BadRequest(f"head {head} is out of range: {self.name} has heads 0 to {self.n_heads - 1}", status=422)

    def hooks_left(self) -> int:
        """Forward and backward hooks attached to the model's hook points (0 between requests)."""
        return sum(len(hp._forward_hooks) + len(hp._backward_hooks) for hp in self.model.hook_dict.values())

    def info(self) -> dict[str, Any]:
        return {"name": self.name, "loaded": True, "causal": self.causal, "description": self.description,
                "n_layers": self.n_layers, "n_heads": self.n_heads, "d_mlp": self.d_mlp, "n_ctx": self.n_ctx,
                "example": self.example}


class Registry:
    """Named models, each loaded on its first request (or at start with :meth:`get`) and kept."""

    def __init__(self, entries: dict[str, Entry]):
        if not entries:
            raise ValueError("an explorer needs at least one model")
        self.entries = dict(entries)
        self._subjects: dict[str, Subject] = {}
        self._loading = threading.Lock()

    @property
    def names(self) -> list[str]:
        return list(self.entries)

    def get(self, name: str, allow_slow: bool = False) -> Subject:
        """The loaded subject ``name``; 404 for an unknown name, 409 for one not ready to load quickly."""
        if name not in self.entries:
            raise BadRequest(f"unknown model {name!r}; choose one of {self.names}", status=404)
        with self._loading:
            if name not in self._subjects:
                entry = self.entries[name]
                if not allow_slow and not entry.ready():
                    raise BadRequest(f"{name} is not built yet, and building it takes minutes: {entry.not_ready}",
                                     status=409)
                model = entry.load()
                model.eval()
                example = entry.example(model) if callable(entry.example) else dict(entry.example)
                self._subjects[name] = Subject(name, model, entry.causal, entry.description, example)
            return self._subjects[name]

    def info(self) -> list[dict[str, Any]]:
        rows = []
        for name, entry in self.entries.items():
            if name in self._subjects:
                rows.append(self._subjects[name].info())
            else:
                ready = entry.ready()
                rows.append({"name": name, "loaded": False, "ready": ready, "causal": entry.causal,
                             "description": entry.description,
                             "example": {} if callable(entry.example) else entry.example,
                             **({} if ready else {"not_ready": entry.not_ready})})
        return rows

    def loaded(self, name: str) -> Optional[Subject]:
        return self._subjects.get(name)
