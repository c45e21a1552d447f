"""interp.activations against run_with_cache on the whole dataset; RAM and disk give the same arrays."""

import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import torch

from interp.activations import collect_activations
from models.mlp import Network
from models.transformer import Transformer, TransformerConfig

HOOKS = ["blocks.0.hook_resid_post", "blocks.1.hook_resid_post", "blocks.1.attn.hook_pattern"]


@pytest.fixture(scope="module")
def model():
    cfg = TransformerConfig(n_layers=2, d_model=16, n_ctx=12, d_head=4, n_heads=4, d_mlp=32, d_vocab=50, seed=0)
    return Transformer(cfg).eval()


@pytest.fixture(scope="module")
def tokens():
    return torch.randint(0, 50, (37, 12), generator=torch.Generator().manual_seed(0))


def test_matches_run_with_cache_on_the_whole_dataset(model, tokens):
    acts = collect_activations(model, tokens, HOOKS, batch_size=8)
    _, cache = model.run_with_cache(tokens)
    for name in HOOKS:
        np.testing.assert_allclose(acts[name], cache[name].numpy(), rtol=1e-5, atol=1e-6, err_msg=name)


def test_positions_pick_one_token_per_example(model, tokens):
    positions = torch.arange(len(tokens)) % 12
    acts = collect_activations(model, tokens, ["blocks.1.hook_resid_post"], batch_size=5, positions=positions)
    _, cache = model.run_with_cache(tokens)
    expected = cache["blocks.1.hook_resid_post"][torch.arange(len(tokens)), positions].numpy()
    np.testing.assert_allclose(acts["blocks.1.hook_resid_post"], expected, rtol=1e-5, atol=1e-6)


def test_budget_spills_to_disk_with_identical_arrays(model, tokens, tmp_path):
    in_ram = collect_activations(model, tokens, HOOKS, batch_size=4)
    total = sum(a.nbytes for a in in_ram.values())
    on_disk = collect_activations(model, tokens, HOOKS, batch_size=4, budget_bytes=total // 4, spill_dir=tmp_path)
    for name in HOOKS:
        assert isinstance(on_disk[name], np.memmap), "a budget below the data size should give memory-mapped arrays"
        np.testing.assert_array_equal(on_disk[name], in_ram[name])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{name}.npy" for name in HOOKS), "no .partial files may remain"


def test_peak_memory_stays_within_the_budget():
    # 4,000 examples x (128 + 128) float32 = 4.1 MB of activations; budget 1 MB
    net = Network([64, 128, 128, 10], activation="relu", cost="cross_entropy", seed=0)
    x = torch.rand(4000, 64, generator=torch.Generator().manual_seed(0))
    hooks = ["layers.0.hook_post", "layers.1.hook_post"]
    data_bytes = 4000 * 256 * 4
    budget = 1_000_000

    def peak(**kwargs):
        tracemalloc.start()
        tracemalloc.reset_peak()
        arrays = collect_activations(net, x, hooks, batch_size=250, **kwargs)
        _, peak_bytes = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return arrays, peak_bytes

    in_ram, ram_peak = peak()
    spilled, spill_peak = peak(budget_bytes=budget)
    assert ram_peak >= data_bytes, "without a budget the arrays live in RAM; tracemalloc should see them"
    assert spill_peak < budget, f"spilling held {spill_peak:,} bytes, above the {budget:,} budget"
    for name in hooks:
        np.testing.assert_array_equal(spilled[name], in_ram[name])
        assert not Path(spilled[name].filename).exists(), "temporary spill files should be unlinked once mapped"


def test_bad_input_is_explained(model, tokens):
    with pytest.raises(ValueError, match="unknown hook names"):
        collect_activations(model, tokens, ["blocks.0.hook_resid_pots"])
    with pytest.raises(ValueError, match="lower batch_size"):
        collect_activations(model, tokens, HOOKS, batch_size=32, budget_bytes=10_000)
    with pytest.raises(ValueError, match="positions"):
        collect_activations(model, tokens, HOOKS, positions=torch.zeros(3, dtype=torch.long))
