"""How a patching sweep's forwards run: the shortcuts each patched layer may take, decided once per sweep.

Example::

    from interp.patching.plan import plan_forwards

    plan = plan_forwards(model, corrupted_tokens, "mlp_out", layers=[0, 1, 2])
    plan.how                    # {0: "finish", 1: "finish", 2: "finish"}: blocks finished by hand
    plan.chain                  # {1: True, 2: True, 3: True}: start blocks a staggered pass may use

The plan is the sweep's: it holds the receiver's cached activations and output and what has
been established about the start blocks it uses. Whether a shortcut holds at all is the
model's, kept in :data:`interp.patching.exactness.CHECKS`; the plan asks those checks.
"""

from dataclasses import dataclass, field
from typing import Any, Literal, Optional

import torch
from jaxtyping import Int
from torch import Tensor

from interp.hooks import cached_run
from interp.patching.exactness import (accepts_prefix_kv, accepts_start_at_layer, chains_exactly, finishes_exactly,
                                       prefix_exactly, resumes_exactly, trims_exactly)
from interp.patching.inputs import hook_name
from interp.patching.resume import POST_ATTENTION, receiver_names

# "finish": block L finished by hand, the forward starts at L + 1; "start": it starts at block L;
# None: it runs from the tokens with a writing hook
How = Optional[Literal["finish", "start"]]


@dataclass
class Plan:
    """Per patched layer, how its forwards run; per start block, which forms were checked to hold.

    ``chain[block]``: the block-by-block pass from ``block`` holds (``chains_exactly``), so rows
    starting there may share a staggered pass; False where only a one-call forward was checked.
    ``start[block]`` / ``prefix[block]``: a one-call forward from ``block`` holds on every position
    (``resumes_exactly``) / on the later positions given the earlier ones' keys and values
    (``prefix_exactly``); filled in when a forward first needs them (:meth:`one_call`).
    """

    how: dict[int, How]
    acts: dict[tuple[str, int], Tensor] = field(default_factory=dict)  # the receiver's, (activation, layer)
    out: Optional[Tensor] = None  # the receiver's own output
    chain: dict[int, bool] = field(default_factory=dict)
    start: dict[int, bool] = field(default_factory=dict)
    prefix: dict[int, bool] = field(default_factory=dict)
    last_only: bool = False  # the metric reads the last position only and the last block may run it alone

    def start_block(self, layer: int) -> int:
        """The block a forward patched at ``layer`` starts from: the next one when that block is finished by hand."""
        return layer + 1 if self.how[layer] == "finish" else layer

    def direct(self, activation: str, layer: int) -> bool:
        """Whether the patched value goes straight into the residual stream a resumed forward starts from."""
        return self.how[layer] == "finish" or (self.how[layer] == "start" and activation == "resid_pre")

    def by_position(self, layer: int) -> bool:
        """Whether forwards patched at ``layer`` may run the later positions only."""
        block = self.start_block(layer)
        return self.prefix.get(block, False) or self.chain.get(block, False)

    def stream(self, layer: int) -> Tensor:
        """The receiver's residual stream a forward patched at ``layer`` starts from."""
        return self.acts[("resid_post", layer)] if self.how[layer] == "finish" else self.acts[("resid_pre", layer)]

    def one_call(self, model: Any, receiver: Tensor, layer: int, first: int) -> tuple[How, int]:
        """``(how, first)`` for a forward patched at ``layer`` run as one call from its start block.

        The plan's, except where its checks covered the block-by-block pass only (a block that
        passed ``chains_exactly``): the one-call forms are then checked the first time a forward
        needs them, and one that does not hold runs every position instead of the later ones
        (``prefix_exactly``), or from the tokens (``resumes_exactly``).
        """
        how = self.how[layer]
        if how is None:
            return None, 0
        block, resid = self.start_block(layer), self.stream(layer)
        if first and block not in self.prefix:
            self.prefix[block] = prefix_exactly(model, block, resid, self.acts, self.out)
        if first and not self.prefix[block]:
            first = 0
        if not first and block not in self.start:
            self.start[block] = resumes_exactly(model, receiver, {block: resid}, [block], self.out)
        return (how if first or self.start[block] else None), first


def can_resume(model: Any, output_hook: Optional[str], forward_kwargs: dict) -> bool:
    """Whether any shortcut may apply: the metric reads the output, no forward arguments, ``start_at_layer`` taken."""
    return output_hook is None and not forward_kwargs and accepts_start_at_layer(model)


def receiver_activations(model: Any, tokens: Int[Tensor, "batch pos"], activation: str,
                         layers: list[int]) -> dict[tuple[str, int], Tensor]:
    """The receiver activations the shortcuts read, keyed ``(activation, layer)``."""
    names = receiver_names(activation, layers, model.cfg.n_layers, accepts_prefix_kv(model))
    names.update({hook_name(activation, layer): (activation, layer) for layer in layers})
    with torch.no_grad():
        _, cache = cached_run(model, tokens, list(names))
    return {key: cache[name] for name, key in names.items()}


def plan_forwards(model: Any, receiver: Int[Tensor, "batch pos"], activation: str, layers: list[int], *,
                  output_hook: Optional[str] = None, forward_kwargs: Optional[dict] = None,
                  receiver_acts: Optional[dict] = None, receiver_out: Optional[Tensor] = None,
                  last_only: bool = False) -> Plan:
    """Per layer: ``"finish"`` (resume after the block), ``"start"`` (resume at it) or None (from tokens).

    A start block that passes ``chains_exactly`` (checked block by block, each block once for all
    starts) needs nothing more for the staggered passes; the one-call shortcuts
    (``resumes_exactly``, ``prefix_exactly``: a run from the block to the end, for each start) are
    then checked only where a forward uses them (:meth:`Plan.one_call`). On SmolLM2 that took a
    one-pair sweep's first call from 10 s to 1.2 s (0.9 s later calls; one thread).
    ``receiver_acts`` / ``receiver_out``: the receiver's activations and output when the caller has them.
    """
    if not can_resume(model, output_hook, forward_kwargs or {}):
        return Plan(how={layer: None for layer in layers})
    if receiver_acts is None:
        receiver_acts = receiver_activations(model, receiver, activation, layers)
    if receiver_out is None:
        with torch.no_grad():
            receiver_out = model(receiver)
    plan = Plan(how={}, acts=receiver_acts, out=receiver_out)
    with_prefix = accepts_prefix_kv(model) and all(("k", layer) in receiver_acts for layer in layers)
    for layer in layers:
        finish = activation in POST_ATTENTION and finishes_exactly(model, activation, layer, receiver_acts)
        plan.how[layer] = None
        options = [("finish", layer + 1, receiver_acts.get(("resid_post", layer)))] if finish else []
        for kind, block, resid in options + [("start", layer, receiver_acts[("resid_pre", layer)])]:
            if with_prefix and chains_exactly(model, block, resid, receiver_acts, receiver_out):
                plan.chain[block] = True
            elif resumes_exactly(model, receiver, {block: resid}, [block], receiver_out):
                plan.chain[block], plan.start[block] = False, True
                if with_prefix:
                    plan.prefix[block] = prefix_exactly(model, block, resid, receiver_acts, receiver_out)
            else:
                continue
            plan.how[layer] = kind
            break
    plan.last_only = last_only and with_prefix and trims_exactly(model, receiver_acts, receiver_out)
    return plan
