"""What the explorer computes for one request: plain functions of a subject and the request's fields.

Each returns a JSON-ready dict and raises :class:`~interp.explore.errors.BadRequest` for input
the user can fix. They do no locking (the app holds the subject's lock around them) and call the
toolkit's own instruments: :mod:`interp.lens`, :func:`interp.patching.activation_patching` and
:func:`interp.patching.causal_trace`.

Numbers are rounded once, here (probabilities and attention weights to 6 decimals, other values
to 6 significant digits), so what the page shows is what the JSON says.
"""

import math
from dataclasses import asdict, dataclass
from typing import Any, Optional

import einops
import torch
from torch import Tensor

from interp.explore.errors import BadRequest
from interp.explore.subjects import Subject
from interp.lens import lens_labels, lens_names, lens_top, logit_lens
from interp.patching import activation_patching
from interp.hook_names import TRACE_KINDS, act_name
from interp.patching import causal_trace, find_subject

PATCHABLE = ("resid_pre", "attn_out", "mlp_out")


@dataclass(frozen=True)
class Limits:
    """Request sizes the server accepts; ``GET /api/limits`` states them."""

    max_tokens: int = 64      # per prompt (and never more than the model's n_ctx)
    max_k: int = 50           # top-k tokens and top neurons
    max_sites: int = 2048     # layers x positions of one patching or tracing heatmap
    max_samples: int = 10     # noise samples of a causal trace

    def __post_init__(self):
        for name, value in asdict(self).items():
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"Limits.{name} must be a positive whole number, got {value!r}")

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def rounded(values: Tensor, decimals: Optional[int] = None, digits: int = 6) -> Any:
    """Nested lists of floats: ``decimals`` places, or ``digits`` significant digits; NaN and inf as None."""
    values = values.detach().double()
    if decimals is not None:
        scale = 10.0 ** decimals
        values = torch.round(values * scale) / scale
        return _finite(values.tolist())
    return _finite(values.tolist(), digits)


def _finite(x: Any, digits: Optional[int] = None) -> Any:
    if isinstance(x, list):
        return [_finite(v, digits) for v in x]
    if not math.isfinite(x):
        return None
    return float(f"{x:.{digits}g}") if digits else x


def _check_k(k: int, limits: Limits, what: str = "k") -> None:
    if not 1 <= k <= limits.max_k:
        raise BadRequest(f"{what} = {k} is out of range: ask for 1 to {limits.max_k}", status=422)


def _position(position: Optional[int], n_pos: int) -> int:
    if position is None:
        return n_pos - 1
    if not -n_pos <= position < n_pos:
        raise BadRequest(f"position {position} is out of range: the prompt has positions 0 to {n_pos - 1} "
                         "(negative counts from the end)", status=422)
    return position % n_pos


def _decode(subject: Subject, ids: Tensor) -> list[str]:
    """Token strings; an id past the tokenizer's vocabulary (a model padded wider) reads ``<id 123>``."""
    ids = ids.reshape(-1)
    try:
        return [str(t) for t in subject.model.to_str_tokens(ids)]
    except ValueError:
        out = []
        for i in ids.tolist():
            try:
                out.append(str(subject.model.to_str_tokens(torch.tensor([i]))[0]))
            except ValueError:
                out.append(f"<id {i}>")
        return out


@torch.no_grad()
def prompt_view(subject: Subject, prompt: str, k: int, limits: Limits) -> dict[str, Any]:
    """Tokens, top-k next tokens at every position, every attention pattern and (decoders) the logit lens."""
    _check_k(k, limits)
    model = subject.model
    tokens = subject.tokens(prompt, limits.max_tokens)
    names = [act_name("pattern", layer) for layer in range(subject.n_layers)]
    lens_hooks = lens_names(subject.n_layers) if subject.causal else []
    out, cache = model.run_with_cache(tokens, names_filter=names + lens_hooks)  # one forward for all of it
    patterns = torch.stack([cache[name][0] for name in names])  # [layer head_index query_pos key_pos]
    result: dict[str, Any] = {
        "model": subject.name, "prompt": prompt, "tokens": subject.str_tokens(tokens),
        "attention": {"layer_labels": [str(layer) for layer in range(subject.n_layers)],
                      "patterns": rounded(patterns, decimals=6)},
        "top_k": None, "lens": None,
    }
    if not subject.causal:
        result["unavailable"] = {"top_k": f"{subject.name} has no next-token head",
                                 "lens": f"{subject.name} has no next-token head"}
        return result
    top = out[0].float().softmax(-1).topk(k)  # [pos k]
    names_top = _decode(subject, top.indices)
    probs = rounded(top.values, decimals=6)
    ids = top.indices.tolist()
    result["top_k"] = [[{"token": names_top[p * k + j], "id": ids[p][j], "prob": probs[p][j]} for j in range(k)]
                       for p in range(len(ids))]
    lens = lens_top(logit_lens(model, tokens, logits=out, cache=cache), k=1)
    flat = _decode(subject, lens.indices[..., 0])
    n_rows, n_pos = lens.indices.shape[:2]
    result["lens"] = {"tokens": result["tokens"], "layer_labels": lens_labels(subject.n_layers),
                      "top_tokens": [flat[r * n_pos:(r + 1) * n_pos] for r in range(n_rows)],
                      "probs": rounded(lens.values[..., 0], decimals=6)}
    return result


@torch.no_grad()
def attention_view(subject: Subject, prompt: str, layer: Optional[int], head: Optional[int],
                   limits: Limits) -> dict[str, Any]:
    """Attention patterns ``[layer][head][query][key]`` of one layer (or all) and one head (or all)."""
    layers = range(subject.n_layers) if layer is None else [layer]
    for each in layers:
        subject.check_layer(each)
    if head is not None:
        subject.check_head(head)
    tokens = subject.tokens(prompt, limits.max_tokens)
    names = [act_name("pattern", each) for each in layers]
    _, cache = subject.model.run_with_cache(tokens, names_filter=names)
    patterns = torch.stack([cache[name][0] for name in names])
    if head is not None:
        patterns = patterns[:, head:head + 1]
    return {"model": subject.name, "tokens": subject.str_tokens(tokens), "layers": list(layers),
            "heads": list(range(subject.n_heads)) if head is None else [head],
            "patterns": rounded(patterns, decimals=6)}


@torch.no_grad()
def neuron_view(subject: Subject, prompt: str, position: Optional[int], k: int, target: Optional[str],
                rank_by: str, limits: Limits) -> dict[str, Any]:
    """The top MLP neurons (``mlp.hook_post``, every layer) at one position, with their direct logit attribution.

    A neuron's attribution to token ``t`` is its activation times its output direction's logit for
    ``t`` through the final normalisation, linearised at this position as TransformerLens's
    ``apply_ln_to_stack`` does (centred for a LayerNorm, divided by the cached scale, times the
    gain): ``a * (W_out[n] / scale * w) @ W_U[:, t]``. The target is the model's top prediction
    at the position unless given.
    """
    _check_k(k, limits)
    if rank_by not in ("dla", "activation"):
        raise BadRequest(f"rank_by must be 'dla' or 'activation', got {rank_by!r}", status=422)
    model = subject.model
    tokens = subject.tokens(prompt, limits.max_tokens)
    pos = _position(position, tokens.shape[1])
    names = [act_name("post", layer) for layer in range(subject.n_layers)]
    if subject.causal:
        names.append("ln_final.hook_scale")
    out, cache = model.run_with_cache(tokens, names_filter=names)
    acts = torch.stack([cache[act_name("post", layer)][0, pos] for layer in range(subject.n_layers)])
    result: dict[str, Any] = {"model": subject.name, "tokens": subject.str_tokens(tokens), "position": pos,
                              "target": None, "rank_by": rank_by, "neurons": []}
    dla = None
    if subject.causal:
        target_id = subject.token_id(target, "target") if target else int(out[0, pos].argmax())
        result["target"] = {"token": _decode(subject, torch.tensor([target_id]))[0], "id": target_id,
                            "logit": rounded(out[0, pos, target_id])}
        unit = neuron_logit_weights(model, cache["ln_final.hook_scale"][0, pos], [target_id])[..., 0]
        dla = acts * unit  # [layer d_mlp]
    elif rank_by == "dla":
        raise BadRequest(f"{subject.name} has no next-token head, so no logit attribution: use rank_by='activation'",
                         status=422)
    score = dla.abs() if rank_by == "dla" else acts
    order = score.flatten().topk(min(k, score.numel())).indices
    for index in order.tolist():
        layer, neuron = divmod(index, acts.shape[1])
        row = {"layer": layer, "neuron": neuron, "activation": rounded(acts[layer, neuron])}
        if dla is not None:
            row["dla"] = rounded(dla[layer, neuron])
            promoted = (neuron_direction(model, layer, neuron) @ model.W_U).topk(5).indices
            row["promotes"] = _decode(subject, promoted)
        result["neurons"].append(row)
    return result


def neuron_logit_weights(model: Any, scale: Tensor, token_ids: list[int]) -> Tensor:
    """``[layer d_mlp token]``: each neuron's logit for each token per unit activation at one position,
    through the final norm linearised with that position's ``scale`` (``ln_final.hook_scale``)."""
    direction = _through_final_norm(model, model.W_out) / scale.reshape(())  # [layer d_mlp d_model]
    return einops.einsum(direction, model.W_U[:, token_ids], "layer d_mlp d_model, d_model token -> layer d_mlp token")


def neuron_direction(model: Any, layer: int, neuron: int) -> Tensor:
    """``[d_model]``: what one neuron writes, as the final norm passes it on (up to the positive scale)."""
    return _through_final_norm(model, model.W_out[layer, neuron])


def _through_final_norm(model: Any, vectors: Tensor) -> Tensor:
    norm = getattr(model.cfg, "normalization", getattr(model.cfg, "normalization_type", "LN"))
    if norm in ("LN", "LNPre"):  # a LayerNorm removes each vector's mean first
        vectors = vectors - vectors.mean(-1, keepdim=True)
    gain = getattr(model.ln_final, "w", None)
    return vectors * gain if gain is not None else vectors


@torch.no_grad()
def patching_view(subject: Subject, clean: str, corrupted: str, activation: str, answer: Optional[str],
                  wrong: Optional[str], limits: Limits) -> dict[str, Any]:
    """Activation patching (denoising): each (layer, position) of ``activation`` from the clean run into the
    corrupted one; the metric is logit(answer) - logit(wrong) at the last position."""
    subject.require_causal("activation patching")
    if activation not in PATCHABLE:
        raise BadRequest(f"activation must be one of {list(PATCHABLE)}, got {activation!r}", status=422)
    model = subject.model
    clean_tokens = subject.tokens(clean, limits.max_tokens)
    corrupted_tokens = subject.tokens(corrupted, limits.max_tokens)
    if clean_tokens.shape != corrupted_tokens.shape:
        raise BadRequest(
            f"the clean prompt has {clean_tokens.shape[1]} tokens ({subject.str_tokens(clean_tokens)}) and the "
            f"corrupted one {corrupted_tokens.shape[1]} ({subject.str_tokens(corrupted_tokens)}): patching pairs "
            "positions one to one, so change the corrupted prompt to the same number of tokens", status=422)
    n_pos = clean_tokens.shape[1]
    _check_sites(subject.n_layers * n_pos, limits, "patching")
    clean_logits, corrupted_logits = model(torch.cat([clean_tokens, corrupted_tokens]))[:, -1]
    answer_id = subject.token_id(answer, "answer") if answer else int(clean_logits.argmax())
    wrong_id = subject.token_id(wrong, "wrong") if wrong else int(corrupted_logits.argmax())
    if answer_id == wrong_id:
        raise BadRequest("the answer and the wrong token are the same token, so the metric is 0 everywhere: "
                         "give 'answer' and 'wrong' explicitly (or a corruption that changes the prediction)",
                         status=422)

    def logit_diff(logits: Tensor) -> Tensor:  # [batch pos d_vocab] -> scalar
        return (logits[:, -1, answer_id] - logits[:, -1, wrong_id]).mean()

    effect = activation_patching(model, clean_tokens, corrupted_tokens, logit_diff, activation)  # [layer pos]
    answer_token, wrong_token = _decode(subject, torch.tensor([answer_id, wrong_id]))
    return {
        "model": subject.name, "activation": activation,
        "tokens": subject.str_tokens(clean_tokens), "corrupted_tokens": subject.str_tokens(corrupted_tokens),
        "layer_labels": [str(layer) for layer in range(subject.n_layers)],
        "values": rounded(effect),
        "answer": {"token": answer_token, "id": answer_id}, "wrong": {"token": wrong_token, "id": wrong_id},
        "metric": f"logit({answer_token!r}) - logit({wrong_token!r}) at the last position",
        "clean_value": rounded(logit_diff(clean_logits[None, None])),
        "corrupted_value": rounded(logit_diff(corrupted_logits[None, None])),
    }


def _check_sites(n_sites: int, limits: Limits, what: str) -> None:
    if n_sites > limits.max_sites:
        raise BadRequest(f"{what} over {n_sites} (layer, position) sites is more than this server's limit of "
                         f"{limits.max_sites}: shorten the prompt", status=413)


def subject_span(subject: Subject, prompt: str, tokens: Tensor, text: str) -> tuple[int, int]:
    """Token span ``[start, stop)`` of ``text`` inside the prompt (by character offsets where the tokenizer
    gives them, else by matching its tokens)."""
    if not text or text not in prompt:
        raise BadRequest(f"the subject {text!r} does not occur in the prompt {prompt!r}: copy it from the prompt",
                         status=422)
    tokenizer = getattr(subject.model, "tokenizer", None)
    if hasattr(tokenizer, "span_tokens"):
        return tokenizer.span_tokens(prompt, text)
    ids = tokens[0].tolist()
    for candidate in (text, " " + text):
        part = subject.model.to_tokens(candidate, prepend_bos=False)[0].tolist()
        try:
            return find_subject(ids, part)
        except ValueError:
            continue
    raise BadRequest(f"the subject {text!r} is not a whole run of the prompt's tokens "
                     f"({subject.str_tokens(tokens)}): give subject_start and subject_stop instead", status=422)


@torch.no_grad()
def tracing_view(subject: Subject, prompt: str, subject_text: Optional[str], span: Optional[tuple[int, int]],
                 kind: str, samples: int, window: Optional[int], answer: Optional[str], seed: int,
                 limits: Limits) -> dict[str, Any]:
    """Causal tracing (ROME): noise the subject's embeddings, restore each (layer, position) of ``kind``;
    the value is the restored probability of the answer minus the corrupted one (the indirect effect).

    The noise's standard deviation is 3 times that of the token embedding matrix (ROME takes 3 times
    that of subject embeddings over many prompts)."""
    subject.require_causal("causal tracing")
    if kind not in TRACE_KINDS:
        raise BadRequest(f"kind must be one of {list(TRACE_KINDS)}, got {kind!r}", status=422)
    if not 1 <= samples <= limits.max_samples:
        raise BadRequest(f"samples = {samples} is out of range: ask for 1 to {limits.max_samples}", status=422)
    window = min(10, subject.n_layers) if window is None else window
    if not 1 <= window <= subject.n_layers:
        raise BadRequest(f"window = {window} is out of range: 1 to {subject.n_layers} layers", status=422)
    model = subject.model
    tokens = subject.tokens(prompt, limits.max_tokens)
    n_pos = tokens.shape[1]
    _check_sites(subject.n_layers * n_pos, limits, "tracing")
    if (subject_text is None) == (span is None):
        raise BadRequest("give the subject to noise, either as text ('subject') or as token positions "
                         "('subject_start' and 'subject_stop')", status=422)
    if span is None:
        span = subject_span(subject, prompt, tokens, subject_text)
    start, stop = span
    if not 0 <= start < stop <= n_pos:
        raise BadRequest(f"the subject span [{start}, {stop}) is not inside the prompt's {n_pos} tokens "
                         "(start < stop, counting from 0)", status=422)
    answer_id = subject.token_id(answer, "answer") if answer else int(model(tokens)[0, -1].argmax())
    noise_std = 3 * float(model.W_E.float().std())
    df = causal_trace(model, tokens, (start, stop), noise_std=noise_std, answer=answer_id, kinds=(kind,),
                      samples=samples, window=window, seed=seed)
    grid = torch.tensor(df.pivot(index="layer", columns="pos", values="indirect_effect").to_numpy())
    return {
        "model": subject.name, "kind": kind, "tokens": subject.str_tokens(tokens),
        "layer_labels": [str(layer) for layer in range(subject.n_layers)],
        "values": rounded(grid), "subject": [start, stop],
        "answer": {"token": _decode(subject, torch.tensor([answer_id]))[0], "id": answer_id},
        "clean_score": rounded(torch.tensor(df["clean"].iloc[0])),
        "corrupted_score": rounded(torch.tensor(df["corrupted"].iloc[0])),
        "noise_std": rounded(torch.tensor(noise_std)), "samples": samples, "window": window, "seed": seed,
        "metric": "p(answer) restored minus p(answer) corrupted, at the last position",
    }
