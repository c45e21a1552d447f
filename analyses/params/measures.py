"""The params analysis's tables: parameter counts per component for GPT-3 (against the seed's table),
the presets, a sweep over widths, and the check against instantiated models."""

import itertools

import pandas as pd

from models.transformer import PRESETS, Transformer, TransformerConfig, count_parameters


# Published figures the report is checked against (3Blue1Brown, "The Parameter Count").
SEED_TABLE = {"embed": 617_558_016, "attn": 58e9, "mlp": 116e9, "unembed": 617_558_016, "total": 175e9}
# Published sizes of the GPT-2 family (Hugging Face model cards, tied embeddings).
GPT2_PUBLISHED = {
    "gpt2-small": 124_439_808, "gpt2-medium": 354_823_168,
    "gpt2-large": 774_030_080, "gpt2-xl": 1_557_611_200,
}
COMPONENT_NAMES = {
    "embed": "embedding", "pos_embed": "position embedding", "attn": "attention",
    "mlp": "MLP", "ln": "layer norms", "unembed": "unembedding",
}


def gpt3_table() -> pd.DataFrame:
    """The seed's GPT-3 table, weight matrices only, one row per matrix family."""
    cfg = PRESETS["gpt3"]
    per_matrix = cfg.n_layers * cfg.n_heads * cfg.d_model * cfg.d_head
    rows = [
        ("embedding", "W_E", f"{cfg.d_vocab:,} x {cfg.d_model:,}", cfg.d_vocab * cfg.d_model),
        *[
            (f"attention {name}", f"W_{name[0].upper()}", f"{cfg.n_layers} x {cfg.n_heads} x {cfg.d_model:,} x {cfg.d_head}", per_matrix)
            for name in ("query", "key", "value", "output")
        ],
        ("MLP up-projection", "W_in", f"{cfg.n_layers} x {cfg.d_model:,} x {cfg.d_mlp:,}", cfg.n_layers * cfg.d_model * cfg.d_mlp),
        ("MLP down-projection", "W_out", f"{cfg.n_layers} x {cfg.d_mlp:,} x {cfg.d_model:,}", cfg.n_layers * cfg.d_model * cfg.d_mlp),
        ("unembedding", "W_U", f"{cfg.d_model:,} x {cfg.d_vocab:,}", cfg.d_model * cfg.d_vocab),
    ]
    return pd.DataFrame(rows, columns=["matrix", "name", "shape", "parameters"])


def gpt3_components() -> pd.DataFrame:
    """Per-component totals of the GPT-3 preset beside the seed's figures."""
    counts = count_parameters(PRESETS["gpt3"], biases=False, layer_norms=False, pos_embed=False)
    rows = []
    for key in ("embed", "attn", "mlp", "unembed", "total"):
        seed = SEED_TABLE[key]
        rows.append({
            "component": COMPONENT_NAMES.get(key, key), "parameters": counts[key],
            "share": counts[key] / counts["total"], "seed_table": seed,
            "relative_difference": counts[key] / seed - 1,
        })
    return pd.DataFrame(rows)


def preset_table(preset: str, *, weights_only: bool = False) -> pd.DataFrame:
    """Parameters per component of a named preset (``interp params``)."""
    if preset not in PRESETS:
        raise KeyError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    options = dict(biases=False, layer_norms=False, pos_embed=False) if weights_only else {}
    counts = count_parameters(PRESETS[preset], **options)
    return pd.DataFrame({
        "component": list(counts),
        "parameters": list(counts.values()),
        "share": [v / counts["total"] for v in counts.values()],
    })


def component_shares(widths: tuple[int, ...]) -> pd.DataFrame:
    """Long table: share of each component for the presets and a width sweep.

    The sweep keeps GPT-3's shape ratios (d_mlp = 4 d_model, d_head 64 or 128,
    n_layers growing as in the GPT-3 paper's family: about d_model / 128) and its
    50,257-token vocabulary, so it shows how the embedding's share shrinks with width.
    """
    rows = []
    for name, cfg in PRESETS.items():
        counts = count_parameters(cfg)
        rows += [{"model": name, "family": "preset", "d_model": cfg.d_model, "component": COMPONENT_NAMES[k],
                  "parameters": counts[k], "share": counts[k] / counts["total"]} for k in COMPONENT_NAMES]
    for width in widths:
        cfg = TransformerConfig(
            d_model=width, n_layers=max(2, width // 128), n_heads=max(1, width // 64), d_mlp=4 * width,
            d_vocab=50257, n_ctx=2048, tied_embeddings=False,
        )
        counts = count_parameters(cfg)
        rows += [{"model": f"width {width}", "family": "sweep", "d_model": width, "component": COMPONENT_NAMES[k],
                  "parameters": counts[k], "share": counts[k] / counts["total"]} for k in COMPONENT_NAMES]
    return pd.DataFrame(rows)


def check_against_instances(d_model: int, n_layers: int) -> pd.DataFrame:
    """Analytic count against ``sum(p.numel())`` for every combination of options."""
    rows = []
    options = itertools.product(("relu", "gelu_new"), ("LN", None), (False, True), (False, True), (None, 4 * d_model))
    for act_fn, norm, tied, bias, d_mlp in options:
        cfg = TransformerConfig(
            d_model=d_model, n_layers=n_layers, n_heads=4, d_mlp=d_mlp, d_vocab=50, n_ctx=16,
            act_fn=act_fn, normalization=norm, tied_embeddings=tied, use_bias=bias,
        )
        instantiated = sum(p.numel() for p in Transformer(cfg).parameters())
        analytic = count_parameters(cfg)["total"]
        rows.append({"act_fn": act_fn, "normalization": str(norm), "tied_embeddings": tied, "use_bias": bias,
                     "d_mlp": str(d_mlp), "analytic": analytic, "instantiated": instantiated,
                     "match": analytic == instantiated})
    return pd.DataFrame(rows)


PRESET_LABELS = {"gpt3": "GPT-3", "smollm2-135m": "SmolLM2-135M", "llama-2-7b": "Llama 2 7B"}


def preset_label(name: str) -> str:
    return "GPT-2 family" if name.startswith("gpt2-") else PRESET_LABELS.get(name, name)

def preset_families(shares: pd.DataFrame) -> list[str]:
    """The families of the presets in ``shares``, smallest model first (the preset figure's title)."""
    presets = shares[shares.family == "preset"]
    order = sorted(presets.model.unique(), key=lambda name: count_parameters(PRESETS[name])["total"])
    return list(dict.fromkeys(preset_label(name) for name in order))


def in_words(words: list[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]
