import pytest
import torch

from interp.hooks import cached_run
from models.transformer import Transformer, TransformerConfig
from tests.interp._bridges import clean_and_corrupted, tiny_bridge

NAMES = ["blocks.0.hook_resid_pre", "blocks.1.attn.hook_z", "blocks.1.attn.hook_pattern", "blocks.0.mlp.hook_post"]


def ours():
    return Transformer(TransformerConfig(d_model=32, n_layers=2, n_heads=4, d_mlp=64, d_vocab=50, n_ctx=16,
                                         seed=0)).eval()


def hooks_attached(model) -> int:
    return sum(len(point.fwd_hooks) + len(point._forward_hooks) for point in model.hook_dict.values())


@pytest.mark.parametrize("make", [ours, tiny_bridge], ids=["ours", "bridge"])
def test_cached_run_equals_run_with_cache_and_leaves_no_hook(make):
    model = make()
    tokens, _ = clean_and_corrupted()
    expected_out, expected = model.run_with_cache(tokens, names_filter=lambda name: name in NAMES)
    out, cache = cached_run(model, tokens, NAMES)
    assert torch.equal(out, expected_out)
    assert sorted(cache) == sorted(NAMES)
    for name in NAMES:
        assert torch.equal(cache[name], expected[name]), f"{name} differs from run_with_cache"
    assert hooks_attached(model) == 0


def test_cached_run_removes_its_hooks_after_an_error_and_keeps_the_users_own():
    model = ours()
    tokens, _ = clean_and_corrupted()
    seen = []
    model.add_hook("blocks.0.hook_resid_pre", lambda act, hook: seen.append(1), is_permanent=True)
    with pytest.raises(ValueError, match="n_ctx"):
        cached_run(model, torch.zeros(1, 40, dtype=torch.long), NAMES)  # longer than n_ctx
    assert hooks_attached(model) == 2  # the user's permanent hook: TransformerLens's handle and torch's
    cached_run(model, tokens, NAMES)
    assert seen == [1], "the user's hook still fires, once"
    model.reset_hooks(including_permanent=True)


def test_an_unknown_name_gets_the_models_own_error():
    with pytest.raises(ValueError, match="closest valid names"):
        cached_run(ours(), clean_and_corrupted()[0], ["blocks.0.hook_resid_pree"])
