import pytest
import torch

from models.transformer import Transformer, TransformerConfig


def small_config(**overrides) -> TransformerConfig:
    fields = dict(d_model=16, n_layers=2, n_heads=2, d_mlp=32, d_vocab=23, n_ctx=12, seed=0)
    return TransformerConfig(**{**fields, **overrides})


@pytest.fixture
def model() -> Transformer:
    return Transformer(small_config())


@pytest.fixture
def tokens() -> torch.Tensor:
    return torch.randint(0, 23, (3, 10), generator=torch.Generator().manual_seed(1))
