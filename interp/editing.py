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

from interp.resume import accepts_prefix_kv, accepts_start_at_layer, reproduces

POST = "blocks.{layer}.mlp.hook_post"
OUT = "blocks.{layer}.hook_mlp_out"


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
            with model.hooks(fwd_hooks=[(POST.format(layer=layer), catch)]):
                model(tokens, **kwargs)
        except _KeysMade:
            pass
    if "keys" not in seen:
        raise ValueError(f"the forward never reached {POST.format(layer=layer)}; is layer={layer} a block of "
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


class _Resumed:
    """A batch of prompts whose layer-``layer`` MLP output will move at ``key_pos``: its unedited
    run (logits, that output), and forwards with a move added there.

    Nothing before block ``layer`` or before the earliest ``key_pos`` changes, so where the
    model takes ``start_at_layer`` and ``prefix_kv`` (ours) the moved forward starts at block
    ``layer`` on the positions from the earliest key on, the earlier ones entering as their
    cached keys and values, and stops before the unembedding, which runs on the answer
    positions alone (on SmolLM2 the unembedding of every position was a quarter of a step).
    Checked on every batch against the model's own forward (the unmoved resumed logits
    must reproduce the full ones at the answers; the full run is needed anyway); otherwise
    every forward runs whole.
    """

    def __init__(self, model: Any, tokens: Tensor, key_pos: Tensor, layer: int, attention_mask: Optional[Tensor],
                 answer_pos: Tensor):
        self.model, self.tokens, self.layer = model, tokens, layer
        self.key_pos, self.answer_pos = torch.as_tensor(key_pos), torch.as_tensor(answer_pos)
        self.rows = torch.arange(tokens.shape[0])
        self.kwargs = {} if attention_mask is None else {"attention_mask": attention_mask}
        self.out = OUT.format(layer=layer)
        n_layers = model.cfg.n_layers
        first = int(self.key_pos.min())
        resumable = accepts_start_at_layer(model) and (first == 0 or accepts_prefix_kv(model))
        names = {self.out}
        if resumable:
            names |= {f"blocks.{layer}.hook_resid_pre"} | {f"blocks.{b}.attn.hook_{kv}" for b in range(layer, n_layers)
                                                           for kv in "kv"}
        with torch.no_grad():
            logits, cache = model.run_with_cache(tokens, names_filter=lambda n: n in names, **self.kwargs)
        self.logits = logits[self.rows, self.answer_pos]  # [batch d_vocab], unedited
        self.mlp_out = cache[self.out][self.rows, self.key_pos]  # [batch d_model]
        self.offset, self.resid, self.prefix = 0, None, None
        if resumable and bool((self.answer_pos >= first).all()):
            self.offset, self.resid = first, cache[f"blocks.{layer}.hook_resid_pre"][:, first:]
            if first:
                self.prefix = [tuple(cache[f"blocks.{b}.attn.hook_{kv}"][:, :first] for kv in "kv")
                               for b in range(layer, n_layers)]
            try:
                with torch.no_grad():
                    ok = reproduces(self._resumed([]), self.logits)
            except Exception:  # noqa: BLE001 - any failure means: run the whole forward
                ok = False
            if not ok:
                self.offset, self.resid, self.prefix = 0, None, None

    def _resumed(self, fwd_hooks: list, rows: Optional[Tensor] = None) -> Tensor:
        rows = self.rows if rows is None else rows
        n_layers = self.model.cfg.n_layers
        prefix = None if self.prefix is None else [(k[rows], v[rows]) for k, v in self.prefix]
        with self.model.hooks(fwd_hooks=fwd_hooks):
            resid = self.model(self.resid[rows], start_at_layer=self.layer, stop_at_layer=n_layers, prefix_kv=prefix,
                               **self._kwargs(rows))
        last = resid[torch.arange(len(rows)), self.answer_pos[rows] - self.offset]
        return self.model(last[:, None], start_at_layer=n_layers)[:, 0]

    def _kwargs(self, rows: Tensor) -> dict:
        return {name: mask[rows] for name, mask in self.kwargs.items()}

    def moved(self, delta: Float[Tensor, "row d_model"], rows: Optional[Int[Tensor, "row"]] = None
              ) -> Float[Tensor, "row d_vocab"]:
        """Logits at ``answer_pos`` with ``delta[i]`` added to the MLP output at ``key_pos`` of row ``rows[i]``
        (default: every row); the other rows are not run."""
        rows = self.rows if rows is None else rows
        at = self.key_pos[rows] - self.offset

        def add(act: Tensor, hook: Any) -> Tensor:
            act = act.clone()
            act[torch.arange(len(rows)), at] += delta
            return act

        if self.resid is None:
            logits = self.model.run_with_hooks(self.tokens[rows], fwd_hooks=[(self.out, add)], **self._kwargs(rows))
            return logits[torch.arange(len(rows)), self.answer_pos[rows]]
        return self._resumed([(self.out, add)], rows)


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
    attention_mask: Optional[Int[Tensor, "batch pos"]] = None,
    keep_attention_mask: Optional[Int[Tensor, "keep pos"]] = None,
    clamp_norm_factor: Optional[float] = None,
    info: Optional[dict] = None,
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

    ``attention_mask`` / ``keep_attention_mask`` go to the forwards of padded batches.
    ``clamp_norm_factor`` keeps ``|delta|`` within that many times the norm of the current
    output (ROME's ``clamp_norm_factor``, 4 for GPT-2 XL). ``info``, a dict, receives
    ``steps`` (gradient steps taken) and ``p_new`` (mean probability of ``new_answer`` with
    ``v*``, over the prompts). Several edits at once, in one batch: :func:`target_values`.
    """
    if keep_tokens is not None and (keep_key_pos is None or keep_answer_pos is None):
        raise ValueError("keep_tokens needs keep_key_pos (where the edited key sits in each keep prompt) and "
                         "keep_answer_pos (where its next word is read)")
    parts = [(_Resumed(model, tokens, key_pos, layer, attention_mask, answer_pos),
              torch.full((tokens.shape[0],), int(new_answer)), torch.zeros(tokens.shape[0], dtype=torch.long))]
    if keep_tokens is not None:
        n_keep = keep_tokens.shape[0]
        parts.append((_Resumed(model, keep_tokens, keep_key_pos, layer, keep_attention_mask, keep_answer_pos),
                      torch.full((n_keep,), -1), torch.zeros(n_keep, dtype=torch.long)))
    per_group: dict = {}
    value = _optimise_values(model, parts, 1, steps=steps, lr=lr, kl_weight=kl_weight, weight_decay=weight_decay,
                             target_probability=target_probability, seed=seed, clamp_norm_factor=clamp_norm_factor,
                             info=per_group)[0]
    if info is not None:
        info.update(steps=int(per_group["steps"][0]), p_new=float(per_group["p_new"][0]))
    return value


def target_values(
    model: Any,
    tokens: Int[Tensor, "batch pos"],
    key_pos: Int[Tensor, "batch"],
    answer_pos: Int[Tensor, "batch"],
    new_answer: Int[Tensor, "batch"],
    group: Int[Tensor, "batch"],
    layer: int,
    *,
    attention_mask: Optional[Int[Tensor, "batch pos"]] = None,
    steps: int = 60,
    lr: float = 0.1,
    kl_weight: float = 1.0,
    weight_decay: float = 1e-3,
    target_probability: float = 0.98,
    seed: int = 0,
    clamp_norm_factor: Optional[float] = None,
    info: Optional[dict] = None,
) -> Float[Tensor, "group d_model"]:
    """:func:`target_value` for several edits at once, one value per ``group``, from one batch.

    Example (two edits, each with two rewriting prompts and one keep prompt)::

        group      = torch.tensor([0, 0, 0, 1, 1, 1])
        new_answer = torch.tensor([7, 7, -1, 9, 9, -1])       # -1: a keep prompt (KL term)
        values = target_values(model, tokens, key_pos, answer_pos, new_answer, group, layer,
                               attention_mask=mask)           # [2 d_model]

    Row ``i`` belongs to edit ``group[i]`` (0, 1, ...); with ``new_answer[i] >= 0`` it is a
    rewriting prompt (``-log p(new_answer[i])`` at ``answer_pos[i]``), with ``-1`` a keep
    prompt (KL to its own unedited next-word distribution there). Each edit's ``delta`` is
    added at the ``key_pos`` of its own rows only and the edits' losses are summed, so the
    gradients (and Adam, which acts per entry) are those of separate optimisations; an
    edit stops moving once its rewriting prompts reach ``target_probability``. On a small
    model a step costs about as much for one prompt as for tens (reading the weights
    dominates), so one batch of many edits is many times faster than one call per edit.
    ``info`` receives ``steps`` and ``p_new`` per edit (lists).
    """
    group = torch.as_tensor(group)
    n_groups = int(group.max()) + 1 if len(group) else 0
    new_answer = torch.as_tensor(new_answer)
    missing = sorted(set(range(n_groups)) - set(group[new_answer >= 0].tolist()))
    if missing:
        raise ValueError(f"edits {missing} have no rewriting prompt (new_answer >= 0); each group needs one")
    part = (_Resumed(model, tokens, key_pos, layer, attention_mask, answer_pos), new_answer, group)
    return _optimise_values(model, [part], n_groups, steps=steps, lr=lr, kl_weight=kl_weight,
                            weight_decay=weight_decay, target_probability=target_probability, seed=seed,
                            clamp_norm_factor=clamp_norm_factor, info=info)


def _optimise_values(model: Any, parts: list, n_groups: int, *, steps: int, lr: float, kl_weight: float,
                     weight_decay: float, target_probability: float, seed: int, clamp_norm_factor: Optional[float],
                     info: Optional[dict]) -> Float[Tensor, "group d_model"]:
    """The optimisation behind :func:`target_value` and :func:`target_values` (ROME eq. 4).

    ``parts``: ``(batch, new_answer, group)`` per batch run, rows as in :func:`target_values`."""
    current, count = 0.0, torch.zeros(n_groups)
    for batch, new, group in parts:  # each edit's current output: the mean over its rewriting rows
        rewrite = new >= 0
        sums = torch.zeros(n_groups, batch.mlp_out.shape[-1], dtype=batch.mlp_out.dtype)
        current = current + sums.index_add(0, group[rewrite], batch.mlp_out[rewrite])
        count += torch.bincount(group[rewrite], minlength=n_groups)
    current = current / count[:, None]
    original = [F.log_softmax(batch.logits.float(), -1) for batch, _, _ in parts]
    torch.manual_seed(seed)
    delta = torch.zeros_like(current, requires_grad=True)
    optimizer = torch.optim.Adam([delta], lr=lr)
    max_norm = None if clamp_norm_factor is None else clamp_norm_factor * current.norm(dim=-1, keepdim=True)
    active = torch.ones(n_groups, dtype=torch.bool)
    taken = torch.zeros(n_groups, dtype=torch.long)
    p_new = torch.full((n_groups,), float("nan"))

    flags = [(p, p.requires_grad) for p in model.parameters()]
    try:
        for p, _ in flags:
            p.requires_grad_(False)  # only delta learns
        for step in range(steps + 1):
            nll, kl = torch.zeros(n_groups), torch.zeros(n_groups)
            p_sum = torch.zeros(n_groups)
            for (batch, new, group), unedited in zip(parts, original):
                rows = torch.nonzero(active[group]).squeeze(1)  # a finished edit's prompts are not run again
                if not len(rows):
                    continue
                new, group, unedited = new[rows], group[rows], unedited[rows]
                log_probs = F.log_softmax(batch.moved(delta[group], rows).float(), -1)
                rewrite = new >= 0
                picked = log_probs[rewrite, new[rewrite]]
                nll = nll.index_add(0, group[rewrite], -picked / count[group[rewrite]])
                p_sum = p_sum.index_add(0, group[rewrite], picked.detach().exp() / count[group[rewrite]])
                if (~rewrite).any():
                    keep = ~rewrite
                    per_row = F.kl_div(log_probs[keep], unedited[keep], log_target=True, reduction="none").sum(-1)
                    n_keep = torch.bincount(group[keep], minlength=n_groups).clamp(min=1)
                    kl = kl.index_add(0, group[keep], per_row / n_keep[group[keep]])
            p_new = torch.where(active, p_sum, p_new)
            active &= p_sum <= target_probability
            if not active.any() or step == steps:
                break
            loss = (nll + kl_weight * kl + weight_decay * delta.pow(2).sum(-1))[active].sum()
            optimizer.zero_grad()
            loss.backward()
            before = delta.detach().clone()
            optimizer.step()
            taken += active
            with torch.no_grad():
                delta[~active] = before[~active]  # a finished edit stays put (Adam's momentum would move it)
                if max_norm is not None:
                    norm = delta.norm(dim=-1, keepdim=True)
                    delta.mul_(torch.where(norm > max_norm, max_norm / norm, torch.ones_like(norm)))
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
    if info is not None:
        info.update(steps=taken.tolist(), p_new=p_new.tolist())
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
