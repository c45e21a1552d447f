"""Tracing and patching measurements of the ``facts`` analysis, each returning a tidy DataFrame.

Example::

    from models import zoo
    from models.facts_subject import corpus_of
    from analyses.facts.measures import trace_facts

    model = zoo.load("facts", quick=True)
    traces = trace_facts(model, corpus_of(model).prompts("train", "sport")[:4], samples=4, window=3, seed=0)

Token positions: the subject model reads ``<bos>`` then one token per word, so word ``i``
of a prompt is token ``i + 1``.
"""

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from interp.parallel import map_tasks
from interp.patching import activation_patching, causal_trace, embedding_std
from models.data.facts import Prompt
from models.facts_subject import answer_ids, corpus_of, predictions, prompt_tokens

# the two token sites where a person's names are both in view: the last name itself (ROME's
# site) and the prompt's last token, where the next word (the answer) is read
SITES = ("last subject token", "last token")


def subject_span(prompt: Prompt) -> tuple[int, int]:
    """Token span of the subject (``<bos>`` shifts words by one)."""
    return prompt.subject_words[0] + 1, prompt.subject_words[1] + 1


def known(model, prompts: list[Prompt]) -> list[Prompt]:
    """The prompts the model answers right (ROME traces only facts the model knows)."""
    return [p for p, guess in zip(prompts, predictions(model, prompts)) if guess == p.answer]


def subject_noise_std(model) -> float:
    """Std of the subject tokens' embeddings over every person (ROME: over many subjects)."""
    corpus = corpus_of(model)
    tokens = model.tokenizer.to_tokens([p.name for p in corpus.people])
    return embedding_std(model, tokens, mask=tokens != model.tokenizer.bos_token_id)


def trace_facts(model, prompts: list[Prompt], *, samples: int, window: int, seed: int,
                noise_scale: float = 3.0) -> pd.DataFrame:
    """Causal traces of every prompt, stacked, with ``fact``, ``template`` and token labels; each prompt is
    one task of :func:`interp.parallel.map_tasks` (serial unless ``interp run --workers/--backend`` says)."""
    tasks = prompt_tasks(model, prompts, samples=samples, window=window, seed=seed,
                         noise_std=noise_scale * subject_noise_std(model))
    return pd.concat(map_tasks(trace_prompt, tasks, shared=model, name="causal tracing"), ignore_index=True)


def prompt_tasks(model, prompts: list[Prompt], *, samples: int, window: int, seed: int, noise_std: float) -> list[dict]:
    """The tasks of :func:`trace_facts`, one per prompt: prompt ``i`` draws its noise from seed ``seed * 100_003 + i``."""
    return [{"fact": i, "text": prompt.text, "labels": ["<bos>", *prompt.words], "span": list(subject_span(prompt)),
             "answer": model.tokenizer.index[prompt.answer], "template": prompt.template.id,
             "person": prompt.person.name, "samples": samples, "window": window, "noise_std": noise_std,
             "seed": seed * 100_003 + i} for i, prompt in enumerate(prompts)]


def trace_prompt(task: dict, model) -> pd.DataFrame:
    """One task of :func:`trace_facts`: the causal trace of one prompt, with its labels."""
    tokens = model.tokenizer.to_tokens([task["text"]])
    df = causal_trace(model, tokens, tuple(task["span"]), answer=task["answer"], noise_std=task["noise_std"],
                      samples=task["samples"], window=task["window"], seed=task["seed"])
    df["token"] = [task["labels"][p] for p in df["pos"]]
    return df.assign(fact=task["fact"], template=task["template"], person=task["person"])


def patch_people(model, prompts_a: list[Prompt], prompts_b: list[Prompt]) -> pd.DataFrame:
    """Denoising patching from person A's prompt into person B's (same template), all activations.

    Metric: logit of A's answer minus logit of B's answer at the last token, normalised
    so 0 is the corrupted (B) run and 1 the clean (A) run, averaged over pairs.
    """
    clean, corrupted = prompt_tokens(model, prompts_a), prompt_tokens(model, prompts_b)
    a_ids, b_ids = answer_ids(model, [p.answer for p in prompts_a]), answer_ids(model, [p.answer for p in prompts_b])
    rows = torch.arange(len(prompts_a))

    def logit_diff(logits: Tensor) -> Tensor:
        last = logits[:, -1]
        return (last[rows, a_ids] - last[rows, b_ids]).mean()

    with torch.no_grad():
        clean_value, corrupted_value = logit_diff(model(clean)).item(), logit_diff(model(corrupted)).item()
    frames = []
    for activation in ("resid_pre", "attn_out", "mlp_out", "z"):
        effect = activation_patching(model, clean, corrupted, logit_diff, activation)
        recovered = (effect - corrupted_value) / (clean_value - corrupted_value)
        if activation != "z":
            recovered = recovered[..., None]  # one "head" column (-1) for whole-layer activations
        layer, pos, head = np.meshgrid(*[range(n) for n in recovered.shape], indexing="ij")
        frames.append(pd.DataFrame({"activation": activation, "layer": layer.ravel(), "pos": pos.ravel(),
                                    "head": head.ravel() if activation == "z" else -1,
                                    "recovered": recovered.flatten().numpy()}))
    out = pd.concat(frames, ignore_index=True)
    return out.assign(clean_logit_diff=clean_value, corrupted_logit_diff=corrupted_value)
