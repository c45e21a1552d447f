"""ROME's ``v*``: the MLP output at the subject that makes a new object likely (Meng et al. 2022, eq. 4).

Example::

    from interp.rome_values import target_value, target_values

    v = target_value(model, prompts, subject_last, answer_last, new_id, layer=1)      # one edit
    vs = target_values(model, tokens, key_pos, answer_pos, new_ids, group, layer=1)  # many edits, one batch

Split from :mod:`interp.editing` (which re-exports both): the gradient descent on one vector per edit,
each step resumed at the edited block where that reproduces the full forward (checked per batch).
"""

from typing import Any, Optional

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor

from interp.hook_names import act_name
from interp.patching.exactness import accepts_prefix_kv, accepts_start_at_layer, reproduces



class ResumedBatch:
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
        self.out = act_name("mlp_out", layer)
        n_layers = model.cfg.n_layers
        first = int(self.key_pos.min())
        resumable = accepts_start_at_layer(model) and (first == 0 or accepts_prefix_kv(model))
        names = {self.out}
        if resumable:
            names |= {act_name("resid_pre", layer)} | {act_name(kv, b) for b in range(layer, n_layers)
                                                           for kv in "kv"}
        with torch.no_grad():
            logits, cache = model.run_with_cache(tokens, names_filter=lambda n: n in names, **self.kwargs)
        self.logits = logits[self.rows, self.answer_pos]  # [batch d_vocab], unedited
        self.mlp_out = cache[self.out][self.rows, self.key_pos]  # [batch d_model]
        self.offset, self.resid, self.prefix = 0, None, None
        if resumable and bool((self.answer_pos >= first).all()):
            self.offset, self.resid = first, cache[act_name("resid_pre", layer)][:, first:]
            if first:
                self.prefix = [tuple(cache[act_name(kv, b)][:, :first] for kv in "kv")
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
    parts = [(ResumedBatch(model, tokens, key_pos, layer, attention_mask, answer_pos),
              torch.full((tokens.shape[0],), int(new_answer)), torch.zeros(tokens.shape[0], dtype=torch.long))]
    if keep_tokens is not None:
        n_keep = keep_tokens.shape[0]
        parts.append((ResumedBatch(model, keep_tokens, keep_key_pos, layer, keep_attention_mask, keep_answer_pos),
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
    part = (ResumedBatch(model, tokens, key_pos, layer, attention_mask, answer_pos), new_answer, group)
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
