"""The full causal trace of one fact on SmolLM2-135M: ours against ROME's one forward per restored site.

    python benchmarks/bench_trace_lm.py [--samples 10] [--subset 1.0] [--threads N] [--facts 150]

One fact ("The capital of France is the city of" -> " Paris", subject " France"), every
layer and position, three kinds (hidden state; MLP and attention over windows of 10 layers,
ROME's resolution), the same noise samples (3x the subject embeddings' std, as ROME) for
both. Ours: ``interp.patching.causal_trace`` (the :mod:`interp.patching.restoring` engine), from
tokens to result, its first call (which also runs the shortcut checks, once per model)
reported apart. Straightforward: ``interp.patching.trace_site_by_site``, one forward per
restored site with the noise samples as its batch and hooks doing the noising and restoring,
as ROME's ``trace_with_patch`` does. ``--subset f`` times the straightforward on a random
fraction ``f`` of the sites and scales its time by ``1 / f`` (said in the output); the
numbers are compared on the sites it ran. ``--facts`` scales the per-fact time to a
known-facts set of that size.
"""

import argparse
import random
import time

import torch

TEXT, SUBJECT, ANSWER = "The capital of France is the city of", "France", " Paris"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=10, help="noise samples per trace (ROME: 10)")
    parser.add_argument("--subset", type=float, default=1.0, help="fraction of sites the straightforward runs")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--facts", type=int, default=150, help="known facts to scale the per-fact time to")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from interp.patching import causal_trace, embedding_std, trace_site_by_site
    from models import zoo

    model = zoo.load("smollm2")
    tokens = model.to_tokens(TEXT)
    subject = model.tokenizer.span_tokens(TEXT, SUBJECT)
    answer = model.to_single_token(ANSWER)
    mask = torch.zeros_like(tokens, dtype=torch.bool)
    mask[0, subject[0] : subject[1]] = True
    std = embedding_std(model, tokens, mask=mask)
    kwargs = dict(answer=answer, noise_std=3 * std, samples=args.samples, window=10, seed=0)

    start = time.perf_counter()
    causal_trace(model, tokens, subject, **kwargs)
    first = time.perf_counter() - start
    start = time.perf_counter()
    ours = causal_trace(model, tokens, subject, **kwargs)
    t_ours = time.perf_counter() - start

    noise = torch.randn(args.samples, subject[1] - subject[0], model.cfg.d_model,
                        generator=torch.Generator().manual_seed(0)) * 3 * std
    sites = list(ours[["kind", "layer", "pos"]].itertuples(index=False, name=None))
    ran = sites if args.subset >= 1 else random.Random(0).sample(sites, max(1, round(args.subset * len(sites))))
    start = time.perf_counter()
    theirs, _ = trace_site_by_site(model, tokens, subject, noise, answer, ran, window=10)
    t_theirs = (time.perf_counter() - start) * len(sites) / len(ran)
    scores = ours.set_index(["kind", "layer", "pos"])["score"]
    diff = max(abs(scores[site] - value) for site, value in zip(ran, theirs))

    print(f"SmolLM2-135M, {tokens.shape[1]} tokens, subject tokens {subject}, {len(sites)} sites, "
          f"{args.samples} noise samples, torch threads {torch.get_num_threads()}")
    scaled = f" (ran {len(ran)} of {len(sites)} sites, time scaled by {len(sites) / len(ran):.2f})" if len(ran) < len(sites) else ""
    print(f"straightforward (one forward per site): {t_theirs:8.2f} s{scaled}")
    print(f"ours:                                   {t_ours:8.2f} s   (first call {first:.2f} s)")
    print(f"ratio {t_theirs / t_ours:.1f}x (first call {t_theirs / first:.1f}x); largest |difference| {diff:.2e}")
    print(f"for {args.facts} facts: ours {args.facts * t_ours / 60:.1f} min, straightforward "
          f"{args.facts * t_theirs / 60:.1f} min")


if __name__ == "__main__":
    main()
