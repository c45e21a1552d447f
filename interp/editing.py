"""ROME: a rank-one edit of one MLP's down-projection that rewrites one fact.

Example::

    from interp.editing import key_covariance, subject_key, target_value, rome_update, edited

    C = key_covariance(model, corpus_tokens, layer=1)                     # E[k k^T]
    k = subject_key(model, prompts, subject_last, layer=1)                 # the subject's key
    v = target_value(model, prompts, subject_last, answer_last, new_id, layer=1)
    delta = rome_update(model.W_out[1], model.blocks[1].mlp.b_out, C, k, v)
    with edited(model, layer=1, delta=delta):
        model(prompts)                                                     # now says "golf"

Meng et al. 2022 ("Locating and Editing Factual Associations in GPT", sec. 3) treat the
down-projection ``W_out`` of a mid-layer MLP as a linear associative memory: a *key*
``k`` (the MLP hidden activation at the subject's last token) is mapped to a *value*
(the MLP output). To make ``k*`` map to a new value ``v*`` while disturbing other keys as
little as possible (least squares weighted by the key covariance ``C = E[k k^T]``), the
closed form (their eq. 2) is, in TransformerLens's row convention ``out = k W_out + b_out``::

    W_out' = W_out + (C^-1 k*) (v* - k* W_out - b_out)^T / (k*^T C^-1 k*)

``k*`` averages the key over several contexts of the subject; ``v*`` is found by gradient
descent on the MLP output at the subject's last token so that the new object becomes
likely (their eq. 4), with a penalty that keeps another prompt about the same subject
close to its original distribution (their KL "essence" term) and a small weight decay.

The key position is the caller's: ROME reads the key at the subject's last token because
causal tracing put GPT's fact lookup in mid-layer MLPs there. A model that looks facts up
elsewhere (the ``facts`` subject does it at the last token, after attention has gathered
both names) is edited where its trace points, with the key read at that position.
"""

import contextlib
from typing import Any, Iterator, Optional

import einops
import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor

POST = "blocks.{layer}.mlp.hook_post"
OUT = "blocks.{layer}.hook_mlp_out"


def key_covariance(
    model: Any,
    tokens: Int[Tensor, "batch pos"],
    layer: int,
    mask: Optional[Tensor] = None,
    ridge: float = 1e-4,
) -> Float[Tensor, "d_mlp d_mlp"]:
    """Uncentred second moment ``E[k k^T]`` of MLP keys over the (masked) corpus positions.

    ROME estimates it over Wikipedia tokens; here over the corpus the model was trained
    on. ``ridge`` (times the mean diagonal) keeps it invertible when keys span less than
    ``d_mlp`` dimensions, e.g. dead ReLU neurons.
    """
    name = POST.format(layer=layer)
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens, names_filter=lambda n: n == name)
    keys = cache[name] if mask is None else cache[name][mask]
    keys = keys.reshape(-1, keys.shape[-1]).double()
    cov = einops.einsum(keys, keys, "n d_mlp, n d_mlp2 -> d_mlp d_mlp2") / keys.shape[0]
    return cov + ridge * cov.diagonal().mean() * torch.eye(cov.shape[0], dtype=cov.dtype)


def subject_key(
    model: Any, tokens: Int[Tensor, "batch pos"], key_pos: Int[Tensor, "batch"], layer: int
) -> Float[Tensor, "d_mlp"]:
    """``k*``: the MLP key at ``key_pos`` (ROME: the subject's last token), averaged over the contexts."""
    name = POST.format(layer=layer)
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens, names_filter=lambda n: n == name)
    return cache[name][torch.arange(tokens.shape[0]), torch.as_tensor(key_pos)].mean(0)


def target_value(
    model: Any,
    tokens: Int[Tensor, "batch pos"],
    key_pos: Int[Tensor, "batch"],
    answer_pos: Int[Tensor, "batch"],
    new_answer: int,
    layer: int,
    *,
    keep_tokens: Optional[Int[Tensor, "keep pos"]] = None,
    keep_key_pos: Optional[Int[Tensor, "keep"]] = None,
    keep_answer_pos: Optional[Int[Tensor, "keep"]] = None,
    steps: int = 60,
    lr: float = 0.1,
    kl_weight: float = 1.0,
    weight_decay: float = 1e-3,
    target_probability: float = 0.98,
    seed: int = 0,
) -> Float[Tensor, "d_model"]:
    """``v*``: the MLP output at ``key_pos`` (ROME: the subject's last token) that makes ``new_answer`` likely.

    Optimises one vector ``delta`` added to the layer's MLP output at ``key_pos`` in every
    prompt: minimise ``-log p(new_answer)`` at ``answer_pos`` plus ``kl_weight`` x
    KL(original || edited) of the next-word distribution on the ``keep_*`` prompts plus
    ``weight_decay |delta|^2``. The keep prompts are those whose key at ``keep_key_pos`` is
    the edited key too (ROME: other facts about the same subject, at the subject's last
    token), so the edit will move their output by ``delta`` as well. Stops early once the
    mean probability of ``new_answer`` exceeds ``target_probability``. Returns
    ``mean_context(current output) + delta``.
    """
    if keep_tokens is not None and (keep_key_pos is None or keep_answer_pos is None):
        raise ValueError("keep_tokens needs keep_key_pos (where the edited key sits in each keep prompt) and "
                         "keep_answer_pos (where its next word is read)")
    name = OUT.format(layer=layer)
    rows = torch.arange(tokens.shape[0])
    key_pos, answer_pos = torch.as_tensor(key_pos), torch.as_tensor(answer_pos)
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens, names_filter=lambda n: n == name)
        current = cache[name][rows, key_pos].mean(0)
        if keep_tokens is not None:
            keep_rows = torch.arange(keep_tokens.shape[0])
            keep_logits = model(keep_tokens)[keep_rows, torch.as_tensor(keep_answer_pos)]
            keep_log_probs = F.log_softmax(keep_logits.float(), -1)
    torch.manual_seed(seed)
    delta = torch.zeros_like(current, requires_grad=True)
    optimizer = torch.optim.Adam([delta], lr=lr)

    def add_delta(positions: Tensor):
        def hook(act: Tensor, hook: Any) -> Tensor:
            act = act.clone()
            act[torch.arange(act.shape[0]), positions] += delta
            return act

        return hook

    flags = [(p, p.requires_grad) for p in model.parameters()]
    try:
        for p, _ in flags:
            p.requires_grad_(False)  # only delta learns
        for _ in range(steps):
            logits = model.run_with_hooks(tokens, fwd_hooks=[(name, add_delta(key_pos))])
            log_probs = F.log_softmax(logits[rows, answer_pos].float(), -1)
            if log_probs[:, new_answer].exp().mean() > target_probability:
                break
            loss = -log_probs[:, new_answer].mean() + weight_decay * delta.pow(2).sum()
            if keep_tokens is not None:
                edited_logits = model.run_with_hooks(keep_tokens, fwd_hooks=[(name, add_delta(torch.as_tensor(keep_key_pos)))])
                edited_log_probs = F.log_softmax(edited_logits[keep_rows, torch.as_tensor(keep_answer_pos)].float(), -1)
                loss = loss + kl_weight * F.kl_div(edited_log_probs, keep_log_probs, log_target=True,
                                                   reduction="batchmean")
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
    return (current + delta).detach()


def rome_update(
    W_out: Float[Tensor, "d_mlp d_model"],
    b_out: Optional[Float[Tensor, "d_model"]],
    C: Float[Tensor, "d_mlp d_mlp"],
    key: Float[Tensor, "d_mlp"],
    value: Float[Tensor, "d_model"],
) -> Float[Tensor, "d_mlp d_model"]:
    """The rank-one ``delta`` with ``key @ (W_out + delta) + b_out == value`` (ROME eq. 2)."""
    if C.shape != (W_out.shape[0], W_out.shape[0]):
        raise ValueError(f"C has shape {tuple(C.shape)} but W_out has d_mlp={W_out.shape[0]}; "
                         "estimate C at the same layer's mlp.hook_post")
    W, k, v = W_out.double(), key.double(), value.double()
    current = k @ W + (b_out.double() if b_out is not None else 0.0)
    c_inv_k = torch.linalg.solve(C.double(), k)
    delta = torch.outer(c_inv_k, v - current) / (c_inv_k @ k)
    return delta.to(W_out.dtype)


def edit_hooks(layer: int, delta: Float[Tensor, "d_mlp d_model"]) -> list[tuple[str, Any]]:
    """Hooks with the effect of ``W_out += delta`` on any hooked model: ``mlp_out += post @ delta``."""
    seen = {}

    def keep(act: Tensor, hook: Any) -> None:
        seen["post"] = act

    def add(act: Tensor, hook: Any) -> Tensor:
        return act + einops.einsum(seen.pop("post"), delta.to(act.dtype),
                                   "batch pos d_mlp, d_mlp d_model -> batch pos d_model")

    return [(POST.format(layer=layer), keep), (OUT.format(layer=layer), add)]


@contextlib.contextmanager
def edited(model: Any, layer: int, delta: Float[Tensor, "d_mlp d_model"]) -> Iterator[Any]:
    """Temporarily apply ``W_out += delta`` at ``layer``; undone on exit, even after an error.

    Edits the weight in place where ``blocks[layer].mlp.W_out`` is a parameter (our
    ``Transformer``), and otherwise (a ``TransformerBridge``, whose ``W_out`` is a view)
    attaches :func:`edit_hooks` for the duration.
    """
    W_out = getattr(model.blocks[layer].mlp, "W_out", None)
    if not isinstance(W_out, torch.nn.Parameter):
        with model.hooks(fwd_hooks=edit_hooks(layer, delta)):
            yield model
        return
    original = W_out.detach().clone()
    with torch.no_grad():
        W_out.add_(delta.to(W_out.dtype))
    try:
        yield model
    finally:
        with torch.no_grad():
            W_out.copy_(original)
