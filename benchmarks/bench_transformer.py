"""Forward and run_with_cache speed of our Transformer against TransformerLens's native bridge.

Same configuration, same weights, same tokens, in the same process; printed as
ratios (>1 means ours is faster). Run: ``python benchmarks/bench_transformer.py``.
"""

import argparse
import json
import time
from typing import Callable

import torch

from interp.timing import interleaved_times
from models.transformer import Transformer, TransformerConfig
from models.transformer.convert import to_bridge


def tokens_per_second(fn: Callable[[], object], n_tokens: int, repeats: int, warmup: int = 2) -> float:
    """Best-of-``repeats`` throughput (the minimum time is the least noisy on a shared machine)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return n_tokens / min(times)


def interleaved_tokens_per_second(fns: dict[str, Callable[[], object]], n_tokens: int, repeats: int,
                                  warmup: int = 1) -> dict[str, float]:
    """Best-of-``repeats`` throughput of each of ``fns``, timed by :func:`interleaved_times`."""
    return {name: n_tokens / min(seconds) for name, seconds in interleaved_times(fns, repeats, warmup).items()}


def benchmark(batch: int = 16, pos: int = 128, d_model: int = 256, n_layers: int = 4, n_heads: int = 8,
              repeats: int = 10, threads: int | None = None) -> dict[str, float]:
    if threads is not None:
        torch.set_num_threads(threads)
    cfg = TransformerConfig(d_model=d_model, n_layers=n_layers, n_heads=n_heads, d_mlp=4 * d_model,
                            d_vocab=1000, n_ctx=pos, act_fn="gelu_new", seed=0)
    ours = Transformer(cfg).eval()
    theirs = to_bridge(ours).eval()
    tokens = torch.randint(0, cfg.d_vocab, (batch, pos), generator=torch.Generator().manual_seed(0))
    n = batch * pos
    with torch.inference_mode():
        torch.testing.assert_close(ours(tokens), theirs(tokens), rtol=0, atol=1e-4)
        result = {
            "ours_forward": tokens_per_second(lambda: ours(tokens), n, repeats),
            "tl_forward": tokens_per_second(lambda: theirs(tokens), n, repeats),
            "ours_cache": tokens_per_second(lambda: ours.run_with_cache(tokens), n, repeats),
            "tl_cache": tokens_per_second(lambda: theirs.run_with_cache(tokens), n, repeats),
        }
    result["forward_ratio_ours_over_tl"] = result["ours_forward"] / result["tl_forward"]
    result["cache_ratio_ours_over_tl"] = result["ours_cache"] / result["tl_cache"]
    result["ours_cache_cost_over_forward"] = result["ours_forward"] / result["ours_cache"]
    result["threads"] = torch.get_num_threads()
    return result


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--pos", type=int, default=128)
    parser.add_argument("--d-model", type=int, default=256)
    parser.add_argument("--n-layers", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    result = benchmark(args.batch, args.pos, args.d_model, args.n_layers, repeats=args.repeats, threads=args.threads)
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        print(f"batch {args.batch} x {args.pos} tokens, d_model {args.d_model}, {args.n_layers} layers, "
              f"CPU, {result['threads']} threads")
        for key in ("ours_forward", "tl_forward", "ours_cache", "tl_cache"):
            print(f"  {key:<14} {result[key]:>12,.0f} tokens/s")
        print(f"forward: ours / TL = {result['forward_ratio_ours_over_tl']:.2f}x (goal >= 1)")
        print(f"run_with_cache: ours / TL = {result['cache_ratio_ours_over_tl']:.2f}x")
        print(f"caching every hook costs {result['ours_cache_cost_over_forward']:.2f}x our forward (goal <= 1.5)")
    return result


if __name__ == "__main__":
    main()
