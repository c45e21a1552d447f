"""Forward and run_with_cache speed on SmolLM2-135M: ours against Hugging Face eager and TransformerLens's bridge.

Same weights (the dequantised GGUF file), same tokens, same process, ``--repeats`` rounds (each
contender once a round, in a shuffled order, so drifts in the machine's speed weigh on all alike).
A ratio is the median over rounds of the two contenders' times in that round (>1 means ours is
faster), with a 95% distribution-free interval. Hugging Face's model is timed twice, as two
contenders: their ratio is the estimator's control and should straddle 1. Goals (issue 13): forward
at least 1.0x both peers on 8 x 64 tokens, and caching every hook at most 1.3x our plain forward.
Run: ``python benchmarks/bench_lm.py``.
"""

import argparse
import json
import tempfile
import time

import torch

from interp.timing import interleaved_times, paired_speedup


def benchmark(batch: int = 8, pos: int = 64, repeats: int = 3) -> dict[str, float]:
    from transformer_lens.model_bridge import TransformerBridge

    from models import smollm2, zoo

    started = time.perf_counter()
    ours = zoo.load("smollm2")
    load_seconds = time.perf_counter() - started
    hf = smollm2.load_hf()
    with tempfile.TemporaryDirectory() as folder:
        bridge = TransformerBridge.boot_transformers(folder, hf_model=hf, tokenizer=smollm2.load_hf_tokenizer())
    bridge.eval()
    tokens = torch.randint(0, ours.cfg.d_vocab, (batch, pos), generator=torch.Generator().manual_seed(0))
    n = batch * pos
    with torch.inference_mode():
        torch.testing.assert_close(ours(tokens), hf(tokens).logits, rtol=0, atol=2e-4)
        times = interleaved_times({
            "ours_forward": lambda: ours(tokens),
            "hf_forward": lambda: hf(tokens).logits,
            "hf_forward_again": lambda: hf(tokens).logits,
            "tl_forward": lambda: bridge(tokens),
            "ours_cache": lambda: ours.run_with_cache(tokens),
        }, repeats)
    result: dict[str, float] = {name: n / min(seconds) for name, seconds in times.items()}  # best round
    for key, (ours_key, theirs_key) in {"forward_ratio_ours_over_hf": ("ours_forward", "hf_forward"),
                                        "forward_ratio_ours_over_tl": ("ours_forward", "tl_forward"),
                                        "control_ratio_hf_over_hf": ("hf_forward", "hf_forward_again"),
                                        # a cost: the median of cached time over plain time
                                        "ours_cache_cost_over_forward": ("ours_forward", "ours_cache")}.items():
        ratio, low, high = paired_speedup(times[ours_key], times[theirs_key])
        result |= {key: ratio, f"{key}_low": low, f"{key}_high": high}
    result["rounds"] = repeats
    result["zoo_load_seconds"] = load_seconds
    result["threads"] = torch.get_num_threads()
    return result


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--pos", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=15, help="rounds (at least 6 for an interval)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    result = benchmark(args.batch, args.pos, args.repeats)
    if args.json:
        print(json.dumps(result, indent=1))
        return result
    print(f"SmolLM2-135M, batch {args.batch} x {args.pos} tokens, CPU, {result['threads']} threads "
          f"(zoo.load took {result['zoo_load_seconds']:.1f} s)")
    for key in ("ours_forward", "hf_forward", "tl_forward", "ours_cache"):
        print(f"  {key:<14} {result[key]:>10,.0f} tokens/s")
    def line(key: str) -> str:
        return f"{result[key]:.3f}x [95% {result[key + '_low']:.3f}, {result[key + '_high']:.3f}]"
    print(f"over {args.repeats} rounds, median of paired ratios:")
    print(f"forward: ours / Hugging Face eager = {line('forward_ratio_ours_over_hf')} (goal >= 1)")
    print(f"forward: ours / TransformerLens bridge = {line('forward_ratio_ours_over_tl')} (goal >= 1)")
    print(f"control: Hugging Face / itself = {line('control_ratio_hf_over_hf')} (should straddle 1)")
    print(f"caching every hook costs {line('ours_cache_cost_over_forward')} our forward (goal <= 1.3)")
    return result


if __name__ == "__main__":
    main()
