"""Views built from a hooked model (TransformerLens hook names) or from an instrument's result.

    >>> import torch
    >>> from models.transformer import Transformer, TransformerConfig
    >>> from interp import show
    >>> model = Transformer(TransformerConfig(d_model=16, n_layers=2, n_heads=2, d_mlp=32, d_vocab=30, n_ctx=16))
    >>> tokens = torch.tensor([[1, 5, 7, 9]])
    >>> show.attention(model, tokens).data["patterns"][1][0][0]   # layer 1, head 0, query 0
    [1.0, 0.0, 0.0, 0.0]
    >>> view = show.logit_lens(model, tokens)                       # one row per lens_labels entry
    >>> view.data["layer_labels"]
    ['embed', '0', '1']

A prompt is a string (tokenized by ``model.to_tokens``) or the token ids of one prompt
(``[pos]`` or ``[1 pos]``); token strings come from ``model.to_str_tokens``, or are the ids
themselves when the model has no tokenizer.
"""

import difflib
from typing import Any, Optional, Sequence, Union

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from interp import lens
from interp.hook_names import act_name
from interp.show.view import View

Prompt = Union[str, Tensor, Sequence[int]]


def _prompt(model: Any, prompt: Prompt) -> tuple[Tensor, list[str]]:
    """``tokens [1 pos]`` and their strings."""
    if isinstance(prompt, str):
        tokens = model.to_tokens(prompt)
    else:
        tokens = torch.as_tensor(prompt) if not isinstance(prompt, Tensor) else prompt
        if tokens.ndim == 1:
            tokens = tokens[None]
        if tokens.ndim != 2 or tokens.shape[0] != 1:
            raise ValueError(f"a view shows one prompt: give a string or token ids [pos] or [1 pos], "
                             f"got shape {tuple(tokens.shape)}")
        if tokens.is_floating_point() or tokens.dtype == torch.bool:
            raise ValueError(f"token ids must be integers, got dtype {tokens.dtype}")
        tokens = tokens.long()
    parameter = next(iter(model.parameters()), None)
    if parameter is not None:
        tokens = tokens.to(parameter.device)
    return tokens, _token_strings(model, tokens[0])


def _token_strings(model: Any, ids: Tensor) -> list[str]:
    """The strings of a 1-D tensor of ids: ``model.to_str_tokens``, or the ids as text without a tokenizer.

    An id the tokenizer does not know (a model whose ``d_vocab`` pads the tokenizer's
    vocabulary) is written ``[id]``.
    """
    ids = ids.reshape(-1)
    if getattr(model, "tokenizer", None) is None:
        return [str(int(i)) for i in ids]
    try:
        return [str(s) for s in model.to_str_tokens(ids)]
    except (ValueError, IndexError, KeyError):
        pass
    strings = []
    for i in ids.tolist():
        try:
            strings.append(str(model.to_str_tokens(torch.tensor([i]))[0]))
        except (ValueError, IndexError, KeyError):
            strings.append(f"[{i}]")
    return strings


def _run(model: Any, tokens: Tensor, names: list[str]) -> dict[str, Tensor]:
    """The activations at ``names`` for one prompt; a ``ValueError`` naming close matches for an unknown name."""
    known = list(getattr(model, "hook_dict", {}) or {})
    if known:
        for name in names:
            if name not in known:
                close = difflib.get_close_matches(name, known, n=4, cutoff=0.5)
                raise ValueError(f"the model has no hook {name!r}; "
                                 + (f"did you mean one of {close}?" if close else f"hook names look like {known[:4]}"))
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens, names_filter=lambda name: name in names)
    missing = [name for name in names if name not in cache]
    if missing:
        raise ValueError(f"running the model cached no activation at {missing}; give hook names the model has")
    return {name: cache[name] for name in names}


def attention(model: Any, prompt_or_tokens: Prompt, layers: Optional[Sequence[int]] = None) -> View:
    """The attention pattern of every head, picked by layer and head.

        >>> from models.transformer import Transformer, TransformerConfig
        >>> from models.transformer.tokenizer import CharTokenizer
        >>> tokenizer = CharTokenizer.from_corpus("hello world")
        >>> model = Transformer(TransformerConfig(d_model=16, n_layers=2, n_heads=2, d_mlp=32,
        ...                                       d_vocab=tokenizer.d_vocab, n_ctx=16), tokenizer=tokenizer)
        >>> view = attention(model, "hello world", layers=[0])
        >>> view.data["layer_labels"], view.data["tokens"][:3], len(view.data["patterns"][0])   # 2 heads
        (['0'], ['<bos>', 'h', 'e'], 2)

    Reads ``blocks.{L}.attn.hook_pattern`` ``[batch head_index query_pos key_pos]`` for each
    layer in ``layers`` (default all); rows are the query tokens, columns the key tokens.
    """
    tokens, strings = _prompt(model, prompt_or_tokens)
    n_layers = model.cfg.n_layers
    layers = list(range(n_layers)) if layers is None else list(layers)
    if not layers:
        raise ValueError("layers is empty; give at least one layer, or layers=None for all")
    bad = [layer for layer in layers if not isinstance(layer, (int, np.integer)) or not 0 <= layer < n_layers]
    if bad:
        raise ValueError(f"layers {bad} are not layers of this {n_layers}-layer model; use 0 to {n_layers - 1}")
    names = [act_name("pattern", layer) for layer in layers]
    cache = _run(model, tokens, names)
    patterns = torch.stack([cache[name][0].float().cpu() for name in names])  # [layer head_index query_pos key_pos]
    return View("attention", {"tokens": strings, "patterns": patterns,
                              "layer_labels": [str(int(layer)) for layer in layers]})


def token_values(
    model: Any,
    prompt_or_tokens: Prompt,
    hook_name: str,
    index: Optional[int] = None,
    direction: Optional[Float[Tensor, "d"]] = None,
) -> View:
    """The prompt's tokens coloured by one neuron, or by the projection onto a direction.

        >>> from models.transformer import Transformer, TransformerConfig
        >>> from models.transformer.tokenizer import CharTokenizer
        >>> tokenizer = CharTokenizer.from_corpus("hello world")
        >>> model = Transformer(TransformerConfig(d_model=16, n_layers=2, n_heads=2, d_mlp=32,
        ...                                       d_vocab=tokenizer.d_vocab, n_ctx=16), tokenizer=tokenizer)
        >>> view = token_values(model, "hello", "blocks.0.mlp.hook_post", index=3)      # neuron 3 of layer 0
        >>> view.data["label"], len(view.data["values"])                               # one value per token
        ('blocks.0.mlp.hook_post[3]', 6)
        >>> view = token_values(model, "hello", "blocks.1.hook_resid_post", direction=model.W_U[:, 7])
        >>> view.data["label"]
        'blocks.1.hook_resid_post · direction'

    The activation at ``hook_name`` must be one vector per position (``[batch pos d]``);
    ``index`` picks entry ``d``, ``direction`` (``[d]``) takes the dot product. Give exactly one.
    """
    if (index is None) == (direction is None):
        raise ValueError("give exactly one of index (a neuron: an entry of the activation's last dim) "
                         "or direction (a [d] tensor to project onto)")
    tokens, strings = _prompt(model, prompt_or_tokens)
    act = _run(model, tokens, [hook_name])[hook_name][0]
    if act.ndim != 2:
        raise ValueError(f"the activation at {hook_name!r} has shape {tuple(act.shape[1:])} per prompt, not "
                         "[pos d]; use a hook with one vector per position, e.g. blocks.0.mlp.hook_post")
    d = act.shape[-1]
    if index is not None:
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not -d <= index < d:
            raise ValueError(f"index {index!r} is not an entry of {hook_name!r}, which has d={d}; use 0 to {d - 1}")
        values = act[:, index]
        label = f"{hook_name}[{int(index)}]"
    else:
        direction = torch.as_tensor(direction)
        if direction.shape != (d,):
            raise ValueError(f"direction has shape {tuple(direction.shape)}; the activation at {hook_name!r} "
                             f"has d={d}, so give a [{d}] tensor")
        values = act @ direction.to(act.device, act.dtype)
        label = f"{hook_name} \u00b7 direction"
    return View("tokens", {"tokens": strings, "values": values.float().cpu(), "label": label})


def logit_lens(model: Any, prompt_or_tokens: Prompt, k: int = 1) -> View:
    """The logit lens: the most probable next token read from the residual stream after each block.

        >>> from models.transformer import Transformer, TransformerConfig
        >>> from models.transformer.tokenizer import CharTokenizer
        >>> tokenizer = CharTokenizer.from_corpus("hello world")
        >>> model = Transformer(TransformerConfig(d_model=16, n_layers=2, n_heads=2, d_mlp=32,
        ...                                       d_vocab=tokenizer.d_vocab, n_ctx=16), tokenizer=tokenizer)
        >>> view = logit_lens(model, "hello world", k=3)
        >>> view.data["layer_labels"], len(view.data["top_k_tokens"][0][0])   # 3 tokens in each tooltip
        (['embed', '0', '1'], 3)

    Rows follow :func:`interp.lens.lens_labels` (``embed``, then each block); each cell is
    the top token and its probability (:func:`interp.lens.logit_lens`); with ``k > 1`` the
    tooltip also lists the next ``k - 1`` tokens.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive integer (how many top tokens per cell), got {k!r}")
    tokens, strings = _prompt(model, prompt_or_tokens)
    probs = lens.logit_lens(model, tokens)  # [layer pos d_vocab]
    top = lens.lens_top(probs, k=k)
    n_layer, n_pos, n_k = top.indices.shape
    top_strings = np.array(_token_strings(model, top.indices.cpu()), dtype=object)
    top_strings = top_strings.reshape(n_layer, n_pos, n_k)
    data = {
        "tokens": strings,
        "layer_labels": lens.lens_labels(model.cfg.n_layers),
        "top_tokens": top_strings[:, :, 0].tolist(),
        "probs": top.values[:, :, 0].float().cpu(),
    }
    if n_k > 1:
        data["top_k_tokens"] = top_strings.tolist()
        data["top_k_probs"] = top.values.float().cpu()
    return View("lens", data)


_LABELS = ("title", "row_name", "col_name", "value_name", "scale")


def heatmap(values: Any, rows: Optional[Sequence[Any]] = None, cols: Optional[Sequence[Any]] = None,
            **labels: Optional[str]) -> View:
    """A 2-D tensor or array as a grid with a colour scale (diverging around 0 when it has both signs).

        >>> view = heatmap(torch.randn(3, 4), ["a", "b", "c"], list("wxyz"), title="demo", value_name="score")
        >>> view.kind, view.data["rows"], view.data["cols"], view.data["title"]
        ('heatmap', ['a', 'b', 'c'], ['w', 'x', 'y', 'z'], 'demo')

    ``rows`` and ``cols`` label the two dims (default their indices); ``labels`` may be
    ``title``, ``row_name``, ``col_name``, ``value_name`` and ``scale`` (``"diverging"`` around 0 or
    ``"sequential"`` from min to max; default: diverging when the values have both signs).
    """
    unknown = sorted(set(labels) - set(_LABELS))
    if unknown:
        raise ValueError(f"unknown heatmap labels {unknown}; use some of {_LABELS}")
    if labels.get("scale") not in (None, "diverging", "sequential"):
        raise ValueError(f"scale must be 'diverging' or 'sequential', got {labels['scale']!r}")
    array = values.detach().cpu() if isinstance(values, Tensor) else np.asarray(values)
    if array.ndim != 2:
        raise ValueError(f"a heatmap takes a 2-D tensor or array [row col], got shape {tuple(array.shape)}")
    n_rows, n_cols = array.shape
    rows = [str(i) for i in range(n_rows)] if rows is None else [str(r) for r in rows]
    cols = [str(i) for i in range(n_cols)] if cols is None else [str(c) for c in cols]
    if len(rows) != n_rows or len(cols) != n_cols:
        raise ValueError(f"values are {n_rows} x {n_cols} but there are {len(rows)} row labels and "
                         f"{len(cols)} col labels; give one label per row and one per column")
    data = {"rows": rows, "cols": cols, "values": array}
    data.update({key: str(value) for key, value in labels.items() if value is not None})
    return View("heatmap", data)


def patching(effect: Float[Tensor, "layer pos"], tokens: Sequence[str], title: Optional[str] = None,
             value_name: str = "effect") -> View:
    """Activation patching's ``[layer pos]`` result (e.g. :func:`interp.patching.activation_patching`) as a heatmap.

        >>> from models.transformer import Transformer, TransformerConfig
        >>> from models.transformer.tokenizer import CharTokenizer
        >>> tokenizer = CharTokenizer.from_corpus("hello world")
        >>> model = Transformer(TransformerConfig(d_model=16, n_layers=2, n_heads=2, d_mlp=32,
        ...                                       d_vocab=tokenizer.d_vocab, n_ctx=16), tokenizer=tokenizer)
        >>> from interp.patching import activation_patching
        >>> clean_tokens, corrupted_tokens = model.to_tokens("hello"), model.to_tokens("world")
        >>> effect = activation_patching(model, clean_tokens, corrupted_tokens, lambda logits: logits[:, -1, 3].mean())
        >>> view = patching(effect, model.to_str_tokens(clean_tokens), title="resid_pre patching")
        >>> view.data["rows"], view.data["cols"]
        (['layer 0', 'layer 1'], ['<bos>', 'h', 'e', 'l', 'l', 'o'])

    Rows are ``layer 0``, ``layer 1``, ...; columns the tokens.
    """
    effect = torch.as_tensor(effect) if not isinstance(effect, Tensor) else effect
    if effect.ndim != 2:
        raise ValueError(f"patching shows a [layer pos] effect, got shape {tuple(effect.shape)}; "
                         "for [layer pos head_index] pick a head (effect[..., h]) or sum over heads")
    tokens = list(tokens)
    if len(tokens) != effect.shape[1]:
        raise ValueError(f"the effect has {effect.shape[1]} positions but {len(tokens)} tokens were given")
    return heatmap(effect, [f"layer {layer}" for layer in range(effect.shape[0])], tokens,
                   title=title, value_name=value_name)


def tracing(df: Any, kind: Optional[str] = None, tokens: Optional[Sequence[str]] = None,
            title: Optional[str] = None) -> View:
    """One kind of :func:`interp.patching.causal_trace`'s result: indirect effect by layer and position.

        >>> from models.transformer import Transformer, TransformerConfig
        >>> from models.transformer.tokenizer import CharTokenizer
        >>> tokenizer = CharTokenizer.from_corpus("hello world")
        >>> model = Transformer(TransformerConfig(d_model=16, n_layers=2, n_heads=2, d_mlp=32,
        ...                                       d_vocab=tokenizer.d_vocab, n_ctx=16), tokenizer=tokenizer)
        >>> from interp.patching import causal_trace
        >>> tokens = model.to_tokens("hello world")
        >>> df = causal_trace(model, tokens, subject=(1, 6), answer=3, noise_std=0.3, samples=2, window=1)
        >>> view = tracing(df, kind="mlp", tokens=model.to_str_tokens(tokens))
        >>> view.kind, view.data["rows"], len(view.data["cols"])     # layers by positions
        ('heatmap', ['0', '1'], 12)

    ``df`` has columns ``kind layer pos indirect_effect`` and one row per site; ``kind`` may
    be left out when ``df`` holds one kind. Columns are the positions, labelled by
    ``tokens`` when given; a (layer, pos) missing from ``df`` is a grey cell.
    """
    needed = {"layer", "pos", "indirect_effect"}
    if not needed <= set(df.columns):
        raise ValueError(f"tracing takes causal_trace's DataFrame; it lacks columns {sorted(needed - set(df.columns))}")
    if "kind" in df.columns:
        kinds = list(dict.fromkeys(df["kind"]))
        if kind is None:
            if len(kinds) != 1:
                raise ValueError(f"the trace holds kinds {kinds}; pick one with kind=")
            kind = kinds[0]
        if kind not in kinds:
            raise ValueError(f"kind {kind!r} is not in the trace, which holds {kinds}")
        df = df[df["kind"] == kind]
    if df.duplicated(["layer", "pos"]).any():
        raise ValueError("the trace has several rows for one (layer, pos); give one prompt's trace "
                         "(average several first, e.g. df.groupby(['kind', 'layer', 'pos']).mean())")
    n_layers, n_pos = int(df["layer"].max()) + 1, int(df["pos"].max()) + 1
    if tokens is not None:
        tokens = list(tokens)
        if len(tokens) < n_pos:
            raise ValueError(f"the trace reaches position {n_pos - 1} but only {len(tokens)} tokens were given")
        n_pos = len(tokens)
    grid = df.pivot(index="layer", columns="pos", values="indirect_effect")
    grid = grid.reindex(index=range(n_layers), columns=range(n_pos))
    cols = tokens if tokens is not None else [str(pos) for pos in range(n_pos)]
    what = f" ({kind})" if kind is not None else ""
    return heatmap(grid.to_numpy(dtype=np.float64), [str(layer) for layer in range(n_layers)], cols,
                   title=title or f"causal trace{what}: indirect effect of restoring each state",
                   row_name="layer", col_name=None if tokens is not None else "pos",
                   value_name="indirect effect", scale="sequential")  # as ROME draws traces
