"""The fast patching engine on the Llama family (rotary positions, grouped-query heads, gated MLP, RMSNorm).

References: ``transformer_lens.patching`` (one forward per site, from the tokens) on
TransformerLens's bridge over the Hugging Face Llama with the same weights, and the
definition written out (one forward per site). Every shortcut of ``interp.patching.resume`` is
required to *engage* on our Llama, not just to fall back safely.
"""

import pytest
import torch
import transformer_lens.patching as tlp

from interp.patching import (activation_patching, attribution_patching, exactness, hook_name, receiver_activations,
                             resume, runner)
from tests.interp._bridges import clean_and_corrupted
from tests.interp._llama import GROUPINGS, llama_bridge, tiny_llama

TL_SWEEPS = {
    "resid_pre": tlp.get_act_patch_resid_pre,
    "attn_out": tlp.get_act_patch_attn_out,
    "mlp_out": tlp.get_act_patch_mlp_out,
    "z": tlp.get_act_patch_attn_head_out_by_pos,
}


def logit_diff(logits):
    return logits[:, -1, 3].mean() - logits[:, -1, 5].mean()


@pytest.mark.parametrize("grouping", list(GROUPINGS))
@pytest.mark.parametrize("activation", list(TL_SWEEPS))
def test_every_sweep_equals_transformer_lens_on_the_hugging_face_llama_bridge(activation, grouping):
    model = tiny_llama(GROUPINGS[grouping], seed=1)
    clean, corrupted = clean_and_corrupted(changed=(1, 3))
    bridge = llama_bridge(model)
    _, clean_cache = bridge.run_with_cache(clean)
    expected = TL_SWEEPS[activation](bridge, corrupted, clean_cache, logit_diff)
    embeddings = []
    handle = model.embed.register_forward_hook(lambda module, args, out: embeddings.append(out.shape[0]))
    try:
        ours = activation_patching(model, clean, corrupted, logit_diff, activation, max_rows=7)
    finally:
        handle.remove()
    assert ours.shape == expected.shape == ((3, 6, 4) if activation == "z" else (3, 6))
    assert (expected - expected[0, 0]).abs().max() > 1e-2, "the corruption should matter at some site"
    assert (ours - expected).abs().max() <= 1e-5, "ours on our Llama disagrees with TransformerLens on HF's Llama"
    assert embeddings == [2 * clean.shape[0]], "patched forwards should resume from the cached residual stream"
    checked = exactness.CHECKS[model]
    assert checked and all(checked.values()), f"a shortcut fell back on our Llama: {checked}"


@pytest.mark.parametrize("grouping", list(GROUPINGS))
def test_every_shortcut_check_passes_on_a_llama(grouping):
    """Each shortcut's own check, run directly on a fresh model: all hold, so none falls back."""
    model = tiny_llama(GROUPINGS[grouping], seed=2)
    _, tokens = clean_and_corrupted(n_pos=7)
    n_layers = model.cfg.n_layers
    layers = list(range(n_layers))
    with torch.no_grad():
        full = model(tokens)
    acts = {key: value for activation in ("z", "mlp_out")
            for key, value in receiver_activations(model, tokens, activation, layers).items()}
    resid = {layer: acts[("resid_pre", layer)] for layer in layers}
    resid[n_layers] = acts[("resid_post", n_layers - 1)]
    assert exactness.resumes_exactly(model, tokens, resid, layers + [n_layers], full)
    for block in layers:
        assert exactness.prefix_exactly(model, block, resid[block], acts, full), f"prefix_kv at block {block}"
        assert exactness.chains_exactly(model, block, resid[block], acts, full), f"block-by-block pass from {block}"
    assert exactness.trims_exactly(model, acts, full), "last block on the last position alone"
    for activation in ("z", "mlp_out"):
        for layer in layers:
            assert exactness.finishes_exactly(model, activation, layer, acts), f"block {layer} after {activation}"


def test_the_checks_can_fail_a_block_kv_that_ignores_grouping_is_refused(monkeypatch):
    """trims_exactly compares with the real forward: keys and values expanded per query head do not pass."""
    model = tiny_llama(2, seed=3)
    _, tokens = clean_and_corrupted()
    acts = receiver_activations(model, tokens, "resid_pre", [0, 1, 2])
    with torch.no_grad():
        full = model(tokens)

    def per_query_head(model, layer, resid):  # the old block_kv: W_K / W_V expanded per query head
        attn, x = model.blocks[layer].attn, model.blocks[layer].ln1(resid)
        return (torch.einsum("bpd,hde->bphe", x, attn.W_K), torch.einsum("bpd,hde->bphe", x, attn.W_V))

    monkeypatch.setattr(resume, "block_kv", per_query_head)
    assert not exactness.trims_exactly(model, acts, full)


def test_a_model_whose_blocks_alone_are_off_runs_no_staggered_pass_and_still_equals_transformer_lens(monkeypatch):
    """The block-by-block check can fail: blocks run alone 0.1% off send every site to one-call forwards."""
    from models.transformer import Transformer

    class SkewsBlocksAlone(Transformer):  # right from the tokens and to the end; off when told to stop early
        def forward(self, input, return_type="logits", loss_per_token=False, stop_at_layer=None,
                    start_at_layer=None, prefix_kv=None, attention_mask=None):
            out = super().forward(input, return_type, loss_per_token, stop_at_layer, start_at_layer, prefix_kv,
                                  attention_mask)
            return out * 1.001 if start_at_layer is not None and stop_at_layer is not None else out

    reference = tiny_llama(2, seed=9)
    model = SkewsBlocksAlone(reference.cfg).eval()
    model.load_state_dict(reference.state_dict())
    clean, corrupted = clean_and_corrupted(changed=(1, 3))
    passes = []
    monkeypatch.setattr(runner, "staggered_forward", lambda *args: passes.append(1))
    _, clean_cache = model.run_with_cache(clean)
    for activation in ("resid_pre", "mlp_out"):
        ours = activation_patching(model, clean, corrupted, logit_diff, activation)
        expected = TL_SWEEPS[activation](model, corrupted, clean_cache, logit_diff)
        assert (ours - expected).abs().max() <= 1e-5, activation
    checked = exactness.CHECKS[model]
    assert not any(checked.get(("chain", block)) for block in range(3)), "blocks alone are off: no chain"
    assert not passes, "no staggered pass without the block-by-block check"
    assert all(checked[("start", layer)] for layer in range(3)), "one-call forwards from each layer instead"


@pytest.mark.parametrize("grouping", list(GROUPINGS))
def test_block_kv_equals_the_keys_and_values_the_llama_caches(grouping):
    model = tiny_llama(GROUPINGS[grouping], seed=4)
    _, tokens = clean_and_corrupted()
    _, cache = model.run_with_cache(tokens)
    with torch.no_grad():
        k, v = resume.block_kv(model, 1, cache["blocks.1.hook_resid_pre"])
    assert k.shape == cache["blocks.1.attn.hook_k"].shape == (3, 6, model.cfg.n_kv_heads, 8)
    assert torch.allclose(k, cache["blocks.1.attn.hook_k"], atol=1e-6), "keys before rotation, one per kv head"
    assert torch.allclose(v, cache["blocks.1.attn.hook_v"], atol=1e-6)


@pytest.mark.parametrize("activation", list(TL_SWEEPS))
def test_ours_on_the_llama_bridge_equals_transformer_lens_on_it(activation):
    """The engine on TransformerLens's Llama bridge (its own shortcut checks decide what it may skip)."""
    bridge = llama_bridge(tiny_llama(2, seed=5))
    clean, corrupted = clean_and_corrupted(changed=(2,))
    _, clean_cache = bridge.run_with_cache(clean)
    expected = TL_SWEEPS[activation](bridge, corrupted, clean_cache, logit_diff)
    ours = activation_patching(bridge, clean, corrupted, logit_diff, activation)
    assert (ours - expected).abs().max() <= 1e-5


def test_noising_and_an_every_position_metric_on_a_llama_equal_transformer_lens():
    """Noising swaps the roles; a metric reading every position keeps the last block whole."""
    model = tiny_llama(2, seed=6)
    clean, corrupted = clean_and_corrupted(changed=(2, 4))
    every_position = lambda logits: logits[..., 3].mean() - logits[:, 1:, 5].mean()  # noqa: E731
    _, corrupted_cache = model.run_with_cache(corrupted)
    for activation in ("resid_pre", "z"):
        expected = TL_SWEEPS[activation](model, clean, corrupted_cache, every_position)
        ours = activation_patching(model, clean, corrupted, every_position, activation, direction="noise")
        assert (ours - expected).abs().max() <= 1e-5, activation


def test_attribution_patching_on_a_grouped_llama_is_the_derivative_of_patching():
    model = tiny_llama(2, seed=7, dtype=torch.float64)
    clean, corrupted = clean_and_corrupted()
    eps = 1e-5
    for activation, site in (("mlp_out", (1, 2)), ("resid_pre", (2, 4)), ("z", (1, 3, 2))):
        estimate = attribution_patching(model, clean, corrupted, logit_diff, activation)
        assert estimate.shape == ((3, 6, 4) if activation == "z" else (3, 6))
        name = hook_name(activation, site[0])
        _, clean_cache = model.run_with_cache(clean)
        _, corrupted_cache = model.run_with_cache(corrupted)
        index = (slice(None), *site[1:])
        delta = clean_cache[name][index] - corrupted_cache[name][index]

        def nudged(sign):
            def hook(act, hook):
                act = act.clone()
                act[index] += sign * eps * delta
                return act

            return logit_diff(model.run_with_hooks(corrupted, fwd_hooks=[(name, hook)])).item()

        finite_difference = (nudged(1) - nudged(-1)) / (2 * eps)
        assert estimate[site].item() == pytest.approx(finite_difference, rel=1e-4, abs=1e-7), activation


@pytest.mark.slow
@pytest.mark.parametrize("activation, layers", [("resid_pre", [0, 1, 15, 29]), ("attn_out", [0, 15, 29]),
                                                ("mlp_out", [0, 15, 29]), ("z", [0, 29])])
def test_on_smollm2_every_sweep_equals_transformer_lens_on_its_bridge(smollm2_and_its_bridge, activation, layers):
    import pandas as pd

    model, bridge = smollm2_and_its_bridge
    clean = model.to_tokens("The capital of France is the city of")
    corrupted = model.to_tokens("The capital of Italy is the city of")
    paris, rome = model.to_single_token(" Paris"), model.to_single_token(" Rome")

    def metric(logits):
        return (logits[:, -1, paris] - logits[:, -1, rome]).mean()

    ours = activation_patching(model, clean, corrupted, metric, activation, layers=layers)
    # TransformerLens's sweep on the same sites only (one forward each; all 30 layers would take minutes)
    axes = {"layer": layers, "pos": range(clean.shape[1])}
    if activation == "z":
        axes["head"] = range(model.cfg.n_heads)
    index = pd.MultiIndex.from_product(list(axes.values()), names=list(axes)).to_frame(index=False)
    _, clean_cache = bridge.run_with_cache(clean)
    with torch.no_grad():
        theirs = TL_SWEEPS[activation](bridge, corrupted, clean_cache, metric, index_axis_names=None, index_df=index)
    assert (theirs - theirs[0]).abs().max() > 0.1, "France -> Italy should move the Paris-Rome logit difference"
    assert (ours.flatten() - theirs).abs().max() <= 1e-4, "ours on our SmolLM2 vs TransformerLens on HF's"
    checked = exactness.CHECKS[model]
    assert all(checked.values()), f"a shortcut fell back on SmolLM2: {[k for k, v in checked.items() if not v]}"
