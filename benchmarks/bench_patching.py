"""Batched activation patching against TransformerLens's one-forward-per-site sweep.

    python benchmarks/bench_patching.py [--full] [--pairs 1 8 24] [--repeats 3]

On the ``facts`` zoo subject (``--full``: the 4-layer model; default: the quick one), for
``resid_pre``, ``attn_out``, ``mlp_out`` and per-head ``z``: the time of
``transformer_lens.patching.get_act_patch_*`` on the subject converted to TransformerLens's
native bridge, and of ``interp.patching.activation_patching`` on our ``Transformer`` and
on that same bridge, each from tokens to result (TL's time includes its clean-cache
run); prints the ratios (TL time / ours) and checks the results agree.
Best of ``--repeats`` runs each; the machine's load affects both sides alike.

The ratio depends on the batch (``--pairs`` clean/corrupted prompt pairs): TransformerLens
runs one forward per site, so at one pair its time is mostly per-forward overhead, while
at 24 pairs (what the facts analysis patches) each of its forwards is mostly arithmetic and
ours can only win by the arithmetic it skips (earlier layers, the patched layer after a
post-attention patch, positions before the patch, all but the last position in the last
block when the metric reads only that one, sites where both runs agree) and by running
fewer, larger block calls (rows patched at several layers share one pass).
"""

import argparse
import time

import torch


def best_time(fn, repeats: int) -> tuple[float, torch.Tensor]:
    best, out = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="the full facts subject (default: quick)")
    parser.add_argument("--pairs", type=int, nargs="+", default=[1, 8, 24],
                        help="clean/corrupted prompt pairs in the batch (one table row each)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import transformer_lens.patching as tlp

    from interp.patching import activation_patching
    from models import zoo
    from models.transformer.convert import to_bridge

    model = zoo.load("facts", quick=not args.full)
    most = len(model.corpus.people) // 2  # clean and corrupted prompts are about different people
    if any(pairs > most for pairs in args.pairs):
        print(f"the {'full' if args.full else 'quick'} subject has {len(model.corpus.people)} people: at most {most} "
              f"pairs; left out {[p for p in args.pairs if p > most]}")
    args.pairs = [pairs for pairs in args.pairs if pairs <= most]
    bridge = to_bridge(model).eval()
    sweeps = {"resid_pre": tlp.get_act_patch_resid_pre, "attn_out": tlp.get_act_patch_attn_out,
              "mlp_out": tlp.get_act_patch_mlp_out, "z": tlp.get_act_patch_attn_head_out_by_pos}
    print(f"facts subject ({'full' if args.full else 'quick'}): {model.cfg.n_layers} layers, d_model "
          f"{model.cfg.d_model}; torch threads {torch.get_num_threads()}")
    print(f"{'pairs':>5} {'activation':<10} {'sites':>6} {'TL s':>8} {'ours s':>8} {'ours(bridge) s':>15} "
          f"{'TL/ours':>8} {'TL/ours(bridge)':>16} {'max |diff|':>11}")
    for pairs in args.pairs:
        clean, corrupted, metric = prompt_pairs(model, pairs)

        def tl_sweep(sweep):  # end to end, like ours: the clean cache is part of the job
            _, clean_cache = bridge.run_with_cache(clean)
            return sweep(bridge, corrupted, clean_cache, metric)

        with torch.no_grad():
            for name, sweep in sweeps.items():
                t_tl, ref = best_time(lambda: tl_sweep(sweep), args.repeats)
                t_ours, ours = best_time(lambda: activation_patching(model, clean, corrupted, metric, name),
                                         args.repeats)
                t_bridge, _ = best_time(lambda: activation_patching(bridge, clean, corrupted, metric, name),
                                        args.repeats)
                print(f"{pairs:>5} {name:<10} {ref.numel():>6} {t_tl:>8.3f} {t_ours:>8.3f} {t_bridge:>15.3f} "
                      f"{t_tl / t_ours:>8.1f} {t_tl / t_bridge:>16.1f} {(ref - ours).abs().max().item():>11.2e}")


def prompt_pairs(model, pairs: int):
    """``pairs`` people's prompts (clean) and ``pairs`` others' (corrupted), one template; a logit-difference metric."""
    from models.facts_subject import answer_ids, prompt_tokens

    corpus = model.corpus
    template = corpus.templates_for("sport", "train")[0]
    a = [corpus.prompt(p, template) for p in corpus.people[:pairs]]
    b = [corpus.prompt(p, template) for p in corpus.people[pairs : 2 * pairs]]
    right, wrong = answer_ids(model, [p.answer for p in a]), answer_ids(model, [p.answer for p in b])
    rows = torch.arange(len(a))

    def metric(logits):
        return (logits[rows, -1, right] - logits[rows, -1, wrong]).mean()

    return prompt_tokens(model, a), prompt_tokens(model, b), metric


if __name__ == "__main__":
    main()
