"""Tiny TransformerLens native bridges shared by the instrument tests (not a test module)."""

import functools

import torch
from transformer_lens.config import TransformerBridgeConfig
from transformer_lens.model_bridge import TransformerBridge


@functools.lru_cache(maxsize=4)
def tiny_bridge(dtype: torch.dtype = torch.float32, act_fn: str = "gelu", seed: int = 0):
    """A 2-layer, 4-head, d_model 32 TL-native model with random weights, in eval mode."""
    cfg = TransformerBridgeConfig(d_model=32, n_layers=2, n_heads=4, d_head=8, d_mlp=64, n_ctx=16, d_vocab=50,
                                  act_fn=act_fn, seed=seed)
    model = TransformerBridge.boot_native(cfg, dtype=dtype)
    model.eval()
    return model


def clean_and_corrupted(batch: int = 3, n_pos: int = 6, changed: tuple[int, ...] = (1,), seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    clean = torch.randint(0, 50, (batch, n_pos), generator=g)
    corrupted = clean.clone()
    for pos in changed:
        corrupted[:, pos] = (corrupted[:, pos] + 7) % 50
    return clean, corrupted
