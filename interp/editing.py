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
from jaxtyping import Float, Int
from torch import Tensor

from interp.hook_names import act_name
from interp.rome_values import target_value, target_values

__all__ = ["edit_hooks", "edited", "key_covariance", "mlp_keys", "rome_update", "subject_key", "target_value",
           "target_values"]



class _KeysMade(Exception):
    """Raised by the hook that caught the keys: nothing after the layer's MLP is needed."""


def mlp_keys(
    model: Any, tokens: Int[Tensor, "batch pos"], layer: int, attention_mask: Optional[Tensor] = None
) -> Float[Tensor, "batch pos d_mlp"]:
    """The MLP keys (``blocks.{layer}.mlp.hook_post``) of ``tokens``; the forward stops once they are made.

    Stopping is done by the hook itself (it raises once it has the keys, as ROME's
    ``nethook`` does), so it works on any hooked model and skips the layers above
    ``layer``: a sixth of SmolLM2's forward for layer 4 of 30.
    """
    seen = {}

    def catch(act: Tensor, hook: Any) -> None:
        seen["keys"] = act.detach()
        raise _KeysMade

    kwargs = {} if attention_mask is None else {"attention_mask": attention_mask}
    with torch.no_grad():
        try:
            with model.hooks(fwd_hooks=[(act_name("post", layer), catch)]):
                model(tokens, **kwargs)
        except _KeysMade:
            pass
    if "keys" not in seen:
        raise ValueError(f"the forward never reached {act_name('post', layer)}; is layer={layer} a block of "
                         "the model?")
    return seen["keys"]


def key_covariance(
    model: Any,
    tokens: Int[Tensor, "batch pos"],
    layer: int,
    mask: Optional[Tensor] = None,
    ridge: float = 1e-4,
    attention_mask: Optional[Tensor] = None,
    batch_size: int = 32,
) -> Float[Tensor, "d_mlp d_mlp"]:
    """Uncentred second moment ``E[k k^T]`` of MLP keys over the (masked) corpus positions.

    ROME estimates it over Wikipedia tokens; here over the corpus the model was trained
    on. ``ridge`` (times the mean diagonal) keeps it invertible when keys span less than
    ``d_mlp`` dimensions, e.g. dead ReLU neurons. ``mask`` [batch pos] picks the positions
    that count; ``attention_mask`` is passed to the forward (padded batches). Runs
    ``batch_size`` rows at a time, each forward stopped at the layer (:func:`mlp_keys`),
    and sums in float64.
    """
    if mask is not None and mask.shape != tokens.shape:
        raise ValueError(f"mask has shape {tuple(mask.shape)} but tokens {tuple(tokens.shape)}; one entry per position")
    total, count = None, 0
    for start in range(0, tokens.shape[0], batch_size):
        rows = slice(start, start + batch_size)
        keys = mlp_keys(model, tokens[rows], layer, None if attention_mask is None else attention_mask[rows])
        keys = keys if mask is None else keys[mask[rows].bool()]
        keys = keys.reshape(-1, keys.shape[-1]).double()
        moment = einops.einsum(keys, keys, "n d_mlp, n d_mlp2 -> d_mlp d_mlp2")
        total = moment if total is None else total + moment
        count += keys.shape[0]
    if not count:
        raise ValueError("no corpus position to estimate the key covariance from (empty tokens or mask)")
    cov = total / count
    return cov + ridge * cov.diagonal().mean() * torch.eye(cov.shape[0], dtype=cov.dtype)


def subject_key(
    model: Any,
    tokens: Int[Tensor, "batch pos"],
    key_pos: Int[Tensor, "batch"],
    layer: int,
    attention_mask: Optional[Tensor] = None,
) -> Float[Tensor, "d_mlp"]:
    """``k*``: the MLP key at ``key_pos`` (ROME: the subject's last token), averaged over the contexts."""
    keys = mlp_keys(model, tokens, layer, attention_mask)
    return keys[torch.arange(tokens.shape[0]), torch.as_tensor(key_pos)].mean(0)


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

    return [(act_name("post", layer), keep), (act_name("mlp_out", layer), add)]


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
