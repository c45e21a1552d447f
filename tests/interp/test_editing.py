import pytest
import torch

from interp.editing import (edit_hooks, edited, key_covariance, mlp_keys, rome_update, subject_key,
                            target_value, target_values)
from interp.rome_values import ResumedBatch
from models.transformer import Transformer, TransformerConfig
from tests.interp._bridges import tiny_bridge


def tiny_transformer():
    cfg = TransformerConfig(d_model=16, n_layers=2, n_heads=2, d_mlp=32, d_vocab=20, n_ctx=8, act_fn="relu",
                            seed=0, init_range=0.3)
    return Transformer(cfg).eval()


def test_rome_update_solves_the_constrained_least_squares_problem():
    g = torch.Generator().manual_seed(0)
    d_mlp, d_model = 6, 4
    K = torch.randn(50, d_mlp, generator=g, dtype=torch.float64)
    C = K.T @ K / 50
    W, b = torch.randn(d_mlp, d_model, generator=g, dtype=torch.float64), torch.randn(d_model, dtype=torch.float64)
    k, v = torch.randn(d_mlp, generator=g, dtype=torch.float64), torch.randn(d_model, generator=g, dtype=torch.float64)
    delta = rome_update(W, b, C, k, v)
    assert torch.allclose(k @ (W + delta) + b, v), "the edited memory must map k* to v*"
    assert torch.linalg.matrix_rank(delta) == 1
    # reference: for each output column, min delta^T C delta s.t. k . delta = r, via its KKT system
    r = v - (k @ W + b)
    kkt = torch.zeros(d_mlp + 1, d_mlp + 1, dtype=torch.float64)
    kkt[:d_mlp, :d_mlp], kkt[:d_mlp, -1], kkt[-1, :d_mlp] = 2 * C, k, k
    for j in range(d_model):
        rhs = torch.zeros(d_mlp + 1, dtype=torch.float64)
        rhs[-1] = r[j]
        assert torch.allclose(delta[:, j], torch.linalg.solve(kkt, rhs)[:d_mlp])
    with pytest.raises(ValueError, match="same layer"):
        rome_update(W, b, C[:3, :3], k, v)


def test_edit_restores_weights_even_after_an_error_and_hooks_equal_the_weight_edit():
    model = tiny_transformer()
    tokens = torch.tensor([[1, 5, 7, 3, 9]])
    before = model(tokens)
    delta = torch.randn(32, 16, generator=torch.Generator().manual_seed(1)) * 0.1
    with edited(model, 1, delta):
        by_weight = model(tokens)
    by_hooks = model.run_with_hooks(tokens, fwd_hooks=edit_hooks(1, delta))
    assert torch.allclose(by_weight, by_hooks, atol=1e-5) and not torch.allclose(by_weight, before)
    with pytest.raises(RuntimeError):
        with edited(model, 1, delta):
            raise RuntimeError("boom")
    assert torch.equal(model(tokens), before), "weights not restored"


@pytest.mark.parametrize("which", ["ours", "bridge"])
def test_full_rome_edit_makes_the_new_answer_win_for_that_subject(which):
    model = tiny_transformer() if which == "ours" else tiny_bridge()
    vocab = model.cfg.d_vocab
    g = torch.Generator().manual_seed(0)
    corpus = torch.randint(3, vocab, (40, 6), generator=g)
    layer = 0
    C = key_covariance(model, corpus, layer)
    # one subject ("7 8") in one context (a random model's keys vary a lot between contexts,
    # so only k* itself is guaranteed to map to v*); the answer is the next token, read at
    # the subject's last position, which a random model's attention cannot hide
    prompts = torch.tensor([[1, 7, 8]])
    subject_last, answer_pos = torch.tensor([2]), torch.tensor([2])
    before = model(prompts)[0, answer_pos].argmax(-1)
    new = int((before[0] + 1) % vocab)
    k = subject_key(model, prompts, subject_last, layer)
    v = target_value(model, prompts, subject_last, answer_pos, new, layer, steps=200, lr=0.2)
    W_out, b_out = model.W_out[layer].detach(), model.blocks[layer].mlp.b_out
    delta = rome_update(W_out, None if b_out is None else b_out.detach(), C, k, v)
    with edited(model, layer, delta):
        after = model(prompts)[0, answer_pos].argmax(-1)
        others = model(corpus)[:, -1].argmax(-1)
    assert after.item() == new, "the edit should make the new answer win"
    unchanged = (others == model(corpus)[:, -1].argmax(-1)).float().mean()
    assert unchanged >= 0.8, f"only {unchanged:.0%} of unrelated predictions survived the edit"


def test_keep_prompts_without_their_key_positions_are_refused():
    model = tiny_transformer()
    prompts = torch.tensor([[1, 7, 8]])
    with pytest.raises(ValueError, match="keep_key_pos"):
        target_value(model, prompts, torch.tensor([2]), torch.tensor([2]), 3, 0, keep_tokens=prompts)


def test_key_covariance_in_batches_with_a_mask_is_the_plain_second_moment():
    model = tiny_transformer()
    tokens = torch.randint(0, 20, (7, 6), generator=torch.Generator().manual_seed(2))
    mask = torch.ones_like(tokens, dtype=torch.bool)
    mask[:, 0] = False
    _, cache = model.run_with_cache(tokens)
    keys = cache["blocks.1.mlp.hook_post"][mask].double()
    expected = keys.T @ keys / len(keys)
    C = key_covariance(model, tokens, 1, mask=mask, ridge=0.0, batch_size=3)
    assert torch.allclose(C, expected, atol=1e-10), "batched, masked sums must equal the second moment of all keys"


def test_mlp_keys_stop_the_forward_at_their_layer():
    model = tiny_transformer()
    later = []
    model.blocks[1].hook_resid_pre.add_hook(lambda act, hook: later.append(1))
    keys = mlp_keys(model, torch.tensor([[1, 5, 7]]), 0)
    model.reset_hooks()
    assert keys.shape == (1, 3, 32) and not later, "nothing after layer 0's MLP keys should run"
    with pytest.raises(KeyError):
        mlp_keys(model, torch.tensor([[1, 5, 7]]), 5)  # no such block: the hook name is refused


def test_the_resumed_forward_moves_the_logits_as_the_full_forward_does():
    model = tiny_transformer()
    tokens = torch.tensor([[1, 5, 7, 3, 9], [2, 4, 6, 8, 3]])
    key_pos, answer_pos = torch.tensor([2, 3]), torch.tensor([4, 4])
    batch = ResumedBatch(model, tokens, key_pos, 1, None, answer_pos)
    assert batch.resid is not None and batch.offset == 2, "our Transformer takes start_at_layer and prefix_kv"
    delta = torch.randn(2, 16, generator=torch.Generator().manual_seed(3))

    def add(act, hook):
        act = act.clone()
        act[torch.arange(2), key_pos] += delta
        return act

    full = model.run_with_hooks(tokens, fwd_hooks=[("blocks.1.hook_mlp_out", add)])[torch.arange(2), answer_pos]
    assert torch.allclose(batch.moved(delta), full, atol=1e-5)


def test_values_of_several_edits_in_one_batch_equal_one_call_each():
    model = tiny_transformer()
    tokens = torch.tensor([[1, 7, 8, 3], [2, 7, 8, 3], [4, 9, 5, 6], [1, 9, 5, 2]])
    key_pos, answer_pos = torch.tensor([2, 2, 2, 2]), torch.tensor([3, 3, 3, 3])
    settings = dict(steps=15, lr=0.2, target_probability=0.999)
    together = target_values(model, tokens, key_pos, answer_pos, torch.tensor([5, 5, 11, -1]),
                             torch.tensor([0, 0, 1, 1]), 0, **settings)
    first = target_value(model, tokens[:2], key_pos[:2], answer_pos[:2], 5, 0, **settings)
    second = target_value(model, tokens[2:3], key_pos[2:3], answer_pos[2:3], 11, 0, keep_tokens=tokens[3:],
                          keep_key_pos=key_pos[3:], keep_answer_pos=answer_pos[3:], **settings)
    assert torch.allclose(together, torch.stack([first, second]), atol=1e-5), \
        "edits share a batch but not their deltas, losses or Adam state"
    with pytest.raises(ValueError, match="no rewriting prompt"):
        target_values(model, tokens, key_pos, answer_pos, torch.tensor([5, 5, -1, -1]), torch.tensor([0, 0, 1, 1]), 0)


def test_clamp_keeps_the_value_near_the_current_output_and_info_reports_the_steps():
    model = tiny_transformer()
    prompts, pos = torch.tensor([[1, 7, 8]]), torch.tensor([2])
    current = model.run_with_cache(prompts)[1]["blocks.0.hook_mlp_out"][0, 2]
    info = {}
    v = target_value(model, prompts, pos, pos, 4, 0, steps=30, lr=1.0, weight_decay=0.0, clamp_norm_factor=0.5,
                     target_probability=1.0, info=info)
    assert (v - current).norm() <= 0.5 * current.norm() + 1e-5
    assert info["steps"] == 30 and 0.0 <= info["p_new"] <= 1.0
