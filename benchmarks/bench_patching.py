"""Batched activation patching against TransformerLens's one-forward-per-site sweep.

    OMP_NUM_THREADS=1 python benchmarks/bench_patching.py [--full] [--pairs 8] [--repeats 3]

On the ``facts`` zoo subject (``--full``: the 4-layer model; default: the quick one), for
``resid_pre``, ``attn_out``, ``mlp_out`` and per-head ``z``: the time of
``transformer_lens.patching.get_act_patch_*`` on the subject converted to TransformerLens's
native bridge, and of ``interp.patching.activation_patching`` on our ``Transformer`` and
on that same bridge, each from tokens to result (TL's time includes its clean-cache
run); prints the ratios (TL time / ours) and checks the results agree.
Best of ``--repeats`` runs each; the machine's load affects both sides alike.
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
    parser.add_argument("--pairs", type=int, default=8, help="clean/corrupted prompt pairs in the batch")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import transformer_lens.patching as tlp

    from interp.patching import activation_patching
    from models import zoo
    from models.facts_subject import answer_ids, prompt_tokens
    from models.transformer.convert import to_bridge

    model = zoo.load("facts", quick=not args.full)
    bridge = to_bridge(model).eval()
    corpus = model.corpus
    template = corpus.templates_for("sport", "train")[0]
    people = corpus.people
    a = [corpus.prompt(p, template) for p in people[: args.pairs]]
    b = [corpus.prompt(p, template) for p in people[args.pairs : 2 * args.pairs]]
    clean, corrupted = prompt_tokens(model, a), prompt_tokens(model, b)
    right, wrong = answer_ids(model, [p.answer for p in a]), answer_ids(model, [p.answer for p in b])
    rows = torch.arange(len(a))

    def metric(logits):
        return (logits[rows, -1, right] - logits[rows, -1, wrong]).mean()

    def tl_sweep(sweep):  # end to end, like ours: the clean cache is part of the job
        _, clean_cache = bridge.run_with_cache(clean)
        return sweep(bridge, corrupted, clean_cache, metric)

    sweeps = {"resid_pre": tlp.get_act_patch_resid_pre, "attn_out": tlp.get_act_patch_attn_out,
              "mlp_out": tlp.get_act_patch_mlp_out, "z": tlp.get_act_patch_attn_head_out_by_pos}
    print(f"facts subject ({'full' if args.full else 'quick'}): {model.cfg.n_layers} layers, d_model "
          f"{model.cfg.d_model}, batch {len(a)} x {clean.shape[1]} tokens; torch threads {torch.get_num_threads()}")
    print(f"{'activation':<10} {'sites':>6} {'TL s':>8} {'ours s':>8} {'ours(bridge) s':>15} {'TL/ours':>8} "
          f"{'TL/ours(bridge)':>16} {'max |diff|':>11}")
    with torch.no_grad():
        for name, sweep in sweeps.items():
            t_tl, ref = best_time(lambda: tl_sweep(sweep), args.repeats)
            t_ours, ours = best_time(lambda: activation_patching(model, clean, corrupted, metric, name), args.repeats)
            t_bridge, _ = best_time(lambda: activation_patching(bridge, clean, corrupted, metric, name), args.repeats)
            print(f"{name:<10} {ref.numel():>6} {t_tl:>8.3f} {t_ours:>8.3f} {t_bridge:>15.3f} {t_tl / t_ours:>8.1f} "
                  f"{t_tl / t_bridge:>16.1f} {(ref - ours).abs().max().item():>11.2e}")


if __name__ == "__main__":
    main()
