"""A small GPT-style transformer written from scratch, hookable with TransformerLens's names."""

from models.transformer.config import TransformerConfig
from models.transformer.model import Transformer, UnknownHookError, next_token_loss

__all__ = ["Transformer", "TransformerConfig", "UnknownHookError", "next_token_loss"]
