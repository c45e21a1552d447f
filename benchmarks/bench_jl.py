"""The packing optimiser: hand-written chunked gradient against autograd, and the 10,000 x 100 run.

    python benchmarks/bench_jl.py [--n 4000] [--d 100] [--full [--steps S] [--init random]]

Part 1 times one gradient of the hinge objective computed by ``interp.packing``
(block by block, memory O(n x chunk)) against the peer, ``torch.autograd`` through the whole
n x n Gram matrix, and reports the speed and peak-memory ratios. Part 2 (``--full``) packs
10,000 vectors in 100 dimensions with the analysis's settings (``analyses.jl.Config``) on
every core torch uses (two here) and prints the time, the largest |cos|, and its ratio to
Levenshtein's bound (acceptance: <= 1.5, i.e. <= 0.21, in under 10 minutes). ``pack``'s
default start there is the real chirp frame for p = 101 (:mod:`interp.chirps`);
``--init random`` starts from random vectors instead (the analysis runs that for 300 steps).
"""

import argparse
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4000)
    parser.add_argument("--d", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--full", action="store_true", help="also run the 10,000 x 100 packing")
    parser.add_argument("--steps", type=int, default=None, help="default: the jl analysis's full preset")
    parser.add_argument("--init", default="auto", choices=("auto", "random", "chirp"), help="pack's start")
    args = parser.parse_args()

    import torch

    from interp.jl import levenshtein_bound
    from interp.packing import hinge_gradient, pack, random_unit_vectors

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # part 1 compares single-threaded kernels
    vectors = random_unit_vectors(args.n, args.d)[None]
    threshold = torch.tensor([0.3])

    def ours():
        return hinge_gradient(vectors, threshold, chunk_size=1024)[0]

    def autograd():
        leaf = vectors[0].clone().requires_grad_(True)
        gram = leaf @ leaf.T
        off = gram - torch.diag(torch.diagonal(gram))
        (0.25 * torch.relu(off.abs() - threshold) ** 2).sum().backward()  # ¼: each pair counted twice
        return leaf.grad[None]

    timings = {}
    # Largest intermediate each holds: a 1024-row block of the Gram matrix against all n x n.
    peaks = {"hand-written, chunked": 1024 * args.n * 4, "autograd, full Gram": args.n * args.n * 4}
    for name, fn in (("hand-written, chunked", ours), ("autograd, full Gram", autograd)):
        fn()  # warm-up
        start = time.perf_counter()
        for _ in range(args.repeats):
            fn()
        timings[name] = (time.perf_counter() - start) / args.repeats
    assert torch.allclose(ours(), autograd(), atol=1e-4), "the two gradients disagree"
    print(f"hinge gradient, n={args.n}, d={args.d}")
    for name in timings:
        print(f"  {name:24s}: {timings[name] * 1e3:8.1f} ms   largest Gram buffer {peaks[name] / 1e6:8.1f} MB")
    ours_t, peer_t = timings["hand-written, chunked"], timings["autograd, full Gram"]
    print(f"  speed ratio (autograd / ours): {peer_t / ours_t:.2f}x; Gram memory ratio "
          f"{peaks['autograd, full Gram'] / peaks['hand-written, chunked']:.1f}x")

    if args.full:
        from analyses.jl import Config

        torch.set_num_threads(threads)
        n, d, config = 10_000, 100, Config()
        steps = args.steps or config.steps
        start_cpu, start = time.process_time(), time.perf_counter()
        result = pack(n, d, steps=steps, seed=config.seed, init=args.init, progress=True)
        wall, cpu = time.perf_counter() - start, time.process_time() - start_cpu
        ratio = result.max_abs_cos / levenshtein_bound(n, d)
        print(f"pack {n:,} x {d}, init {args.init}, {steps} steps, {threads} threads: max|cos| {result.max_abs_cos:.4f} (min angle "
              f"{result.min_angle_deg:.2f} deg), {ratio:.3f} x Levenshtein bound {levenshtein_bound(n, d):.4f}; "
              f"{wall:.0f} s wall, {cpu:.0f} s CPU")


if __name__ == "__main__":
    main()
