"""Which facts the model knows: its greedy first token on the main template is the object's first token.

Example::

    from analyses.facts_lm.known import object_token, known_facts

    object_token(model.tokenizer, "Paris")             # the id of " Paris"
    table = known_facts(model, FACTS)                  # one row per fact; table[table.known]

ROME kept the facts GPT-2 XL answered correctly ("known 1000"); so do we, on the first
template of each relation (the held-out one is never used to select).
"""

import weakref
from typing import Any, Sequence

import pandas as pd
import torch

from interp.patching import reproduces
from models.data.known_facts import RELATIONS, Fact, prompt_for


def object_tokens(tokenizer: Any, obj: str) -> list[int]:
    """The tokens of ``obj`` as it follows a prompt (after a space)."""
    return tokenizer.encode(" " + obj.strip(), prepend_bos=False)


def object_token(tokenizer: Any, obj: str, single: bool = False) -> int:
    """The first token of ``" " + obj``; ``single=True`` raises when the object is several tokens."""
    ids = object_tokens(tokenizer, obj)
    if not ids:
        raise ValueError(f"object {obj!r} tokenizes to nothing")
    if single and len(ids) > 1:
        pieces = [tokenizer.to_string([i]) for i in ids]
        raise ValueError(f"object {obj!r} is {len(ids)} tokens {pieces}; this measure needs a single-token "
                         "object (choose another object, or score its first token)")
    return ids[0]


def subject_span(tokenizer: Any, prompt: str, subject: str) -> tuple[int, int]:
    """Token span ``(start, stop)`` of ``subject`` inside ``prompt``; a clear error when it is absent."""
    if subject not in prompt:
        raise ValueError(f"subject {subject!r} is not in its prompt {prompt!r}")
    return tokenizer.span_tokens(prompt, subject)


# model -> whether unembedding the last position alone reproduces its own logits (checked on its first batch)
_LAST_ONLY: "weakref.WeakKeyDictionary[Any, bool]" = weakref.WeakKeyDictionary()


@torch.no_grad()
def next_token_logits(model: Any, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The last position's logits ``[batch d_vocab]``, the unembedding run there alone (a fifth of SmolLM2's
    forward per position) where that reproduces the model's own logits (checked on a model's first batch),
    else from the full forward."""
    n_layers = model.cfg.n_layers
    if _LAST_ONLY.get(model, True):
        resid = model(tokens, attention_mask=mask, stop_at_layer=n_layers)[:, -1:]
        logits = model(resid, start_at_layer=n_layers)[:, -1].float()
        if model not in _LAST_ONLY:
            _LAST_ONLY[model] = reproduces(logits, model(tokens, attention_mask=mask)[:, -1].float())
        if _LAST_ONLY[model]:
            return logits
    return model(tokens, attention_mask=mask)[:, -1].float()


@torch.no_grad()
def last_logits(model: Any, prompts: Sequence[str], batch_size: int = 64) -> torch.Tensor:
    """Next-token logits [len(prompts) d_vocab] after each prompt (left-padded batches)."""
    out = []
    for start in range(0, len(prompts), batch_size):
        tokens, mask = model.tokenizer.batch(list(prompts[start : start + batch_size]), padding_side="left")
        out.append(next_token_logits(model, tokens, mask))
    return torch.cat(out)


def known_facts(model: Any, facts: Sequence[Fact], template_index: int = 0, batch_size: int = 64) -> pd.DataFrame:
    """One row per fact: ``subject relation object prompt answer predicted known p_answer rank``.

    ``known``: the greedy next token after the prompt is the object's first token."""
    tokenizer = model.tokenizer
    prompts = [prompt_for(f, RELATIONS[f.relation].templates[template_index]) for f in facts]
    answers = torch.tensor([object_token(tokenizer, f.object) for f in facts])
    logits = last_logits(model, prompts, batch_size)
    probs = torch.softmax(logits, -1)
    rows = torch.arange(len(facts))
    answer_logit = logits[rows, answers]
    return pd.DataFrame({
        "subject": [f.subject for f in facts], "relation": [f.relation for f in facts],
        "object": [f.object for f in facts], "prompt": prompts, "answer": answers.tolist(),
        "predicted": [tokenizer.to_string([i]) for i in logits.argmax(-1).tolist()],
        "known": (logits.argmax(-1) == answers).tolist(),
        "p_answer": probs[rows, answers].tolist(),
        "rank": (logits > answer_logit[:, None]).sum(-1).tolist(),
    })
