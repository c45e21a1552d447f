import pytest
import torch

from interp.neurons import (
    ablation_hooks, and_gate_score, mlp_activations, neuron_frame, neuron_logit_attribution, top_activating,
)
from models.transformer import Transformer, TransformerConfig
from tests.interp._bridges import tiny_bridge


def tiny_transformer(normalization="LN"):
    cfg = TransformerConfig(d_model=16, n_layers=2, n_heads=2, d_mlp=32, d_vocab=20, n_ctx=8, act_fn="relu",
                            normalization=normalization, seed=0, init_range=0.3)
    return Transformer(cfg).eval()


def test_activations_at_given_positions_match_the_cache():
    model = tiny_bridge()
    tokens = torch.randint(0, 50, (3, 5), generator=torch.Generator().manual_seed(0))
    positions = torch.tensor([4, 0, 2])
    acts = mlp_activations(model, tokens, positions)
    _, cache = model.run_with_cache(tokens)
    assert acts.shape == (3, 2, 64)
    for b, p in enumerate(positions.tolist()):
        assert torch.equal(acts[b, 1], cache["blocks.1.mlp.hook_post"][b, p])
    with pytest.raises(ValueError, match="one index per row"):
        mlp_activations(model, tokens, torch.tensor([0, 1]))


def test_and_gate_score_known_answers():
    # neuron 0: AND gate; 1: reads the first name only; 2: reads the last name only; 3: always on
    both = torch.tensor([[5.0, 3.0, 3.0, 2.0]])
    first_only = torch.tensor([[0.0, 3.0, 0.0, 2.0]])
    last_only = torch.tensor([[0.5, 0.0, 3.0, 2.0]])
    assert and_gate_score(both, first_only, last_only).tolist() == [[4.5, 0.0, 0.0, 0.0]]
    with pytest.raises(ValueError, match="shapes differ"):
        and_gate_score(both, first_only[:, :2], last_only)


def test_logit_attribution_is_the_logit_change_per_unit_of_activation_without_layernorm():
    model = tiny_transformer(normalization=None)
    tokens = torch.tensor([[1, 5, 7, 3]])
    layer, neuron = 1, 6  # the last layer: its MLP output reaches the logits directly

    def bump(act, hook):
        act = act.clone()
        act[:, -1, neuron] += 1.0
        return act

    base = model(tokens)[0, -1]
    bumped = model.run_with_hooks(tokens, fwd_hooks=[("blocks.1.mlp.hook_post", bump)])[0, -1]
    dla = neuron_logit_attribution(model, layer, [neuron], list(range(20)))
    assert torch.allclose(dla[0], bumped - base, atol=1e-5)


def test_logit_attribution_with_layernorm_ignores_the_mean_direction():
    model = tiny_transformer()
    dla = neuron_logit_attribution(model, 0, [0, 3], [2, 9])
    direction = model.W_out[0][[0, 3]]
    expected = (direction - direction.mean(-1, keepdim=True)) @ model.W_U[:, [2, 9]]
    assert torch.allclose(dla, expected)
    assert dla.shape == (2, 2)


def test_zero_ablation_of_every_neuron_leaves_only_the_bias_and_respects_positions():
    model = tiny_transformer()
    tokens = torch.tensor([[1, 5, 7, 3], [2, 2, 4, 6]])
    everything = ablation_hooks({0: range(32)})
    _, cache = model.run_with_cache(tokens)
    with model.hooks(fwd_hooks=everything):
        _, ablated = model.run_with_cache(tokens)
    assert torch.allclose(ablated["blocks.0.hook_mlp_out"], model.blocks[0].mlp.b_out.expand(2, 4, 16))
    at = ablation_hooks({1: [3, 4]}, replacement={1: torch.full((32,), 7.0)}, positions=torch.tensor([2, 0]))
    with model.hooks(fwd_hooks=at):
        _, partial = model.run_with_cache(tokens)
    post, original = partial["blocks.1.mlp.hook_post"], cache["blocks.1.mlp.hook_post"]
    assert post[0, 2, 3] == 7.0 and post[1, 0, 4] == 7.0
    changed = (post != original).nonzero()[:, :2].unique(dim=0).tolist()
    assert all(tuple(rc) in {(0, 2), (1, 0)} for rc in changed), f"ablated elsewhere: {changed}"


def test_top_activating_and_frame():
    acts = torch.tensor([[0.0, 1.0], [3.0, 0.5], [2.0, 4.0]])
    top = top_activating(acts, ["a", "b", "c"], neurons=[0, 1], k=2)
    assert top[top.neuron == 0]["input"].tolist() == ["b", "c"]
    assert top[top.neuron == 1]["input"].tolist() == ["c", "a"]
    frame = neuron_frame(torch.zeros(2, 3, 4))
    assert len(frame) == 24 and list(frame.columns) == ["fact", "layer", "neuron", "and_score"]
