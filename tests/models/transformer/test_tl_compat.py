"""TransformerLens's analyses on our Transformer: its ActivationCache, its patching sweeps, its logit lens and DLA.

Each is checked against the computation written out on our own modules (``ln_final``,
``W_O``, ``W_U``, the cached hooks), and where TransformerLens has a peer (its bridge in
compatibility mode, whose LayerNorm weights are folded into ``W_U``), against that too.
"""

import pytest
import torch
import transformer_lens.patching as tlp
from transformer_lens import ActivationCache
from transformer_lens.tools.analysis import direct_logit_attribution, logit_lens

from interp.patching import activation_patching
from models.transformer import Transformer, TransformerConfig
from tests.interp._llama import llama_bridge, tiny_llama

FAMILIES = ("gpt2", "llama")
ANSWER, WRONG = 3, 5


def tiny_gpt2(seed=0) -> Transformer:
    """A 3-layer GPT-2-style model with every weight random (LayerNorm gains and biases too), eval mode."""
    model = Transformer(TransformerConfig(d_model=32, n_layers=3, n_heads=4, d_mlp=64, d_vocab=50, n_ctx=16,
                                          seed=seed))
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            gain = name.endswith(".w")
            p.copy_(torch.randn(p.shape, generator=generator) * (0.1 if p.ndim == 1 else 0.2) + (1.0 if gain else 0.0))
    return model.eval()


def tiny(family: str) -> Transformer:
    return tiny_gpt2(seed=1) if family == "gpt2" else tiny_llama(2, seed=1)


def tokens(batch=2, n_pos=6, seed=0):
    return torch.randint(0, 50, (batch, n_pos), generator=torch.Generator().manual_seed(seed))


def close(actual, expected, what, atol=1e-5):
    assert actual.shape == expected.shape, f"{what}: shape {tuple(actual.shape)} vs {tuple(expected.shape)}"
    worst = (actual - expected).abs().max().item()
    assert worst <= atol, f"{what}: differs by {worst:.2e}"


@pytest.mark.parametrize("family", FAMILIES)
def test_run_with_cache_gives_an_activation_cache_that_still_reads_like_a_dict(family):
    model = tiny(family)
    logits, cache = model.run_with_cache(tokens())
    plain_logits, plain = model.run_with_cache(tokens(), return_cache_object=False)
    assert isinstance(cache, ActivationCache) and cache.model is model and type(plain) is dict
    assert torch.equal(logits, plain_logits)
    assert list(cache.keys()) == list(plain) and len(cache) == len(plain), "same hooks, same firing order"
    assert all(torch.equal(cache[name], value) for name, value in plain.items())
    assert dict(cache.items()).keys() == plain.keys() and "blocks.1.attn.hook_z" in cache
    assert cache["resid_pre", 1] is cache["blocks.1.hook_resid_pre"] and cache["z", -1] is cache["blocks.2.attn.hook_z"]
    _, few = model.run_with_cache(tokens(), names_filter=["blocks.0.hook_mlp_out"])
    assert list(few.keys()) == ["blocks.0.hook_mlp_out"]
    _, single = model.run_with_cache(tokens(batch=1), remove_batch_dim=True)
    assert not single.has_batch_dim and single["blocks.0.hook_resid_pre"].shape == (6, 32)
    assert model.cfg.normalization_type == model.cfg.normalization and \
        model.cfg.positional_embedding_type == model.cfg.positional_embedding


@pytest.mark.parametrize("family", FAMILIES)
def test_accumulated_resid_through_the_final_norm_is_ln_final_of_each_stream(family):
    model = tiny(family)
    logits, cache = model.run_with_cache(tokens())
    stack, labels = cache.accumulated_resid(apply_ln=True, incl_mid=True, return_labels=True)
    n = model.cfg.n_layers
    streams = [cache[f"blocks.{L}.hook_resid_{k}"] for L in range(n) for k in ("pre", "mid")]
    streams.append(cache[f"blocks.{n - 1}.hook_resid_post"])
    assert labels == [f"{L}_{k}" for L in range(n) for k in ("pre", "mid")] + ["final_post"]
    with torch.no_grad():
        close(stack, torch.stack([model.ln_final(s) for s in streams]), "accumulated_resid(apply_ln=True)")
        close(model.unembed(stack[-1]), logits, "the last entry, unembedded, is the model's logits")


@pytest.mark.parametrize("family", FAMILIES)
def test_decomposition_sums_to_the_stream_and_apply_ln_to_stack_to_the_normalised_stream(family):
    model = tiny(family)
    _, cache = model.run_with_cache(tokens())
    n = model.cfg.n_layers
    for layer in range(n):
        for mlp_input, stream, norm in ((False, "resid_pre", "ln1"), (True, "resid_mid", "ln2")):
            parts = cache.decompose_resid(layer=layer, mlp_input=mlp_input)
            close(parts.sum(0), cache[f"blocks.{layer}.hook_{stream}"], f"decompose_resid({layer}, {mlp_input})")
            scaled = cache.apply_ln_to_stack(parts, layer=layer, mlp_input=mlp_input)
            # the cached scale (and centring, for LayerNorm) of the block's norm: the parts sum to its input
            # before the gain
            close(scaled.sum(0), cache[f"blocks.{layer}.{norm}.hook_normalized"], f"apply_ln_to_stack {norm}")
    parts, labels = cache.decompose_resid(return_labels=True)
    assert labels[0] == "embed" and (labels[1] == "pos_embed") == (family == "gpt2")
    close(parts.sum(0), cache[f"blocks.{n - 1}.hook_resid_post"], "decompose_resid()")
    close(cache.apply_ln_to_stack(parts).sum(0), cache["ln_final.hook_normalized"], "apply_ln_to_stack final")


@pytest.mark.parametrize("family", FAMILIES)
def test_stack_head_results_are_each_query_heads_share_of_attn_out(family):
    model = tiny(family)
    _, cache = model.run_with_cache(tokens())
    n, n_heads = model.cfg.n_layers, model.cfg.n_heads
    heads, labels = cache.stack_head_results(return_labels=True, incl_remainder=True)
    assert labels == [f"L{L}H{h}" for L in range(n) for h in range(n_heads)] + ["remainder"]
    close(heads.sum(0), cache[f"blocks.{n - 1}.hook_resid_post"], "heads plus remainder")
    for layer in range(n):
        attn = model.blocks[layer].attn
        z = cache[f"blocks.{layer}.attn.hook_z"]
        mine = torch.einsum("bphd,hdm->hbpm", z, attn.W_O.detach())
        close(heads[layer * n_heads:(layer + 1) * n_heads], mine, f"layer {layer} head results")
        b_O = 0 if attn.b_O is None else attn.b_O.detach()
        close(mine.sum(0) + b_O, cache[f"blocks.{layer}.hook_attn_out"], f"layer {layer} heads sum to attn_out")


@pytest.mark.parametrize("family", FAMILIES)
def test_logit_attrs_of_a_decomposition_sum_to_the_logit_difference(family):
    model = tiny(family)
    logits, cache = model.run_with_cache(tokens())
    parts = cache.decompose_resid(pos_slice=-1)  # [component batch d_model]
    attrs = cache.logit_attrs(parts, tokens=ANSWER, incorrect_tokens=WRONG, pos_slice=-1)
    W_U, ln = model.W_U.detach(), model.ln_final
    direction = ln.w.detach() * (W_U[:, ANSWER] - W_U[:, WRONG])  # ln_final's gain folded in, as TL's fold_ln
    centred = parts - parts.mean(-1, keepdim=True) if family == "gpt2" else parts
    close(attrs, centred / cache["ln_final.hook_scale"][:, -1] @ direction, "each component's attribution")
    # what no component produces: the unembedding bias and (LayerNorm) the final norm's bias, read by W_U
    constant = model.b_U[ANSWER] - model.b_U[WRONG]
    if family == "gpt2":
        constant = constant + ln.b @ (W_U[:, ANSWER] - W_U[:, WRONG])
    close(attrs.sum(0), (logits[:, -1, ANSWER] - logits[:, -1, WRONG] - constant).detach(), "attributions' sum")


@pytest.mark.parametrize("family", FAMILIES)
def test_transformer_lens_logit_lens_reads_each_stream_through_ln_final_and_w_u(family):
    model = tiny(family)
    x = tokens()
    logits, cache = model.run_with_cache(x)
    result = logit_lens(model, x, targets=[ANSWER, WRONG])
    n = model.cfg.n_layers
    streams = [cache[f"blocks.{L}.hook_resid_pre"] for L in range(n)] + [cache[f"blocks.{n - 1}.hook_resid_post"]]
    with torch.no_grad():
        mine = torch.stack([model.unembed(model.ln_final(s[:, -1:]))[:, 0, [ANSWER, WRONG]] for s in streams])
    assert result.labels == [f"{L}_pre" for L in range(n)] + ["final_post"]
    close(result.values, mine, "logit lens")
    close(result.values[-1], logits[:, -1, [ANSWER, WRONG]].detach(), "final entry = the model's logits")
    ranks = (torch.stack([model.unembed(model.ln_final(s[:, -1])) for s in streams]) > mine[..., :1]).sum(-1)
    assert torch.equal(result.rank_trajectory(ANSWER), ranks.detach())


@pytest.mark.parametrize("family", FAMILIES)
def test_transformer_lens_dla_equals_its_own_on_the_folded_bridge_of_the_same_weights(family):
    from models.transformer.convert import to_bridge

    model = tiny(family)
    bridge = to_bridge(model) if family == "gpt2" else llama_bridge(model)
    bridge.eval().enable_compatibility_mode()  # LayerNorm folded into W_U, as DLA on a bridge requires
    x = tokens()
    answer, wrong = torch.tensor([ANSWER, ANSWER]), torch.tensor([WRONG, WRONG])
    # per head only without biases: TL's weight processing moves b_V (and folded ln1.b) into b_O
    units = ("component", "layer") if family == "gpt2" else ("component", "layer", "head")
    for unit in units:
        ours = direct_logit_attribution(model, x, answer_tokens=answer, incorrect_tokens=wrong, unit=unit)
        theirs = direct_logit_attribution(bridge, x, answer_tokens=answer, incorrect_tokens=wrong, unit=unit)
        assert ours.labels == theirs.labels
        close(ours.attribution.detach(), theirs.attribution.detach(), f"DLA by {unit}", atol=1e-4)
    heads = direct_logit_attribution(model, x, answer_tokens=answer, incorrect_tokens=wrong, unit="head")
    _, cache = model.run_with_cache(x)
    whole = cache.logit_attrs(cache.decompose_resid(pos_slice=-1), ANSWER, WRONG, pos_slice=-1).sum(0)
    close(heads.attribution.sum(0).detach(), whole.detach(), "heads plus remainder: the whole attribution")


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("sweep, activation", [
    (tlp.get_act_patch_resid_pre, "resid_pre"), (tlp.get_act_patch_attn_out, "attn_out"),
    (tlp.get_act_patch_mlp_out, "mlp_out"), (tlp.get_act_patch_attn_head_out_by_pos, "z"),
])
def test_transformer_lens_patching_runs_on_our_transformer_and_equals_ours(family, sweep, activation):
    model = tiny(family)
    clean, corrupted = tokens(seed=1), tokens(seed=1).clone()
    corrupted[:, 2] = (corrupted[:, 2] + 7) % 50

    def logit_diff(logits):
        return (logits[:, -1, ANSWER] - logits[:, -1, WRONG]).mean()

    _, clean_cache = model.run_with_cache(clean)
    theirs = sweep(model, corrupted, clean_cache, logit_diff)
    assert (theirs - theirs[0, 0]).abs().max() > 1e-2, "the corruption should matter at some site"
    close(activation_patching(model, clean, corrupted, logit_diff, activation), theirs, f"{activation} sweep")
