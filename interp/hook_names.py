"""The hook names the instruments read and write, in one place: TransformerLens's own vocabulary.

    >>> act_name("resid_pre", 3)
    'blocks.3.hook_resid_pre'
    >>> act_name("post", 1)                  # the MLP neurons' activations
    'blocks.1.mlp.hook_post'
    >>> act_name("pattern", 0)
    'blocks.0.attn.hook_pattern'
    >>> trace_name("mlp", 2)                 # what causal tracing restores for a kind
    'blocks.2.hook_mlp_out'

Names come from ``transformer_lens.utilities.get_act_name``, so they are the ones our models and
TransformerLens's bridge both carry. ``PATCHABLE`` lists the activations activation patching sweeps;
``TRACE_KINDS`` maps ROME's three kinds of state to the activation each restores.
"""

from typing import Optional

from transformer_lens.utilities import get_act_name

PATCHABLE = ("resid_pre", "resid_mid", "resid_post", "attn_out", "mlp_out", "z")
TRACE_KINDS = {"resid": "resid_post", "mlp": "mlp_out", "attn": "attn_out"}  # ROME: hidden state, MLP, attention


def act_name(activation: str, layer: Optional[int] = None) -> str:
    """The full hook name of ``activation`` (``"resid_pre"``, ``"post"``, ``"pattern"``, ``"k"``, ...) at ``layer``."""
    return get_act_name(activation, layer)


def trace_name(kind: str, layer: int) -> str:
    """The hook causal tracing restores for ``kind`` (one of ``TRACE_KINDS``) at ``layer``."""
    return act_name(TRACE_KINDS[kind], layer)
