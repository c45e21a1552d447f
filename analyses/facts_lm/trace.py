"""Causal traces and the logit lens over the known facts of a real language model.

Example::

    from analyses.facts_lm.trace import choose, noise_std, trace_facts, lens_layers, peaks

    chosen = choose(known[known.known], n=8, seed=0)        # balanced over relations
    traces = trace_facts(model, chosen, samples=3, window=10, noise_std=noise_std(model, known), seed=0)
    groups = average_indirect_effect(traces, by=("kind", "layer", "group"))
    peaks(groups)["mlp"]                                      # where restoring the MLP output helps most
"""

from typing import Any, Optional

import numpy as np
import pandas as pd
import torch

from analyses.facts_lm.known import subject_span
from analyses.lm.measures import lens_summary
from interp.lens import lens_names
from interp.parallel import map_tasks
from interp.patching import causal_trace, embedding_std

SUBJECT_GROUPS = ("first subject token", "middle subject tokens", "last subject token")


def choose(known: pd.DataFrame, n: Optional[int], seed: int) -> pd.DataFrame:
    """``n`` facts (all when None) taken in turn from each relation, each relation's order shuffled by ``seed``."""
    rng = np.random.default_rng(seed)
    queues = {relation: list(rng.permutation(group.index.to_numpy()))
              for relation, group in known.groupby("relation", sort=True)}
    picked = []
    while queues and (n is None or len(picked) < n):
        for relation in list(queues):
            if n is not None and len(picked) >= n:
                break
            picked.append(queues[relation].pop(0))
            if not queues[relation]:
                del queues[relation]
    return known.loc[picked].reset_index(drop=True)


def noise_std(model: Any, table: pd.DataFrame) -> float:
    """Standard deviation of the subjects' token embeddings, as they sit in the prompts (ROME: over many subjects)."""
    tokens, mask = model.tokenizer.batch(list(table.prompt), padding_side="right")
    subject = torch.zeros_like(tokens, dtype=torch.bool)
    for row, (prompt, name) in enumerate(zip(table.prompt, table.subject)):
        start, stop = subject_span(model.tokenizer, prompt, name)
        subject[row, start:stop] = True
    return embedding_std(model, tokens, mask=subject, attention_mask=mask, stop_at_layer=0)  # the embeddings only


def trace_facts(model: Any, chosen: pd.DataFrame, *, samples: int, window: int, noise_std: float, seed: int,
                desc: str = "causal tracing") -> pd.DataFrame:
    """Causal traces (every layer and position, three kinds) of each fact, stacked: one row per site with
    ``fact subject relation token`` added. Fact ``i`` draws its noise from seed ``seed * 100_003 + i``.

    Each fact is one task of :func:`interp.parallel.map_tasks`, so the sweep runs wherever ``interp run
    --workers/--backend`` sends it, with the same result."""
    frames = map_tasks(trace_fact, fact_tasks(chosen, samples=samples, window=window, noise_std=noise_std, seed=seed),
                       shared=model, name=desc)
    return pd.concat(frames, ignore_index=True)


def fact_tasks(chosen: pd.DataFrame, *, samples: int, window: int, noise_std: float, seed: int) -> list[dict]:
    """The tasks of :func:`trace_facts`, one per fact: fact ``i`` draws its noise from seed ``seed * 100_003 + i``."""
    return [{"fact": i, "prompt": fact.prompt, "subject": fact.subject, "relation": fact.relation,
             "answer": int(fact.answer), "samples": samples, "window": window, "noise_std": float(noise_std),
             "seed": seed * 100_003 + i} for i, fact in enumerate(chosen.itertuples(index=False))]


def trace_fact(task: dict, model: Any) -> pd.DataFrame:
    """One task of :func:`trace_facts`: the causal trace of one fact, with its labels."""
    tokens = model.to_tokens(task["prompt"])
    span = subject_span(model.tokenizer, task["prompt"], task["subject"])
    df = causal_trace(model, tokens, span, answer=task["answer"], noise_std=task["noise_std"],
                      samples=task["samples"], window=task["window"], seed=task["seed"])
    labels = model.to_str_tokens(tokens[0])
    df["token"] = [labels[p] for p in df["pos"]]
    return df.assign(fact=task["fact"], subject=task["subject"], relation=task["relation"])


def rome_groups(traces: pd.DataFrame) -> pd.DataFrame:
    """``traces`` with each one-token subject's rows counted as the last subject token as well as the first, as
    ROME's averages count them (its first and last subject token are the same token then); ready for
    :func:`interp.patching.average_indirect_effect`."""
    first = traces[traces.group == "first subject token"]
    span = first.groupby("fact").pos.nunique()
    lone = set(span.index[span.eq(1)]) - set(traces.fact[traces.group == "last subject token"])
    return pd.concat([traces, first[first.fact.isin(lone)].assign(group="last subject token")], ignore_index=True)


def peaks(groups: pd.DataFrame, n_layers: int) -> dict:
    """Where each kind's mean indirect effect peaks: per kind, the (layer, group) of the largest mean with its
    interval, and the peaks at the last subject token and at the last token."""
    out = {}
    for kind in ("resid", "mlp", "attn"):
        sub = groups[groups.kind == kind]
        entry = {"overall": _row(sub.loc[sub["mean"].idxmax()], n_layers)}
        for group in ("last subject token", "last token", "first subsequent token"):
            at = sub[sub.group == group]
            if len(at):
                entry[group] = _row(at.loc[at["mean"].idxmax()], n_layers)
        out[kind] = entry
    return out


def _row(row: pd.Series, n_layers: int) -> dict:
    return {"layer": int(row.layer), "group": row.group, "mean": float(row["mean"]), "ci": (float(row.ci_low),
            float(row.ci_high)), "n_facts": int(row.n_facts), "depth": (int(row.layer) + 0.5) / n_layers}


@torch.no_grad()
def lens(model: Any, table: pd.DataFrame, batch_size: int = 32) -> pd.DataFrame:
    """The logit lens at the last position of each prompt: the residual stream after each block (layer -1:
    the embedding) through the final norm and the unembedding; one row per (prompt, layer) with the columns
    :func:`analyses.lm.measures.lens_summary` reads."""
    n = model.cfg.n_layers
    names = lens_names(n)
    rows = []
    for start in range(0, len(table), batch_size):
        part = table.iloc[start : start + batch_size]
        tokens, mask = model.tokenizer.batch(list(part.prompt), padding_side="left")
        _, cache = model.run_with_cache(tokens, names_filter=names, attention_mask=mask, stop_at_layer=n)
        resid = torch.stack([cache[name][:, -1] for name in names], dim=1)  # [batch layer d_model]
        probs = model.unembed(model.ln_final(resid)).float().softmax(-1)  # [batch layer d_vocab]
        if start == 0 and not torch.allclose(probs[:, -1], model(tokens, attention_mask=mask)[:, -1].float().softmax(-1),
                                             atol=1e-5):
            raise RuntimeError("the lens at the last layer differs from the model's own output")
        answers = torch.tensor(part.answer.to_numpy())
        p_answer = probs[torch.arange(len(part)), :, answers]  # [batch layer]
        rank = (probs > p_answer[..., None]).sum(-1) + 1
        for b, fact in enumerate(part.itertuples(index=False)):
            for i, layer in enumerate(range(-1, n)):
                rows.append({"prompt": fact.prompt, "answer": fact.object, "relation": fact.relation, "layer": layer,
                             "p_answer": float(p_answer[b, i]), "rank_answer": int(rank[b, i])})
    return pd.DataFrame(rows)


def lens_layers(lens_table: pd.DataFrame) -> pd.DataFrame:
    """Per prompt: the first layer where the object is the top token, and the layer from which it stays top."""
    summary = lens_summary(lens_table)
    return summary.merge(lens_table.drop_duplicates("prompt")[["prompt", "relation"]], on="prompt")
