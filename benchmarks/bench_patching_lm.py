"""Batched activation patching on a real language model (SmolLM2-135M) against TransformerLens's sweep.

    python benchmarks/bench_patching_lm.py [--activations resid_pre z] [--repeats 3] [--threads 1]

One clean/corrupted prompt pair of 12 tokens ("As everyone knows, the capital of France is
the city of" vs "... Italy ..."), metric the logit difference " Paris" - " Rome" at the
last position. TransformerLens: ``transformer_lens.patching.get_act_patch_*`` on
TransformerLens's bridge booted over the same Hugging Face ``LlamaForCausalLM`` (the
dequantised GGUF weights our zoo model was converted from), its clean-cache run included.
Ours: ``interp.patching.activation_patching`` on our ``Transformer`` from the zoo, from
tokens to result. The first call of ours on a model also runs the shortcut checks (once per
model); it is reported apart ("ours first"), and the ratio uses the best of ``--repeats``
runs, as for TransformerLens. Prints both times, the ratio and the largest difference
(expected within 1e-4: the two are different implementations of the same float32 model).
"""

import argparse
import os
import tempfile
import time

import torch

CLEAN = "As everyone knows, the capital of France is the city of"
CORRUPTED = "As everyone knows, the capital of Italy is the city of"
ANSWERS = (" Paris", " Rome")


def best_time(fn, repeats: int) -> tuple[float, float, torch.Tensor]:
    """(first time, best time, last result) over ``repeats`` calls."""
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return times[0], min(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--activations", nargs="+", default=["resid_pre"],
                        choices=["resid_pre", "attn_out", "mlp_out", "z"])
    parser.add_argument("--repeats", type=int, default=3, help="runs of ours (best taken)")
    parser.add_argument("--tl-repeats", type=int, default=1, help="runs of TransformerLens's sweep (best taken)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: torch's); 1 is steadier on a machine others share")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    import transformer_lens.patching as tlp
    from transformer_lens.model_bridge import TransformerBridge

    from interp.patching import activation_patching
    from models import smollm2, zoo

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    model = zoo.load("smollm2")
    with tempfile.TemporaryDirectory() as folder:
        bridge = TransformerBridge.boot_transformers(folder, hf_model=smollm2.load_hf(),
                                                     tokenizer=smollm2.load_hf_tokenizer()).eval()
    clean, corrupted = model.to_tokens(CLEAN), model.to_tokens(CORRUPTED)
    if clean.shape != corrupted.shape:
        raise ValueError(f"the prompts must have equal token counts, got {clean.shape[1]} and {corrupted.shape[1]}")
    right, wrong = (model.to_single_token(answer) for answer in ANSWERS)

    def metric(logits):
        return (logits[:, -1, right] - logits[:, -1, wrong]).mean()

    sweeps = {"resid_pre": tlp.get_act_patch_resid_pre, "attn_out": tlp.get_act_patch_attn_out,
              "mlp_out": tlp.get_act_patch_mlp_out, "z": tlp.get_act_patch_attn_head_out_by_pos}
    print(f"SmolLM2-135M: {model.cfg.n_layers} layers, d_model {model.cfg.d_model}, {model.cfg.n_heads} query / "
          f"{model.cfg.n_kv_heads} key-value heads; {clean.shape[1]} tokens; torch threads {torch.get_num_threads()}")
    print(f"{'activation':<10} {'sites':>6} {'TL s':>8} {'ours first s':>13} {'ours s':>8} {'TL/ours':>8} "
          f"{'TL/ours first':>14} {'max |diff|':>11}")
    with torch.no_grad():
        for name in args.activations:
            def tl_sweep():  # end to end, like ours: the clean cache is part of the job
                _, clean_cache = bridge.run_with_cache(clean)
                return sweeps[name](bridge, corrupted, clean_cache, metric)

            _, t_tl, ref = best_time(tl_sweep, args.tl_repeats)
            first, t_ours, ours = best_time(lambda: activation_patching(model, clean, corrupted, metric, name),
                                            args.repeats)
            print(f"{name:<10} {ref.numel():>6} {t_tl:>8.2f} {first:>13.2f} {t_ours:>8.3f} {t_tl / t_ours:>8.1f} "
                  f"{t_tl / first:>14.1f} {(ref - ours).abs().max().item():>11.2e}")


if __name__ == "__main__":
    main()
