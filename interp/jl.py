"""How many nearly perpendicular directions fit in d dimensions: bounds and the JL lemma.

Lower bounds on the coherence ``μ = max_{i≠j} |cos(v_i, v_j)|`` of any n unit vectors in
R^d (no arrangement can do better), and the Johnson-Lindenstrauss dimension. The optimiser
that tries to reach these bounds lives in :mod:`interp.packing`.

Example::

    from interp.jl import welch_bound, levenshtein_bound, jl_min_dim

    welch_bound(10_000, 100)         # 0.0995...
    levenshtein_bound(10_000, 100)   # 0.1400...: some pair is at 81.95 degrees or closer
    jl_min_dim(10_000, eps=0.1)      # 7894, as sklearn's johnson_lindenstrauss_min_dim
"""

import math

import numpy as np


def check_nd(n: int, d: int) -> None:
    """Raise unless ``n`` vectors in ``d`` dimensions are whole numbers of at least 1."""
    if int(n) != n or int(d) != d or n < 1 or d < 1:
        raise ValueError(f"need whole numbers n >= 1 vectors and d >= 1 dimensions, got n={n}, d={d}")


def check_eps(eps: float, name: str = "eps") -> None:
    """Raise unless the distortion or angle tolerance ``eps`` lies strictly between 0 and 1."""
    if not 0 < eps < 1:
        raise ValueError(f"{name} must lie strictly between 0 and 1, got {eps}")


def welch_bound(n: int, d: int) -> float:
    """Welch's lower bound on the largest |cos| among n unit vectors in R^d.

    ``μ² >= (n - d) / (d (n - 1))`` (Welch 1974, "Lower bounds on the maximum cross
    correlation of signals", IEEE Trans. Inf. Theory 20, eq. for k = 1): the squared
    cosines of a unit-norm frame sum to at least n²/d, and at most n of them are the
    diagonal. Zero when n <= d (an orthonormal set exists).
    """
    check_nd(n, d)
    if n <= d:
        return 0.0
    return math.sqrt((n - d) / (d * (n - 1)))


def levenshtein_bound(n: int, d: int) -> float:
    """Levenshtein's lower bound on the largest |cos|, valid when n > d(d+1)/2.

    ``μ² >= (3n - d² - 2d) / ((d + 2)(n - d))`` (Levenshtein 1982, "Bounds on the maximal
    cardinality of a code with bounded modulus of the inner product", Soviet Math. Dokl.
    25; stated as the "Levenstein bound" in Fickus, Jasper & Mixon 2018, "Packings in real
    projective spaces", SIAM J. Appl. Algebra Geom., arXiv:1707.01858, Theorem 1 (c)). It
    comes from the degree-4 moment as Welch's comes from the degree-2 one, and beats Welch's
    once n exceeds d(d+1)/2; below that it does not apply and a ValueError says so.
    For n = 10,000 and d = 100 it gives 0.1400, an angle of 81.95 degrees.
    """
    check_nd(n, d)
    if n <= d * (d + 1) / 2:
        raise ValueError(
            f"Levenshtein's bound needs n > d(d+1)/2 = {d * (d + 1) // 2} for d={d}, got n={n}; "
            "use welch_bound or coherence_lower_bound instead"
        )
    return math.sqrt((3 * n - d * d - 2 * d) / ((d + 2) * (n - d)))


def coherence_lower_bound(n: int, d: int) -> float:
    """The larger of the Welch and (where it applies) Levenshtein bounds."""
    bound = welch_bound(n, d)
    if n > d * (d + 1) / 2:
        bound = max(bound, levenshtein_bound(n, d))
    return bound


def max_vectors_allowed(d: int, eps: float) -> float:
    """The largest n the bounds allow with every |cos| <= eps (``inf`` if unbounded).

    Inverts the two bounds: Welch gives ``n <= d (1 - eps²) / (1 - d eps²)`` when
    ``d eps² < 1``; Levenshtein, for n > d(d+1)/2, gives
    ``n <= d (d + 2)(1 - eps²) / (3 - (d + 2) eps²)`` when ``(d + 2) eps² < 3``.
    """
    check_nd(1, d)
    check_eps(eps)
    e2 = eps * eps
    welch = math.floor(d * (1 - e2) / (1 - d * e2) + 1e-9) if d * e2 < 1 else math.inf
    threshold = d * (d + 1) // 2  # Levenshtein constrains only n above this
    if (d + 2) * e2 < 3:
        lev = math.floor(d * (d + 2) * (1 - e2) / (3 - (d + 2) * e2) + 1e-9)
        lev = max(lev, threshold)
    else:
        lev = math.inf
    return float(min(welch, lev))


def jl_min_dim(n: int | np.ndarray, eps: float | np.ndarray = 0.1) -> int | np.ndarray:
    """Dimensions a random projection needs to keep n points' distances within 1 ± eps.

    ``d >= 4 ln n / (eps²/2 - eps³/3)`` (Dasgupta & Gupta 2003, "An elementary proof of a
    theorem of Johnson and Lindenstrauss", Theorem 2.1), rounded down exactly as
    scikit-learn's ``johnson_lindenstrauss_min_dim`` does so the two agree.
    """
    n_arr, eps_arr = np.asarray(n), np.asarray(eps, dtype=np.float64)
    if np.any(n_arr < 1) or np.any(n_arr != np.floor(n_arr)):
        raise ValueError(f"n must be whole numbers >= 1, got {n}")
    if np.any(eps_arr <= 0) or np.any(eps_arr >= 1):
        raise ValueError(f"eps must lie strictly between 0 and 1, got {eps}")
    denominator = eps_arr**2 / 2 - eps_arr**3 / 3
    result = (4 * np.log(n_arr) / denominator).astype(np.int64)
    return int(result) if result.ndim == 0 else result


def jl_rate(eps: float) -> float:
    """Growth rate of ln n per dimension implied by :func:`jl_min_dim`: ``(eps²/2 - eps³/3)/4``."""
    check_eps(eps)
    return (eps**2 / 2 - eps**3 / 3) / 4


def angle_deg(cos: float) -> float:
    """The angle between two lines whose |cos| is ``cos``, in degrees."""
    return math.degrees(math.acos(min(1.0, abs(cos))))
