"""Real chirp frames: p² nearly orthogonal lines in R^p, a structured start for packing.

For a prime p, the chirps ``u_ab(x) = exp(2πi (a x² + b x) / p)`` (x = 0..p-1) have
``|<u_ab, u_a'b'>| = √p`` whenever ``a ≠ a'`` (a Gauss sum) and are orthogonal when
``a = a'``: Alltop's sequences (Alltop 1980, "Complex sequences with low periodic
correlations", IEEE Trans. Inf. Theory 26), a near-optimal complex packing (Strohmer &
Heath 2003, "Grassmannian frames with applications to coding and communication", Appl.
Comput. Harmon. Anal. 14). Their real and imaginary parts, ``cos`` and ``sin`` of the same
phase, give p² distinct real lines (``u_{-a,-b}`` is the conjugate of ``u_ab``), with every
|cos| at most about ``2/√p``: for p = 101 the 10,201 lines have largest |cos| 0.221, where
10,000 random unit vectors in R^100 have about 0.52 and gradient descent from them stalls
near 0.212.

For d < p the lines are written in the real Fourier basis of R^p with the ``p - d``
lowest frequencies dropped (the constant first): each chirp has a flat spectrum, so it
loses only about ``(p - d) · 2/p`` of its squared length. This is worth doing only when p
is close to d (:func:`chirp_prime`).

Example::

    from interp.chirps import chirp_start

    start = chirp_start(10_000, 100)   # [10000, 100] unit rows, largest |cos| about 0.247
"""

import math

import torch
from jaxtyping import Float
from torch import Tensor


def is_prime(p: int) -> bool:
    return p >= 2 and all(p % k for k in range(2, math.isqrt(p) + 1))


def chirp_prime(n: int, d: int, max_dropped: float = 0.05) -> int | None:
    """The smallest prime ``p >= max(d, 7)`` whose p² chirp lines cover n, or None.

    None when that prime exceeds ``d`` by more than ``max(1, max_dropped · d)``
    dimensions: dropping more would distort the construction away from its coherence.
    """
    p = max(d, 7)
    while not is_prime(p):
        p += 1
    while p * p - (p - d) < n:  # each dropped Fourier direction was one of the lines
        p += 1
        while not is_prime(p):
            p += 1
    return p if p - d <= max(1, int(max_dropped * d)) else None


def chirp_lines(p: int) -> Float[Tensor, "lines p"]:
    """The p² real chirp lines in R^p (unit rows, float64), one per line (no ± duplicates)."""
    if not is_prime(p) or p < 7:  # (p = 3, 5: some cos and sin lines coincide)
        raise ValueError(f"chirp frames need a prime p >= 7, got {p}")
    x = torch.arange(p, dtype=torch.int64)
    # one of each conjugate pair (a, b) ~ (-a, -b): a in 1..(p-1)/2 with every b, and a = 0 with b in 0..(p-1)/2
    pairs = [(a, b) for a in range(1, (p + 1) // 2) for b in range(p)] + [(0, b) for b in range((p + 1) // 2)]
    a, b = torch.tensor(pairs).T
    phase = 2 * math.pi * ((a[:, None] * x * x + b[:, None] * x) % p).double() / p
    lines = torch.cat([phase.cos(), phase[b.ne(0) | a.ne(0)].sin()])  # sin of phase 0 vanishes
    return lines / lines.norm(dim=1, keepdim=True)


def fourier_basis(p: int) -> Float[Tensor, "p p"]:
    """Orthonormal real Fourier basis of R^p as columns: constant, then cos/sin of frequency 1, 2, ..."""
    x = torch.arange(p, dtype=torch.float64)
    columns = [torch.full((p,), 1 / math.sqrt(p), dtype=torch.float64)]
    for frequency in range(1, (p + 1) // 2):
        angle = 2 * math.pi * frequency * x / p
        columns += [angle.cos() * math.sqrt(2 / p), angle.sin() * math.sqrt(2 / p)]
    return torch.stack(columns, dim=1)


def chirp_start(n: int, d: int, seed: int = 0, dtype: torch.dtype = torch.float32) -> Float[Tensor, "n d"]:
    """n unit vectors in R^d taken from the chirp frame of :func:`chirp_prime`'s prime.

    The lines that lose least length to the dropped frequencies are kept (ties in a
    seeded random order), renormalised, and turned by a seeded random rotation of R^d
    (which changes no angle). Raises ValueError when no prime is close enough to d.
    """
    p = chirp_prime(n, d)
    if p is None:
        raise ValueError(f"no chirp frame fits {n} lines in R^{d}: the first prime with p² >= n is too far above d")
    generator = torch.Generator().manual_seed(seed)
    coordinates = chirp_lines(p) @ fourier_basis(p)[:, p - d:]  # drop the p - d lowest frequencies
    kept = coordinates.norm(dim=1)
    shuffle = torch.randperm(len(kept), generator=generator)
    order = shuffle[torch.argsort(-kept[shuffle].round(decimals=9), stable=True)][:n]
    vectors = coordinates[order] / kept[order, None]
    rotation = torch.linalg.qr(torch.randn(d, d, generator=generator, dtype=torch.float64))[0]
    return (vectors @ rotation).to(dtype)
