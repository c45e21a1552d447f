"""Training many toy models at once against one at a time: time per instance.

    OMP_NUM_THREADS=1 python benchmarks/bench_toy.py [--instances 32] [--steps 300] [--threads 1]

Defaults are the sizes the superposition analysis sweeps (5 features in 2 dimensions).
The peer is the same ``train_toy`` run once per instance (``n_instances=1``) with the same
sizes, steps and batch; the batched run trains all instances in one einsum per step.
Prints seconds per instance for both and the speed-up (acceptance: at least 10x).
"""

import argparse
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=32)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--features", type=int, default=5)
    parser.add_argument("--hidden", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import torch

    from models.toy import train_toy

    torch.set_num_threads(args.threads)
    sparsity = torch.linspace(0, 0.99, args.instances)
    kwargs = dict(steps=args.steps, batch_size=args.batch_size)
    train_toy(args.features, args.hidden, 1 - sparsity, n_instances=args.instances, steps=20)  # warm-up
    train_toy(args.features, args.hidden, 0.5, n_instances=1, steps=20)
    start = time.perf_counter()
    train_toy(args.features, args.hidden, 1 - sparsity, n_instances=args.instances, **kwargs)
    batched = (time.perf_counter() - start) / args.instances
    start = time.perf_counter()
    for s in sparsity:
        train_toy(args.features, args.hidden, float(1 - s), n_instances=1, **kwargs)
    single = (time.perf_counter() - start) / args.instances
    print(f"toy models {args.features} features in {args.hidden} dims, {args.instances} instances, "
          f"{args.steps} steps, batch {args.batch_size}")
    print(f"  one at a time : {single * 1e3:8.1f} ms per instance")
    print(f"  all at once   : {batched * 1e3:8.1f} ms per instance")
    print(f"  speed-up      : {single / batched:8.1f}x")


if __name__ == "__main__":
    main()
