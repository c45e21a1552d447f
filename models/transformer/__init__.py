"""A small GPT-style transformer written from scratch, hookable with TransformerLens's names."""

from models.transformer.config import TransformerConfig
from models.transformer.model import Transformer, UnknownHookError, next_token_loss
from models.transformer.params import PRESETS, count_parameters
from models.transformer.sampling import generate
from models.transformer.tokenizer import CharTokenizer, WordTokenizer, load_tokenizer

__all__ = [
    "PRESETS",
    "CharTokenizer",
    "Transformer",
    "TransformerConfig",
    "UnknownHookError",
    "WordTokenizer",
    "count_parameters",
    "generate",
    "load_tokenizer",
    "next_token_loss",
]
