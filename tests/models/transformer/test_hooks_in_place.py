"""A hook may edit its activation in place: that never reaches the weights, on every family."""

import pytest
import torch

from models.transformer import Transformer
from tests.models.transformer.conftest import small_config

FAMILIES = {
    "gpt2": small_config(),
    "gpt2-tied-no-ln": small_config(tied_embeddings=True, normalization=None),
    "llama-grouped": small_config(normalization="RMS", positional_embedding="rotary", gated_mlp=True, act_fn="silu",
                                  use_bias=False, n_key_value_heads=1, tied_embeddings=True),
}


@pytest.mark.parametrize("grad", [False, True], ids=["no-grad", "grad"])
@pytest.mark.parametrize("family", list(FAMILIES))
def test_in_place_edits_in_any_hook_leave_the_weights_alone(family, grad):
    model = Transformer(FAMILIES[family])
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    tokens = torch.randint(0, model.cfg.d_vocab, (2, 6), generator=torch.Generator().manual_seed(0))

    def zero_in_place(x, hook):
        x[:] = 0  # returns None: the edited tensor flows on

    for name in model.hook_dict:
        with torch.set_grad_enabled(grad):
            model.run_with_hooks(tokens, fwd_hooks=[(name, zero_in_place)])
        changed = [key for key, p in model.named_parameters() if not torch.equal(p, before[key])]
        assert not changed, f"zeroing {name} in place changed the weights {changed}: the hook got a view of them"


def test_an_in_place_edit_does_change_the_output():
    """The edit is not lost either: zeroing the position embedding in place changes the logits."""
    model = Transformer(FAMILIES["gpt2"])
    tokens = torch.randint(0, model.cfg.d_vocab, (2, 6), generator=torch.Generator().manual_seed(0))

    def zero_in_place(x, hook):
        x[:] = 0

    edited = model.run_with_hooks(tokens, fwd_hooks=[("hook_pos_embed", zero_in_place)])
    assert not torch.allclose(edited, model(tokens))
