"""What a ROME edit is computed from besides its fact: the key covariance ``C`` and the sampled context prefixes.

Example::

    from analyses.facts_lm.edit_inputs import context_prefixes, edit_covariance

    C = edit_covariance(model, layer=4)            # [d_mlp d_mlp], cached in memory and on disk
    prefixes = context_prefixes(model, n=10, seed=0)

- ``C = E[k k^T]`` of ``blocks.{layer}.mlp.hook_post`` over news text shipped with gensim
  (``gensim/test/test_data/lee_background.cor``, 75,680 SmolLM2 tokens; by default the
  first 32,768 in 256 chunks of 128, every position but each chunk's first, where SmolLM2's
  keys are atypical: 32,512 keys; ROME: 100,000 Wikipedia articles of up to 1,024 tokens,
  every position);
- the context prefixes ``k*`` and ``v*`` are averaged over: short texts sampled from the model
  after its end-of-text token (half 5, half 10 tokens; ROME: 20 such prefixes);
- :func:`subject_batch`: left-padded prompts with their subject's last position, where keys are read.
"""

import hashlib
import importlib.util
import os
import weakref
from pathlib import Path
from typing import Any

import safetensors.torch as st
import torch
from jaxtyping import Float, Int
from torch import Tensor

from analyses.facts_lm.counterfact import EditSettings
from analyses.facts_lm.known import subject_span
from interp.editing import key_covariance
from models.transformer.sampling import generate
from models.zoo import cache_dir

COVARIANCE_TEXT = "gensim/test/test_data/lee_background.cor"  # inside the installed gensim package

_COVARIANCES: "weakref.WeakKeyDictionary[Any, dict]" = weakref.WeakKeyDictionary()
_PREFIXES: "weakref.WeakKeyDictionary[Any, dict]" = weakref.WeakKeyDictionary()


def covariance_text() -> str:
    """The news text the covariance is estimated on (Lee's corpus, in gensim's test data)."""
    spec = importlib.util.find_spec("gensim")
    if spec is None or spec.origin is None:
        raise ValueError("gensim is not installed; the key covariance is estimated on its test corpus "
                         f"({COVARIANCE_TEXT}); install the project's dependencies")
    return (Path(spec.origin).parent.parent / COVARIANCE_TEXT).read_text(encoding="utf-8")


def covariance_tokens(tokenizer: Any, n_tokens: int, chunk: int = 128) -> Int[Tensor, "batch pos"]:
    """The text's first ``n_tokens`` tokens (rounded down to whole chunks) as rows of ``chunk``."""
    ids = tokenizer.encode(covariance_text())
    n_rows = min(n_tokens, len(ids)) // chunk
    if n_tokens > len(ids):
        raise ValueError(f"the covariance text has {len(ids)} tokens, fewer than covariance_tokens={n_tokens}")
    return torch.tensor(ids[: n_rows * chunk]).reshape(n_rows, chunk)


def edit_covariance(model: Any, layer: int, settings: "EditSettings" = EditSettings(),
                    disk: bool = True) -> Float[Tensor, "d_mlp d_mlp"]:
    """``C = E[k k^T]`` of ``blocks.{layer}.mlp.hook_post`` over the covariance text (see the module docstring).

    Kept per model and layer in memory and, with ``disk``, under ``$INTERP_CACHE/edit_covariance``
    (safetensors, named by a hash of the text, the settings and the weights up to ``layer``).
    """
    key = (layer, settings.covariance_tokens, settings.chunk, settings.skip)
    memo = _COVARIANCES.setdefault(model, {})
    if key in memo:
        return memo[key]
    path = cache_dir() / "edit_covariance" / f"{_fingerprint(model, layer, key)}.safetensors" if disk else None
    if path is not None and path.is_file():
        memo[key] = st.load_file(path)["C"]
        return memo[key]
    tokens = covariance_tokens(model.tokenizer, settings.covariance_tokens, settings.chunk)
    mask = torch.ones_like(tokens, dtype=torch.bool)
    mask[:, : settings.skip] = False
    memo[key] = key_covariance(model, tokens, layer, mask=mask)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        st.save_file({"C": memo[key].contiguous()}, partial)
        os.replace(partial, path)  # atomic: an interrupted run leaves no half-written file
    return memo[key]


def _fingerprint(model: Any, layer: int, key: tuple) -> str:
    digest = hashlib.sha256(repr((COVARIANCE_TEXT, key, len(covariance_text()))).encode())
    for name, p in model.named_parameters():  # the keys depend on the embedding and blocks 0..layer
        if name.startswith("embed") or any(name.startswith(f"blocks.{b}.") for b in range(layer + 1)):
            digest.update(name.encode())
            digest.update(p.detach().float().contiguous().numpy().tobytes())
    return digest.hexdigest()[:24]


def context_prefixes(model: Any, n: int, seed: int) -> list[str]:
    """ROME's context templates: ``n`` short texts sampled (temperature 1, seeded) after the end-of-text token,
    the first half 5 tokens long, the rest 10."""
    memo = _PREFIXES.setdefault(model, {})
    if (n, seed) not in memo:
        start = torch.full((n, 1), model.tokenizer.eos_token_id, dtype=torch.long)
        out = generate(model, start, max_new_tokens=10, temperature=1.0, seed=seed, stop_at_eos=False)
        lengths = [5 if i < n // 2 else 10 for i in range(n)]
        memo[(n, seed)] = [model.tokenizer.to_string(row[1 : 1 + length]).strip() or "Text"
                           for row, length in zip(out, lengths)]
    return memo[(n, seed)]


def in_context(prefix: str, prompt: str) -> str:
    """``prompt`` after a context prefix, as ROME joins them (``"{prefix}. {prompt}"``); empty prefix: the bare prompt."""
    return f"{prefix}. {prompt}" if prefix else prompt


def subject_batch(tokenizer: Any, texts: list[str], subjects: list[str]) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Left-padded tokens, mask, the subject's last position and the last position of each text."""
    tokens, mask = tokenizer.batch(texts, padding_side="left")
    pad = mask.shape[1] - mask.sum(1)
    last_subject = torch.tensor([subject_span(tokenizer, t, s)[1] - 1 for t, s in zip(texts, subjects)])
    return tokens, mask, last_subject + pad, torch.full((len(texts),), tokens.shape[1] - 1)
