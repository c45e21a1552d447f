"""Sampling continuations from a model: temperature, top-k, a seed for reproducibility."""

import warnings
from typing import Any, Optional, Union

import torch
from jaxtyping import Int
from torch import Tensor


@torch.no_grad()
def generate(
    model: Any,
    prompt: Union[str, Tensor],
    max_new_tokens: int = 20,
    temperature: float = 1.0,
    top_k: Optional[int] = None,
    seed: Optional[int] = None,
) -> Union[str, list[str], Int[Tensor, "batch pos"]]:
    """Append up to ``max_new_tokens`` sampled tokens to ``prompt``.

    >>> tokens = generate(model, torch.tensor([[1, 5, 7]]), max_new_tokens=4, temperature=0)  # greedy

    ``temperature=0`` picks the most likely token; otherwise logits are divided by
    the temperature and, with ``top_k``, restricted to the ``k`` most likely tokens.
    A ``seed`` makes sampling reproducible without touching the global RNG. A string
    prompt (needs ``model.tokenizer``) returns a string; tokens return tokens
    [batch pos + new]. Generation stops early, with a warning, when the sequence fills
    the context window (``n_ctx``): position embeddings exist only up to there.
    """
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}.")
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0 (0 is greedy), got {temperature}.")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be a positive integer or None, got {top_k}.")
    tokens = model.to_tokens(prompt) if isinstance(prompt, (str, list)) else prompt
    tokens = tokens.unsqueeze(0) if tokens.ndim == 1 else tokens
    tokens = tokens.to(model.embed.W_E.device)
    generator = torch.Generator(device=tokens.device).manual_seed(seed) if seed is not None else None
    n_ctx = model.cfg.n_ctx
    room = n_ctx - tokens.shape[1]
    if room < max_new_tokens:
        warnings.warn(
            f"prompt of {tokens.shape[1]} tokens leaves room for {max(room, 0)} of {max_new_tokens} new "
            f"tokens before n_ctx={n_ctx}; generation stops there.",
            stacklevel=3,
        )
    was_training = model.training
    model.eval()
    try:
        for _ in range(max(0, min(max_new_tokens, room))):
            logits = model(tokens)[:, -1, :]
            tokens = torch.cat([tokens, next_token(logits, temperature, top_k, generator)], dim=1)
    finally:
        model.train(was_training)
    if isinstance(prompt, (str, list)):
        return model.to_string(tokens if isinstance(prompt, list) else tokens[0])
    return tokens


def next_token(
    logits: torch.Tensor, temperature: float, top_k: Optional[int], generator: Optional[torch.Generator]
) -> Int[Tensor, "batch 1"]:
    """One token per row of ``logits`` [batch d_vocab]: greedy at temperature 0, else sampled."""
    if temperature == 0:
        return logits.argmax(dim=-1, keepdim=True)
    logits = logits / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        kth = logits.topk(top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = logits.float().softmax(dim=-1)
    return torch.multinomial(probs, 1, generator=generator)
