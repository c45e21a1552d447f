import pytest
import torch

from models.transformer import Transformer, UnknownHookError
from tests.models.transformer.conftest import small_config

FULL_KEYS = ["hook_embed", "hook_pos_embed"] + [
    f"blocks.{L}.{name}"
    for L in range(2)
    for name in [
        "hook_resid_pre", "ln1.hook_scale", "ln1.hook_normalized",
        "attn.hook_q", "attn.hook_k", "attn.hook_v", "attn.hook_attn_scores", "attn.hook_pattern", "attn.hook_z",
        "hook_attn_out", "hook_resid_mid", "ln2.hook_scale", "ln2.hook_normalized",
        "mlp.hook_pre", "mlp.hook_post", "hook_mlp_out", "hook_resid_post",
    ]
] + ["ln_final.hook_scale", "ln_final.hook_normalized"]

ATTN_ONLY_KEYS = ["hook_embed", "hook_pos_embed"] + [
    f"blocks.{L}.{name}"
    for L in range(2)
    for name in [
        "hook_resid_pre", "ln1.hook_scale", "ln1.hook_normalized",
        "attn.hook_q", "attn.hook_k", "attn.hook_v", "attn.hook_attn_scores", "attn.hook_pattern", "attn.hook_z",
        "hook_attn_out", "hook_resid_post",
    ]
] + ["ln_final.hook_scale", "ln_final.hook_normalized"]


@pytest.mark.parametrize("cfg, expected", [(small_config(), FULL_KEYS), (small_config(d_mlp=None), ATTN_ONLY_KEYS)],
                         ids=["full", "attn-only"])
def test_cache_keys_are_frozen(cfg, expected, tokens):
    _, cache = Transformer(cfg).run_with_cache(tokens)
    assert list(cache.keys()) == expected, "hook names or firing order changed: instruments rely on them"


def test_parameter_names_and_shapes(model):
    shapes = {name: tuple(p.shape) for name, p in model.named_parameters()}
    assert shapes["embed.W_E"] == (23, 16) and shapes["pos_embed.W_pos"] == (12, 16)
    assert shapes["blocks.0.attn.W_Q"] == (2, 16, 8) and shapes["blocks.0.attn.W_O"] == (2, 8, 16)
    assert shapes["blocks.0.attn.b_Q"] == (2, 8) and shapes["blocks.0.attn.b_O"] == (16,)
    assert shapes["blocks.1.mlp.W_in"] == (16, 32) and shapes["blocks.1.mlp.W_out"] == (32, 16)
    assert shapes["blocks.1.ln2.w"] == (16,) and shapes["ln_final.b"] == (16,)
    assert shapes["unembed.W_U"] == (16, 23) and shapes["unembed.b_U"] == (23,)
    assert model.W_Q.shape == (2, 2, 16, 8), "stacked W_Q should be [n_layers n_heads d_model d_head]"


def test_cache_shapes(model, tokens):
    _, cache = model.run_with_cache(tokens)
    assert cache["blocks.0.attn.hook_q"].shape == (3, 10, 2, 8)
    assert cache["blocks.0.attn.hook_pattern"].shape == (3, 2, 10, 10)
    assert cache["blocks.0.ln1.hook_scale"].shape == (3, 10, 1)
    assert cache["blocks.0.mlp.hook_post"].shape == (3, 10, 32)
    pattern = cache["blocks.1.attn.hook_pattern"]
    torch.testing.assert_close(pattern.sum(-1), torch.ones(3, 2, 10))
    assert torch.all(pattern.triu(diagonal=1) == 0), "attention must be causal"


def test_identity_hook_leaves_logits_unchanged(model, tokens):
    clean = model(tokens)
    hooked = model.run_with_hooks(tokens, fwd_hooks=[(lambda name: True, lambda x, hook: x)])
    torch.testing.assert_close(hooked, clean, rtol=0, atol=0)


def test_pattern_hook_edits_output(model, tokens):
    def uniform(pattern, hook):
        causal = torch.ones_like(pattern).tril()
        return causal / causal.sum(-1, keepdim=True)

    clean = model(tokens)
    edited = model.run_with_hooks(tokens, fwd_hooks=[("blocks.0.attn.hook_pattern", uniform)])
    assert not torch.allclose(edited, clean), "editing hook_pattern should change the logits"


def test_causality(model, tokens):
    changed = tokens.clone()
    changed[:, -1] = (changed[:, -1] + 1) % 23
    torch.testing.assert_close(model(changed)[:, :-1], model(tokens)[:, :-1])


def test_stop_at_layer_returns_resid_pre(model, tokens):
    _, cache = model.run_with_cache(tokens)
    torch.testing.assert_close(model(tokens, stop_at_layer=1), cache["blocks.1.hook_resid_pre"])


@pytest.mark.parametrize("layer", [0, 1])
def test_start_at_layer_resumes_from_resid_pre(model, tokens, layer):
    logits, cache = model.run_with_cache(tokens)
    resumed, resumed_cache = model.run_with_cache(cache[f"blocks.{layer}.hook_resid_pre"], start_at_layer=layer)
    torch.testing.assert_close(resumed, logits)
    assert "hook_embed" not in resumed_cache and f"blocks.{layer}.hook_resid_pre" in resumed_cache
    assert all(f"blocks.{earlier}." not in name for earlier in range(layer) for name in resumed_cache.keys())
    torch.testing.assert_close(model(model(tokens, stop_at_layer=1), start_at_layer=1, stop_at_layer=2),
                               cache["blocks.1.hook_resid_post"])


def test_start_at_layer_rejects_tokens_and_loss(model, tokens):
    with pytest.raises(ValueError, match="residual stream"):
        model(tokens, start_at_layer=1)
    with pytest.raises(ValueError, match="loss"):
        model(model(tokens, stop_at_layer=1), start_at_layer=1, return_type="loss")


@pytest.mark.parametrize("layer", [0, 1])
@pytest.mark.parametrize("n_prefix", [1, 4, 9])
def test_prefix_kv_runs_the_later_positions_only(model, tokens, layer, n_prefix):
    # a KV cache: the earlier positions' keys and values stand in for their residual stream
    logits, cache = model.run_with_cache(tokens)
    prefix = [(cache[f"blocks.{i}.attn.hook_k"][:, :n_prefix], cache[f"blocks.{i}.attn.hook_v"][:, :n_prefix])
              for i in range(layer, model.cfg.n_layers)]
    later = model(cache[f"blocks.{layer}.hook_resid_pre"][:, n_prefix:], start_at_layer=layer, prefix_kv=prefix)
    torch.testing.assert_close(later, logits[:, n_prefix:])
    with pytest.raises(ValueError, match="one \\(k, v\\) per block"):
        model(cache[f"blocks.{layer}.hook_resid_pre"][:, n_prefix:], start_at_layer=layer, prefix_kv=prefix[:-1])


def test_loss_is_next_token_cross_entropy(model, tokens):
    logits, loss = model(tokens, return_type="both")
    expected = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, 23), tokens[:, 1:].reshape(-1))
    torch.testing.assert_close(loss, expected)
    per_token = model(tokens, return_type="loss", loss_per_token=True)
    assert per_token.shape == (3, 9)
    torch.testing.assert_close(per_token.mean(), expected)
    assert model(tokens, return_type=None) is None


def test_loss_has_gradients(model, tokens):
    model(tokens, return_type="loss").backward()
    assert all(p.grad is not None for p in model.parameters()), "every parameter should get a gradient"


def test_seed_makes_init_reproducible():
    a, b, c = Transformer(small_config()), Transformer(small_config()), Transformer(small_config(seed=1))
    assert torch.equal(a.W_E, b.W_E) and not torch.equal(a.W_E, c.W_E)


def test_storage_layout_never_changes_the_weights_a_seed_draws():
    """GatedMLP stores its weights transposed; each weight is still N(0, init_range) drawn row-major in
    parameter order, as a plain generator gives them (the reference below), so a seed means one model."""
    cfg = small_config(normalization="RMS", positional_embedding="rotary", gated_mlp=True, act_fn="silu")
    model = Transformer(cfg)
    assert not model.blocks[0].mlp.W_in.is_contiguous(), "the test needs a transposed parameter"
    generator = torch.Generator().manual_seed(cfg.seed)
    for name, param in model.named_parameters():
        if name.rsplit(".", 1)[-1].lstrip("_").startswith("W_"):
            expected = torch.empty(param.shape).normal_(0.0, cfg.init_range, generator=generator)
            assert torch.equal(param, expected), name


def test_tied_embeddings_share_weights(tokens):
    model = Transformer(small_config(tied_embeddings=True))
    assert "unembed.W_U" not in dict(model.named_parameters())
    assert torch.equal(model.W_U, model.W_E.T)
    torch.testing.assert_close(model(tokens), model.ln_final(model(tokens, stop_at_layer=2)) @ model.W_E.T)


@pytest.mark.parametrize("use_bias, tied", [(True, False), (False, True)])
def test_large_vocabulary_unembeds_in_blocks_with_the_same_logits(use_bias, tied):
    from models.transformer import unembed

    d_vocab = 2 * unembed.VOCAB_CHUNK + 37  # a ragged last block
    cfg = small_config(d_vocab=d_vocab, use_bias=use_bias, tied_embeddings=tied, n_ctx=70)
    model = Transformer(cfg)
    if use_bias:
        torch.nn.init.normal_(model.unembed.b_U)
    tokens = torch.randint(0, d_vocab, (2, 40), generator=torch.Generator().manual_seed(0))
    assert tokens.numel() >= unembed.CHUNKED_MIN_ROWS
    normalized = model.ln_final(model(tokens, stop_at_layer=2))
    expected = normalized @ model.W_U + (model.unembed.b_U if use_bias else 0)
    with torch.no_grad():  # the blocked path
        blocked = model(tokens)
        assert torch.equal(unembed.chunked_logits(normalized.reshape(80, -1), model.W_U, model.unembed.b_U),
                           blocked.reshape(80, -1))
    torch.testing.assert_close(blocked, expected, rtol=0, atol=1e-5)
    logits = model(tokens)  # with gradients: the one product, and gradients flow
    torch.testing.assert_close(logits, expected, rtol=0, atol=1e-5)
    logits.sum().backward()
    assert model.W_E.grad is not None


@pytest.mark.parametrize("bad, message", [
    (torch.full((1, 4), 23), "d_vocab"),
    (torch.full((1, 4), -1), "d_vocab"),
    (torch.zeros(1, 13, dtype=torch.long), "n_ctx"),
    (torch.zeros(1, 4), "integer"),
])
def test_bad_tokens_raise(model, bad, message):
    with pytest.raises(ValueError, match=message):
        model(bad)


@pytest.mark.parametrize("overrides, message", [
    (dict(d_model=-4), "d_model"),
    (dict(n_layers=0), "n_layers"),
    (dict(d_mlp=-1), "d_mlp"),
    (dict(act_fn="swish"), "act_fn"),
    (dict(normalization="BN"), "normalization"),
        (dict(positional_embedding="alibi"), "positional_embedding"),
        (dict(n_key_value_heads=3), "n_key_value_heads"),
        (dict(positional_embedding="rotary", rotary_dim=3), "rotary_dim"),
        (dict(rotary_dim=8), "rotary_dim"),
        (dict(d_mlp=None, gated_mlp=True), "gated_mlp"),
    (dict(d_model=10, n_heads=3), "d_head"),
    (dict(d_head=0), "d_head"),
])
def test_bad_config_raises(overrides, message):
    with pytest.raises(ValueError, match=message):
        small_config(**overrides)


def test_config_is_frozen():
    with pytest.raises(Exception):
        small_config().d_model = 3


def test_unknown_hook_names_suggest_close_ones(model, tokens):
    for call in (
        lambda: model.run_with_hooks(tokens, fwd_hooks=[("blocks.0.hook_resid_pr", lambda x, hook: x)]),
        lambda: model.run_with_cache(tokens, names_filter=["blocks.0.attn.hook_patern"]),
        lambda: model.run_with_cache(tokens, names_filter="blocks.0.attn.hook_patern"),
        lambda: model.hooks(fwd_hooks=[("blocks.1.mlp.hook_postt", lambda x, hook: x)]).__enter__(),
        lambda: model.add_hook("hook_embd", lambda x, hook: x),
    ):
        with pytest.raises(UnknownHookError, match="closest valid names: \\['blocks|closest valid names: \\['hook_embed"):
            call()
    assert not model.list_hooks(), "a rejected hook list must not leave hooks behind"


def test_hooks_removed_after_error(model, tokens):
    def explode(x, hook):
        raise RuntimeError("boom")

    hooks = [("blocks.0.hook_resid_pre", lambda x, hook: x), ("blocks.1.attn.hook_pattern", explode)]
    with pytest.raises(RuntimeError, match="boom"):
        model.run_with_hooks(tokens, fwd_hooks=hooks)
    assert not model.list_hooks(), "run_with_hooks left hooks attached after a hook raised"
    with pytest.raises(RuntimeError, match="boom"):
        with model.hooks(fwd_hooks=hooks):
            model(tokens)
    assert not model.list_hooks(), "hooks() left hooks attached after a hook raised"
    with pytest.raises(UnknownHookError):
        model.run_with_hooks(tokens, fwd_hooks=[hooks[0], ("no_such_hook", explode)])
    assert not model.list_hooks(), "hooks added before an unknown name must be removed"
    assert all(not hp._forward_hooks for hp in model.hook_dict.values()), "torch-level hooks remain"
