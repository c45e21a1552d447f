import pytest
import torch
import transformer_lens.patching as tlp

from interp.patching import activation_patching, attribution_patching, hook_name, patch_sites, patching_frame
from tests.interp._bridges import clean_and_corrupted, tiny_bridge

TL_SWEEPS = {
    "resid_pre": tlp.get_act_patch_resid_pre,
    "attn_out": tlp.get_act_patch_attn_out,
    "mlp_out": tlp.get_act_patch_mlp_out,
    "z": tlp.get_act_patch_attn_head_out_by_pos,
}


def logit_diff(logits):
    return logits[:, -1, 3].mean() - logits[:, -1, 5].mean()


@pytest.mark.parametrize("activation", list(TL_SWEEPS))
@pytest.mark.parametrize("max_rows", [7, 1024])  # 7 rows: uneven chunks of 2 sites with batch 3
def test_denoising_equals_transformer_lens(activation, max_rows):
    model = tiny_bridge()
    clean, corrupted = clean_and_corrupted()
    _, clean_cache = model.run_with_cache(clean)
    expected = TL_SWEEPS[activation](model, corrupted, clean_cache, logit_diff)
    ours = activation_patching(model, clean, corrupted, logit_diff, activation, max_rows=max_rows)
    assert ours.shape == expected.shape
    assert (ours - expected).abs().max() <= 1e-5, "batched sweep disagrees with TransformerLens's one-site-per-forward"


def test_noising_equals_transformer_lens_with_roles_swapped():
    model = tiny_bridge()
    clean, corrupted = clean_and_corrupted(changed=(2, 4))
    _, corrupted_cache = model.run_with_cache(corrupted)
    expected = tlp.get_act_patch_mlp_out(model, clean, corrupted_cache, logit_diff)
    ours = activation_patching(model, clean, corrupted, logit_diff, "mlp_out", direction="noise")
    assert (ours - expected).abs().max() <= 1e-5


def test_positions_where_tokens_agree_change_nothing_and_restoring_the_difference_recovers_clean():
    model = tiny_bridge()
    clean, corrupted = clean_and_corrupted(changed=(2,))
    clean_metric, corrupted_metric = logit_diff(model(clean)).item(), logit_diff(model(corrupted)).item()
    assert abs(clean_metric - corrupted_metric) > 1e-3, "test needs a corruption that changes the metric"
    effect = activation_patching(model, clean, corrupted, logit_diff, "resid_pre")
    # before the corrupted position (causal model) every layer's residual agrees
    assert torch.allclose(effect[:, :2], torch.full_like(effect[:, :2], corrupted_metric), atol=1e-6)
    # layer 0: only the changed token differs; everywhere else the patch is a no-op
    assert torch.allclose(effect[0, 3:], torch.full_like(effect[0, 3:], corrupted_metric), atol=1e-6)
    # the changed token's embedding is all that differs: restoring it restores the clean run exactly
    assert effect[0, 2].item() == pytest.approx(clean_metric, abs=1e-6)


def test_restoring_every_head_and_position_at_once_recovers_clean_metric():
    model = tiny_bridge()
    clean, corrupted = clean_and_corrupted(changed=(1, 3))
    _, cache = model.run_with_cache(clean)
    last = model.cfg.n_layers - 1
    full = model.run_with_hooks(corrupted, fwd_hooks=[(hook_name("resid_post", last),
                                                       lambda act, hook: cache[hook_name("resid_post", last)])])
    assert logit_diff(full).item() == pytest.approx(logit_diff(model(clean)).item(), abs=1e-6)
    sites = torch.tensor([[last, p, 0] for p in range(clean.shape[1])])
    one_by_one = patch_sites(model, corrupted, {last: cache[hook_name("resid_post", last)]}, sites, logit_diff,
                             "resid_post")
    # only the last position feeds the metric, so restoring it alone restores the clean value
    assert one_by_one[-1].item() == pytest.approx(logit_diff(model(clean)).item(), abs=1e-5)


def test_per_example_metric_keeps_the_batch_and_averages_to_the_scalar_sweep():
    model = tiny_bridge()
    clean, corrupted = clean_and_corrupted()
    per = activation_patching(model, clean, corrupted, lambda lg: lg[:, -1, 3] - lg[:, -1, 5], "attn_out",
                              per_example=True)
    assert per.shape == (2, 6, 3)
    scalar = activation_patching(model, clean, corrupted, logit_diff, "attn_out")
    assert torch.allclose(per.mean(-1), scalar, atol=1e-6)
    frame = patching_frame(per, "attn_out")
    assert list(frame.columns) == ["layer", "pos", "example", "metric", "activation"] and len(frame) == 36


def test_attribution_patching_is_the_derivative_of_patching_along_the_difference():
    model = tiny_bridge(dtype=torch.float64)
    clean, corrupted = clean_and_corrupted()
    estimate = attribution_patching(model, clean, corrupted, logit_diff, "mlp_out")
    _, clean_cache = model.run_with_cache(clean)
    _, corrupted_cache = model.run_with_cache(corrupted)
    eps = 1e-5
    for layer, pos in [(0, 1), (1, 1), (1, 5)]:
        name = hook_name("mlp_out", layer)
        delta = clean_cache[name][:, pos] - corrupted_cache[name][:, pos]

        def nudged(sign):
            def hook(act, hook):
                act = act.clone()
                act[:, pos] += sign * eps * delta
                return act

            return logit_diff(model.run_with_hooks(corrupted, fwd_hooks=[(name, hook)])).item()

        finite_difference = (nudged(1) - nudged(-1)) / (2 * eps)
        assert estimate[layer, pos].item() == pytest.approx(finite_difference, rel=1e-4, abs=1e-7)
    heads = attribution_patching(model, clean, corrupted, logit_diff, "z")
    assert heads.shape == (2, 6, 4)
    assert all(not p.requires_grad or p.grad is None for p in model.parameters()), "left .grad behind"


def test_bad_inputs_say_what_is_wrong():
    model = tiny_bridge()
    clean, corrupted = clean_and_corrupted()
    with pytest.raises(ValueError, match="same number of tokens"):
        activation_patching(model, clean, corrupted[:, :-1], logit_diff)
    with pytest.raises(ValueError, match="must return a scalar"):
        activation_patching(model, clean, corrupted, lambda lg: lg[:, -1, 3])
    with pytest.raises(ValueError, match=r"\[batch\] tensor of length 3"):
        activation_patching(model, clean, corrupted, logit_diff, per_example=True)
    with pytest.raises(ValueError, match="unknown activation"):
        activation_patching(model, clean, corrupted, logit_diff, "resid_sideways")
    # no hook left attached after the error
    assert torch.equal(model(clean), model(clean)) and all(not hp._forward_hooks for hp in model.hook_dict.values())


def test_runs_on_minilm_wrapped_by_transformer_lens_with_a_hidden_state_metric():
    from models.pretrained import load_minilm

    model = load_minilm()
    ids = model.tokenizer(["the cat sat on the mat", "the dog sat on the mat"], return_tensors="pt")["input_ids"]
    clean, corrupted = ids[:1], ids[1:]
    changed = int((clean != corrupted).nonzero()[0, 1])
    last = f"blocks.{model.cfg.n_layers - 1}.hook_resid_post"
    _, cache = model.run_with_cache(clean, names_filter=lambda name: name == last)
    target = cache[last][0, 0]

    def cls_similarity(hidden):  # [batch pos d_model] -> scalar: how clean the [CLS] state looks
        return torch.cosine_similarity(hidden[:, 0], target[None], dim=-1).mean()

    effect = activation_patching(model, clean, corrupted, cls_similarity, "resid_pre", output_hook=last)
    assert effect.shape == (model.cfg.n_layers, clean.shape[1])
    assert effect[0, changed].item() == pytest.approx(1.0, abs=1e-5), "restoring the only changed embedding"
    corrupted_value = effect[0, 0].item()
    assert corrupted_value < 0.999, "corruption should change the [CLS] state"
    assert torch.allclose(effect[0, changed + 1:], torch.full_like(effect[0, changed + 1:], corrupted_value), atol=1e-5)
    # and the batched sweep equals TransformerLens's on this real model (metric on its logits)
    _, clean_cache = model.run_with_cache(clean)
    metric = lambda logits: logits[:, 0, 1000] - logits[:, 0, 2000]  # noqa: E731
    scalar = lambda logits: metric(logits).mean()  # noqa: E731
    expected = tlp.get_act_patch_attn_out(model, corrupted, clean_cache, scalar)
    assert (activation_patching(model, clean, corrupted, scalar, "attn_out") - expected).abs().max() <= 1e-4


@pytest.mark.parametrize("activation", list(TL_SWEEPS))
def test_resuming_at_the_patched_layer_equals_transformer_lens_on_our_transformer(activation):
    from models.transformer import Transformer, TransformerConfig
    from models.transformer.convert import to_bridge

    cfg = TransformerConfig(d_model=32, n_layers=3, n_heads=4, d_mlp=64, d_vocab=50, n_ctx=16, seed=0)
    model = Transformer(cfg).eval()
    clean, corrupted = clean_and_corrupted(changed=(1, 3))
    bridge = to_bridge(model).eval()
    _, clean_cache = bridge.run_with_cache(clean)
    expected = TL_SWEEPS[activation](bridge, corrupted, clean_cache, logit_diff)
    embeddings = []
    handle = model.embed.register_forward_hook(lambda module, args, out: embeddings.append(out.shape[0]))
    try:
        ours = activation_patching(model, clean, corrupted, logit_diff, activation, max_rows=7)
    finally:
        handle.remove()
    assert (ours - expected).abs().max() <= 1e-5
    assert embeddings == [2 * clean.shape[0]], "only the clean+corrupted cache run should embed tokens; patched " \
        "forwards start at their layer from the cached residual stream"


def test_a_forward_that_ignores_start_at_layer_falls_back_to_the_full_forward():
    model = tiny_bridge()
    clean, corrupted = clean_and_corrupted()

    class Ignores(torch.nn.Module):  # start_at_layer in the signature, but the tokens are rerun
        def __init__(self, inner):
            super().__init__()
            self.inner, self.cfg = inner, inner.cfg

        def forward(self, input, start_at_layer=None):
            return self.inner(clean if start_at_layer is not None else input)

        def run_with_hooks(self, input, start_at_layer=None, **kwargs):
            return self.inner.run_with_hooks(clean if start_at_layer is not None else input, **kwargs)

        def run_with_cache(self, input, **kwargs):
            return self.inner.run_with_cache(input, **kwargs)

    expected = activation_patching(model, clean, corrupted, logit_diff, "mlp_out")
    assert (activation_patching(Ignores(model), clean, corrupted, logit_diff, "mlp_out") - expected).abs().max() <= 1e-5


def naive_sweep(model, clean, corrupted, metric, activation):
    """One forward per site from the tokens, the definition of patching."""
    n_layers, n_pos = model.cfg.n_layers, clean.shape[1]
    _, cache = model.run_with_cache(clean)
    heads = range(model.cfg.n_heads) if activation == "z" else [None]
    out = torch.zeros(n_layers, n_pos, len(heads))
    for layer in range(n_layers):
        name = hook_name(activation, layer)
        for pos in range(n_pos):
            for h, head in enumerate(heads):
                def write(act, hook, pos=pos, head=head):
                    if head is None:
                        act[:, pos] = cache[name][:, pos]
                    else:
                        act[:, pos, head] = cache[name][:, pos, head]
                    return act
                out[layer, pos, h] = metric(model.run_with_hooks(corrupted, fwd_hooks=[(name, write)]))
    return out if activation == "z" else out[..., 0]


@pytest.mark.parametrize("attn_only", [False, True])
@pytest.mark.parametrize("activation", ["attn_out", "z", "resid_mid", "mlp_out", "resid_post"])
def test_finishing_the_patched_layer_by_hand_equals_patching_from_the_tokens(activation, attn_only):
    from interp.patching.exactness import CHECKS
    from models.transformer import Transformer, TransformerConfig

    if attn_only and activation in ("resid_mid", "mlp_out"):
        pytest.skip("an attention-only block has no resid_mid or mlp_out")
    cfg = TransformerConfig(d_model=32, n_layers=3, n_heads=4, d_mlp=None if attn_only else 64, d_vocab=50,
                            n_ctx=16, seed=1)
    model = Transformer(cfg).eval()
    clean, corrupted = clean_and_corrupted(changed=(1, 3))
    ours = activation_patching(model, clean, corrupted, logit_diff, activation, max_rows=7)
    assert (ours - naive_sweep(model, clean, corrupted, logit_diff, activation)).abs().max() <= 1e-5
    checked = CHECKS[model]
    assert all(checked[("finish", activation, layer)] for layer in range(cfg.n_layers)), \
        "our blocks should be finished by hand, not rerun"
    assert any(checked.get(("prefix", layer)) for layer in range(cfg.n_layers + 1)), \
        "our forward takes prefix_kv, so later-position-only forwards should be in use"


def test_position_chunks_trade_recomputed_positions_against_forwards():
    from interp.patching.resume import position_chunks

    # no per-forward cost: one group per distinct position, each starting there
    assert position_chunks([1, 1, 5, 5], batch=8, n_pos=7, max_rows=1024, overhead=0) == [[0, 1], [2, 3]]
    # a forward costs more than recomputing a few positions: one group
    assert position_chunks([1, 1, 5, 5], batch=8, n_pos=7, max_rows=1024, overhead=10_000) == [[0, 1, 2, 3]]
    # max_rows caps a group at 2 sites of batch 8
    assert all(len(g) <= 2 for g in position_chunks([0, 1, 2, 3, 4], batch=8, n_pos=7, max_rows=16))


@pytest.mark.parametrize("activation", ["resid_pre", "mlp_out", "z"])
def test_sites_of_several_layers_share_one_staggered_pass_and_still_equal_the_definition(activation, monkeypatch):
    from interp.patching import resume, runner
    from interp.patching.exactness import CHECKS
    from models.transformer import Transformer, TransformerConfig

    cfg = TransformerConfig(d_model=32, n_layers=3, n_heads=4, d_mlp=64, d_vocab=50, n_ctx=16, seed=2)
    model = Transformer(cfg).eval()
    clean, corrupted = clean_and_corrupted(changed=(1, 3))
    passes = []
    real = resume.staggered_forward
    monkeypatch.setattr(runner, "staggered_forward",
                        lambda model, entries, *args: passes.append([b for b, _ in entries]) or real(model, entries, *args))
    ours = activation_patching(model, clean, corrupted, logit_diff, activation)
    assert (ours - naive_sweep(model, clean, corrupted, logit_diff, activation)).abs().max() <= 1e-5
    assert passes and max(len(set(blocks)) for blocks in passes) > 1, "rows of several layers should join one pass"
    assert CHECKS[model][("chain", passes[0][0])]


def test_staggered_forward_equals_separate_resumed_forwards_and_wants_entries_in_block_order():
    from interp.patching import receiver_activations
    from interp.patching.resume import prefix_kv, staggered_forward
    from models.transformer import Transformer, TransformerConfig

    cfg = TransformerConfig(d_model=32, n_layers=3, n_heads=4, d_mlp=64, d_vocab=50, n_ctx=16, seed=3)
    model = Transformer(cfg).eval()
    _, tokens = clean_and_corrupted()
    acts = receiver_activations(model, tokens, "resid_pre", [0, 1, 2])
    batch, first = tokens.shape[0], 2
    noise = torch.Generator().manual_seed(0)
    entries = [(layer, acts[("resid_pre", layer)][:, first:] + torch.randn(batch, tokens.shape[1] - first, 32,
                                                                           generator=noise))
               for layer in (0, 1, 1, 2)]
    with torch.no_grad():
        together = staggered_forward(model, entries, acts, first, batch)
        apart = torch.cat([model(x, start_at_layer=layer, prefix_kv=prefix_kv(acts, layer, 3, first, 1))
                           for layer, x in entries])
    assert (together - apart).abs().max() <= 1e-5
    with pytest.raises(ValueError, match="order of block"):
        staggered_forward(model, entries[::-1], acts, first, batch)


def test_the_metric_probe_tells_a_last_position_metric_from_one_that_reads_more():
    from interp.patching.exactness import reads_last_position_only

    out = torch.randn(3, 5, 10, generator=torch.Generator().manual_seed(0))
    metrics = {
        "last position": (logit_diff, True),
        "first position": (lambda logits: logits[:, 0, 3].mean(), False),
        "every position": (lambda logits: logits[..., 3].mean(), False),
        "NaN-skipping mean": (lambda logits: logits[..., 3].nanmean(), False),  # the noise probe catches it
        "fails on a probe": (lambda logits: logits[:, -1, int(logits[0, 0, 0].isnan())], False),
    }
    for name, (metric, expected) in metrics.items():
        assert reads_last_position_only(metric, out, metric(out)) is expected, name


@pytest.mark.parametrize("activation", ["resid_pre", "attn_out", "z"])
def test_a_last_position_metric_trims_the_last_block_and_others_do_not_and_both_equal_the_definition(activation,
                                                                                                     monkeypatch):
    from interp.patching import resume
    from interp.patching.exactness import CHECKS
    from models.transformer import Transformer, TransformerConfig

    cfg = TransformerConfig(d_model=32, n_layers=3, n_heads=4, d_mlp=64, d_vocab=50, n_ctx=16, seed=4)
    model = Transformer(cfg).eval()
    clean, corrupted = clean_and_corrupted(changed=(1, 3))
    calls = []
    real = resume.last_position_through
    monkeypatch.setattr(resume, "last_position_through", lambda *args: calls.append(1) or real(*args))
    ours = activation_patching(model, clean, corrupted, logit_diff, activation)
    trimmed = len(calls)
    every_position = lambda logits: logits[..., 3].mean() - logits[:, 1:, 5].mean()  # noqa: E731
    full = activation_patching(model, clean, corrupted, every_position, activation)
    assert (ours - naive_sweep(model, clean, corrupted, logit_diff, activation)).abs().max() <= 1e-5
    assert (full - naive_sweep(model, clean, corrupted, every_position, activation)).abs().max() <= 1e-5
    assert trimmed > 1 and len(calls) == trimmed, "only the last-position metric may trim the last block"
    assert CHECKS[model]["trim"]


def test_block_kv_equals_the_keys_and_values_the_model_caches():
    from interp.patching.resume import block_kv
    from models.transformer import Transformer, TransformerConfig

    model = Transformer(TransformerConfig(d_model=32, n_layers=2, n_heads=4, d_mlp=64, d_vocab=50, n_ctx=16,
                                          seed=5)).eval()
    _, tokens = clean_and_corrupted()
    _, cache = model.run_with_cache(tokens)
    with torch.no_grad():
        k, v = block_kv(model, 1, cache["blocks.1.hook_resid_pre"])
    assert torch.allclose(k, cache["blocks.1.attn.hook_k"], atol=1e-6)
    assert torch.allclose(v, cache["blocks.1.attn.hook_v"], atol=1e-6)
