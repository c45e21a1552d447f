import pytest
import torch

from interp.editing import edit_hooks, edited, key_covariance, rome_update, subject_key, target_value
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
