"""Sampling continuations from a model with a key/value cache: temperature, top-k, nucleus (top-p),
a seed for reproducibility, stopping at the end-of-sequence token, batches of prompts of different lengths.

>>> from models.transformer import TransformerConfig
>>> model = Transformer(TransformerConfig(d_model=16, n_layers=2, n_heads=2, d_mlp=32, d_vocab=30, n_ctx=16))
>>> out = generate(model, torch.tensor([[1, 5, 7]]), max_new_tokens=4, temperature=0)
>>> out.shape                                        # the prompt, then 4 new tokens
torch.Size([1, 7])

The prompt runs through the model once; every later step feeds only the newest token, its
attention reading the earlier positions' keys and values from a cache (the ``attn.hook_rot_k``
/ ``hook_v`` activations, stored as the forwards make them). A causal model computes the
same logits either way (the forward's ``past_kv_cache``), so the tokens equal those of running
the full forward at every step, at a fraction of the cost.
"""

import contextlib
import warnings
from typing import Any, Callable, Optional, Sequence, Union

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

from models.transformer.kv_cache import KeyValueCache, last_logits
from models.transformer.model import Transformer

FwdHooks = Sequence[tuple[Union[str, Callable[[str], bool]], Callable]]


@torch.no_grad()
def generate(
    model: Transformer,
    prompt: Union[str, list[str], Int[Tensor, "batch pos"], Int[Tensor, "pos"]],
    max_new_tokens: int = 20,
    temperature: float = 1.0,
    top_k: Optional[int] = None,
    top_p: Optional[float] = None,
    seed: Optional[int] = None,
    attention_mask: Optional[Int[Tensor, "batch pos"]] = None,
    stop_at_eos: bool = True,
    eos_token_id: Optional[Union[int, Sequence[int]]] = None,
    pad_token_id: Optional[int] = None,
    fwd_hooks: FwdHooks = (),
    use_cache: bool = True,
) -> Union[str, list[str], Int[Tensor, "batch pos"]]:
    """Append up to ``max_new_tokens`` sampled tokens to ``prompt``.

    >>> from models import zoo
    >>> model = zoo.load("smollm2")
    >>> generate(model, "The capital of France is", max_new_tokens=3, temperature=0)
    'The capital of France is Paris.\\n'
    >>> tokens, mask = model.tokenizer.batch(["Hi", "The sky is"], padding_side="left")
    >>> generate(model, tokens, 8, temperature=0, attention_mask=mask).shape
    torch.Size([2, 11])

    ``temperature=0`` picks the most likely token; otherwise logits are divided by the
    temperature, restricted to the ``top_k`` most likely tokens and then to the nucleus
    (Holtzman et al. 2020, section 3.1: the smallest set of most likely tokens whose
    probability reaches ``top_p``; the most likely token is always kept), in the order
    Hugging Face applies them. A ``seed`` makes sampling reproducible through a private
    generator; the global RNG is untouched.

    A string prompt (needs ``model.tokenizer``) returns a string; a list of strings is
    left-padded and returns a list of strings. Tokens return tokens [batch pos + new]; rows of
    different lengths come left-padded with an ``attention_mask`` (1 at real tokens), as
    Hugging Face takes them, and each row generates what it generates alone.

    With ``stop_at_eos`` a row stops at the end-of-sequence token (``eos_token_id``, default
    the tokenizer's; an int or several) and is filled with ``pad_token_id`` (default the
    tokenizer's pad token, else the EOS token) while the others go on; generation ends when
    every row has stopped, so the result can be shorter than ``max_new_tokens``. It also
    stops, with a warning, when the sequence fills the context window (``n_ctx``).

    Hooks already on the model (``model.hooks(...)``, ``model.add_hook``) fire at every step,
    and ``fwd_hooks=[(name, fn), ...]`` adds hooks for this generation only (removed afterwards,
    even on error). With the cache a hook sees the step's positions only: the whole prompt
    first, then one position per step (``hook_pattern`` [batch head_index 1 key_pos]), and
    ``ln_final``'s hooks the last position only (the only logits read); the cache holds keys
    and values as the hooks left them. ``use_cache=False`` runs the full
    forward at every step instead, for hooks that index absolute positions.
    """
    check_sampling_arguments(max_new_tokens, temperature, top_k, top_p)
    tokens, mask = prompt_tokens(model, prompt, attention_mask, pad_token_id)
    eos_ids = end_of_sequence_ids(model, stop_at_eos, eos_token_id)
    if eos_ids is not None:
        eos_ids = eos_ids.to(tokens.device)
        pad_token_id = padding_id(model, pad_token_id, int(eos_ids[0]))
    generator = torch.Generator(device=tokens.device).manual_seed(seed) if seed is not None else None
    n_ctx = model.cfg.n_ctx
    room = n_ctx - tokens.shape[1]
    if room < max_new_tokens:
        warnings.warn(
            f"prompt of {tokens.shape[1]} tokens leaves room for {max(room, 0)} of {max_new_tokens} new "
            f"tokens before n_ctx={n_ctx}; generation stops there.",
            stacklevel=3,
        )
    n_steps = max(0, min(max_new_tokens, room))
    cache = KeyValueCache(model.cfg.n_layers, tokens.shape[1] + n_steps) if use_cache else None
    step_hooks = model.hooks(fwd_hooks=list(fwd_hooks)) if fwd_hooks else contextlib.nullcontext()
    was_training = model.training
    model.eval()
    try:
        with step_hooks:
            new, real = sampled_tokens(model, tokens, mask, n_steps, cache, eos_ids, pad_token_id,
                                       lambda logits: next_token(logits, temperature, top_k, top_p, generator))
    finally:
        model.train(was_training)
    out = torch.cat([tokens, new], dim=1)
    if isinstance(prompt, str):
        return model.to_string(out[0])
    if isinstance(prompt, list):
        keep = torch.cat([torch.ones_like(tokens) if mask is None else mask, real.long()], dim=1).bool()
        return [model.to_string(row[kept]) for row, kept in zip(out, keep)]
    return out


def sampled_tokens(
    model: Transformer,
    tokens: Int[Tensor, "batch pos"],
    mask: Optional[Int[Tensor, "batch pos"]],
    n_steps: int,
    cache: Optional[KeyValueCache],
    eos_ids: Optional[Tensor],
    pad_token_id: Optional[int],
    choose: Callable[[Tensor], Tensor],
) -> tuple[Int[Tensor, "batch new"], Bool[Tensor, "batch new"]]:
    """The generation loop: up to ``n_steps`` tokens chosen from the last position's logits, and
    whether each is real (False for the padding of a row after its EOS token).

    With a ``cache`` each step feeds the newest token only; without, the whole
    sequence. Stops early once every row has produced an EOS token.
    """
    batch = tokens.shape[0]
    new = tokens.new_empty(batch, 0)
    real = torch.ones(batch, 0, dtype=torch.bool, device=tokens.device)
    if n_steps == 0:
        return new, real
    logits = cache.forward(model, tokens, mask) if cache is not None else last_logits(model, tokens, mask)
    finished = torch.zeros(batch, 1, dtype=torch.bool, device=tokens.device)
    for step in range(n_steps):
        token = choose(logits)  # [batch 1]
        real = torch.cat([real, ~finished], dim=1)
        if eos_ids is not None:
            token = token.masked_fill(finished, pad_token_id)
            finished = finished | torch.isin(token, eos_ids)
        new = torch.cat([new, token], dim=1)
        if step + 1 == n_steps or (eos_ids is not None and bool(finished.all())):
            break
        if mask is not None:
            mask = torch.cat([mask, torch.ones_like(token)], dim=1)
        if cache is not None:
            logits = cache.forward(model, token, mask)
        else:
            logits = last_logits(model, torch.cat([tokens, new], dim=1), mask)
    return new, real


def chat_reply(model: Transformer, messages: list[dict[str, str]], max_new_tokens: int = 256, **sampling: Any) -> str:
    """The assistant's next message in a conversation ``[{"role": ..., "content": ...}, ...]``.

    >>> from models import zoo
    >>> chat_reply(zoo.load("smollm2"), [{"role": "user", "content": "Hi!"}], temperature=0)
    'Hello! How can I assist you today?'

    The conversation goes through the model's chat template (``model.tokenizer.chat_prompt``) and
    the reply is generated until the tokenizer's end-of-sequence token, which for an instruct model
    ends its turn (SmolLM2's ``<|im_end|>``); ``sampling`` goes to ``generate``.
    """
    eos = model.tokenizer.eos_token_id
    if eos is None:
        raise ValueError("the tokenizer has no end-of-sequence token to end the reply at.")
    tokens = model.to_tokens(model.tokenizer.chat_prompt(messages))
    reply = generate(model, tokens, max_new_tokens, eos_token_id=eos, **sampling)[0, tokens.shape[1]:]
    ends = (reply == eos).nonzero()
    return model.to_string(reply[: int(ends[0, 0])] if len(ends) else reply).strip()


def next_token(
    logits: Float[Tensor, "batch d_vocab"],
    temperature: float,
    top_k: Optional[int] = None,
    top_p: Optional[float] = None,
    generator: Optional[torch.Generator] = None,
) -> Int[Tensor, "batch 1"]:
    """One token per row of ``logits``: greedy at temperature 0, else sampled from the filtered softmax."""
    if temperature == 0:
        return logits.argmax(dim=-1, keepdim=True)
    probs = filter_logits(logits / temperature, top_k, top_p).float().softmax(dim=-1)
    return torch.multinomial(probs, 1, generator=generator)


def filter_logits(
    logits: Float[Tensor, "batch d_vocab"], top_k: Optional[int] = None, top_p: Optional[float] = None
) -> Float[Tensor, "batch d_vocab"]:
    """``logits`` with ``-inf`` outside the ``top_k`` most likely tokens, then outside the nucleus:
    the most likely tokens whose probability reaches ``top_p`` (a token is kept while the tokens
    ranked above it hold less than ``top_p``), as ``transformers``' ``TopKLogitsWarper`` and
    ``TopPLogitsWarper`` do."""
    if top_k is not None and top_k < logits.shape[-1]:
        kth = logits.topk(top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1:
        ranked, order = logits.sort(dim=-1, descending=True)
        probs = ranked.float().softmax(dim=-1)
        drop = probs.cumsum(dim=-1) - probs >= top_p  # the mass ranked above; 0 for the top token
        logits = logits.masked_fill(drop.scatter(-1, order, drop), float("-inf"))
    return logits


def check_sampling_arguments(max_new_tokens: int, temperature: float, top_k: Optional[int],
                             top_p: Optional[float]) -> None:
    """Raise ``ValueError`` naming the argument to change."""
    if not isinstance(max_new_tokens, int) or isinstance(max_new_tokens, bool) or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be an integer >= 0, got {max_new_tokens!r}.")
    if not temperature >= 0:
        raise ValueError(f"temperature must be >= 0 (0 is greedy), got {temperature}.")
    if top_k is not None and (not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1):
        raise ValueError(f"top_k must be a positive integer or None, got {top_k!r}.")
    if top_p is not None and not 0 < top_p <= 1:
        raise ValueError(f"top_p must lie in (0, 1] (1 keeps every token) or be None, got {top_p!r}.")


def prompt_tokens(
    model: Any, prompt: Any, attention_mask: Optional[Tensor], pad_token_id: Optional[int]
) -> tuple[Int[Tensor, "batch pos"], Optional[Int[Tensor, "batch pos"]]]:
    """Tokens [batch pos] on the model's device and the attention mask (None when nothing is padded)."""
    device = model.embed.W_E.device
    if isinstance(prompt, (str, list)):
        if attention_mask is not None:
            raise ValueError("attention_mask goes with token prompts; text prompts are padded for you.")
        if isinstance(prompt, str):
            return model.to_tokens(prompt).to(device), None
        if not prompt or not all(isinstance(text, str) for text in prompt):
            raise ValueError("a list prompt must hold at least one string, and only strings.")
        rows = [model.to_tokens(text)[0] for text in prompt]
        width = max(len(row) for row in rows)
        pad = padding_id(model, pad_token_id, None)
        tokens = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            tokens[i, width - len(row):], mask[i, width - len(row):] = row, 1
        return tokens.to(device), (mask.to(device) if not mask.all() else None)
    if not isinstance(prompt, Tensor) or prompt.ndim not in (1, 2):
        raise ValueError(f"prompt must be a string, a list of strings or tokens [batch pos], got "
                         f"{tuple(prompt.shape) if isinstance(prompt, Tensor) else type(prompt).__name__}.")
    tokens = (prompt[None] if prompt.ndim == 1 else prompt).to(device)
    if tokens.shape[1] == 0:
        raise ValueError("the prompt holds no tokens; generation needs at least one to continue.")
    if attention_mask is None:
        return tokens, None
    mask = attention_mask[None] if attention_mask.ndim == 1 else attention_mask
    if mask.shape != tokens.shape:
        raise ValueError(f"attention_mask has shape {tuple(mask.shape)} but the tokens {tuple(tokens.shape)}.")
    if not ((mask == 0) | (mask == 1)).all():
        raise ValueError("attention_mask must hold 0 (padding) and 1 (real tokens) only.")
    if (mask[:, 1:] < mask[:, :-1]).any() or not mask[:, -1].all():
        raise ValueError("attention_mask must be left-padded (0s before 1s in every row, each row with a real "
                         "token): new tokens follow the last position; use tokenizer.batch(texts, "
                         "padding_side='left').")
    return tokens, (mask.to(device).long() if not mask.all() else None)


def end_of_sequence_ids(model: Any, stop_at_eos: bool, eos_token_id: Any) -> Optional[Int[Tensor, "n_eos"]]:
    """The token ids that end a row, or None when rows never stop early."""
    if not stop_at_eos:
        if eos_token_id is not None:
            raise ValueError("eos_token_id is given but stop_at_eos=False; drop one of them.")
        return None
    if eos_token_id is None:
        eos_token_id = getattr(getattr(model, "tokenizer", None), "eos_token_id", None)
        if eos_token_id is None:
            return None  # a tokenizer without an end-of-sequence token (ours): nothing to stop at
    ids = [eos_token_id] if isinstance(eos_token_id, int) else list(eos_token_id)
    if not ids or not all(isinstance(i, int) and 0 <= i < model.cfg.d_vocab for i in ids):
        raise ValueError(f"eos_token_id must be a token id in [0, {model.cfg.d_vocab}) or a list of them, "
                         f"got {eos_token_id!r}.")
    return torch.tensor(ids, dtype=torch.long)


def padding_id(model: Any, pad_token_id: Optional[int], eos: Optional[int]) -> int:
    """``pad_token_id``, else the tokenizer's pad token, else the end-of-sequence token (Hugging Face's rule)."""
    if pad_token_id is None:
        pad_token_id = getattr(getattr(model, "tokenizer", None), "pad_token_id", None)
    if pad_token_id is None:
        pad_token_id = eos
    if pad_token_id is None:
        raise ValueError("no padding token: pass pad_token_id (the tokenizer has none).")
    if not isinstance(pad_token_id, int) or not 0 <= pad_token_id < model.cfg.d_vocab:
        raise ValueError(f"pad_token_id must be a token id in [0, {model.cfg.d_vocab}), got {pad_token_id!r}.")
    return pad_token_id
