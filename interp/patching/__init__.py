"""Patching: activation patching, causal tracing and attribution patching, on any hooked model.

Example::

    from interp.patching import activation_patching, causal_trace, patching_frame

    effect = activation_patching(model, clean_tokens, corrupted_tokens, logit_diff, "resid_pre")
    df = patching_frame(effect, "resid_pre")      # one row per (layer, pos), as transformer_lens.patching
    trace = causal_trace(model, tokens, subject=(0, 2), answer=answer_id, noise_std=0.3)

One concept a module, each importing only those above it in this list:

- ``inputs``: what the family takes, checked (token pairs, layers, counts, metric values,
  subject spans), the hook names patching sweeps (from :mod:`interp.hook_names`, the one
  vocabulary) and :func:`run_metric`, the hooked forward a metric reads.
- ``resume``: the shortcuts that run only what a patch changes (resume at a block, finish the
  patched block by hand, later positions only with the receiver's keys and values, one
  staggered pass over the blocks, the last block for the last position alone).
- ``exactness``: whether each shortcut reproduces the model's own forward; the verdicts are
  kept per model in :data:`~interp.patching.exactness.CHECKS`.
- ``plan``: a sweep's :class:`~interp.patching.plan.Plan`, the shortcuts each patched layer takes.
- ``runner``: the one runner, row block ``s`` of a stacked receiver patched at site ``s``;
  activation patching's grouping of sites into forwards (:class:`~interp.patching.runner.Sweep`).
- ``activation``: :func:`activation_patching`, :func:`patch_sites`, :func:`patching_frame`.
- ``restoring`` and ``tracing``: causal tracing (ROME), its restored runs as the runner's row blocks.
- ``attribution``: :func:`attribution_patching`, one forward and one backward (no row blocks).

A model argument's path from :func:`activation_patching` to the forward pass, each module once:
``activation.py -> runner.py -> resume.py -> model`` for the patched forwards (``runner.py ->
model`` for a one-call resumed forward; ``runner.py -> inputs.py -> model`` from the tokens),
and ``activation.py -> runner.py -> plan.py -> exactness.py -> resume.py -> model`` for the checks
run the first time a model is swept. Causal tracing: ``tracing.py -> restoring.py -> runner.py ->
resume.py -> model``.
"""

from interp.patching.activation import DIRECTIONS, activation_patching, patch_sites, patching_frame
from interp.patching.attribution import attribution_patching
from interp.patching.exactness import reproduces
from interp.patching.inputs import (Metric, check_count, check_layers, check_metric_value, check_token_pair,
                                    hook_name, run_metric, whole_number)
from interp.patching.plan import receiver_activations
from interp.patching.tracing import (POSITION_GROUPS, answer_probability, average_indirect_effect, causal_trace,
                                     embedding_std, find_subject, position_group, trace_site_by_site, window_layers)

__all__ = [
    "DIRECTIONS", "Metric", "POSITION_GROUPS", "activation_patching", "answer_probability", "attribution_patching",
    "average_indirect_effect", "causal_trace", "check_count", "check_layers", "check_metric_value",
    "check_token_pair", "embedding_std", "find_subject", "hook_name", "patch_sites", "patching_frame",
    "position_group", "receiver_activations", "reproduces", "run_metric", "trace_site_by_site", "whole_number",
    "window_layers",
]
