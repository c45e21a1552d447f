import itertools
import math

import numpy as np
import pytest
import torch
from sklearn.random_projection import johnson_lindenstrauss_min_dim

from interp.jl import (coherence_lower_bound, jl_min_dim, levenshtein_bound, max_vectors_allowed,
                       welch_bound)


def _max_abs_cos(vectors: torch.Tensor) -> float:
    unit = vectors / vectors.norm(dim=1, keepdim=True)
    gram = unit @ unit.T
    return (gram - torch.eye(len(unit), dtype=gram.dtype)).abs().max().item()


@pytest.mark.parametrize("n, d", [(5, 2), (10, 3), (100, 10), (10_000, 100)])
def test_welch_matches_the_formula(n, d):
    assert welch_bound(n, d) == pytest.approx(((n - d) / (d * (n - 1))) ** 0.5, rel=1e-12)


@pytest.mark.parametrize("n, d", [(7, 3), (11, 4), (100, 10), (10_000, 100)])
def test_levenshtein_matches_the_formula(n, d):
    assert levenshtein_bound(n, d) == pytest.approx(((3 * n - d * d - 2 * d) / ((d + 2) * (n - d))) ** 0.5, rel=1e-12)


def test_series_numbers():
    # The figures: 10,000 vectors in R^100 -> some pair at 81.95 degrees or closer.
    assert levenshtein_bound(10_000, 100) == pytest.approx(0.1400, abs=5e-5)
    assert math.degrees(math.acos(levenshtein_bound(10_000, 100))) == pytest.approx(81.95, abs=0.005)
    assert coherence_lower_bound(10_000, 100) == levenshtein_bound(10_000, 100)
    assert welch_bound(3, 5) == 0.0, "n <= d: an orthonormal set has coherence 0"


def test_bounds_are_met_by_the_known_equality_cases():
    # Regular simplex in R^4 (5 vectors, |cos| = 1/4) meets Welch's bound.
    simplex = torch.eye(5, dtype=torch.float64) - 1 / 5
    simplex = torch.linalg.svd(simplex)[0][:, :4] * torch.linalg.svd(simplex)[1][:4]
    assert _max_abs_cos(simplex) == pytest.approx(welch_bound(5, 4), abs=1e-12)
    # Icosahedron diagonals: 6 lines in R^3 at arccos(1/sqrt 5), an equiangular tight frame.
    phi = (1 + 5**0.5) / 2
    icosa = torch.tensor([[0, 1, phi], [0, 1, -phi], [1, phi, 0], [1, -phi, 0], [phi, 0, 1], [-phi, 0, 1]],
                         dtype=torch.float64)
    assert _max_abs_cos(icosa) == pytest.approx(welch_bound(6, 3), abs=1e-12)
    assert welch_bound(6, 3) == pytest.approx(5**-0.5, abs=1e-12)
    # 24-cell: 12 lines through (±1, ±1, 0, 0) and permutations, max |cos| 1/2 = Levenshtein(12, 4).
    lines = []
    for i, j in itertools.combinations(range(4), 2):
        for sign in (1, -1):
            v = [0.0] * 4
            v[i], v[j] = 1.0, float(sign)
            lines.append(v)
    assert _max_abs_cos(torch.tensor(lines, dtype=torch.float64)) == pytest.approx(levenshtein_bound(12, 4), abs=1e-12)


def test_random_vectors_never_beat_the_bounds():
    generator = torch.Generator().manual_seed(0)
    for n, d in [(20, 3), (60, 5), (300, 12)]:
        vectors = torch.randn(n, d, generator=generator, dtype=torch.float64)
        assert _max_abs_cos(vectors) >= coherence_lower_bound(n, d)


def test_jl_min_dim_equals_sklearn_on_a_grid():
    for n, eps in itertools.product([1, 2, 10, 1000, 10_000, 10**6], [0.05, 0.1, 0.2, 0.5, 0.9, 0.99]):
        assert jl_min_dim(n, eps) == johnson_lindenstrauss_min_dim(n, eps=eps), (n, eps)
    ns, eps = np.array([10, 100, 1000]), np.array([0.1, 0.2, 0.3])
    np.testing.assert_array_equal(jl_min_dim(ns, eps), johnson_lindenstrauss_min_dim(ns, eps=eps))


@pytest.mark.parametrize("d, eps", [(3, 0.5), (4, 0.3), (10, 0.3), (20, 0.2), (50, 0.1), (100, 0.2)])
def test_max_vectors_allowed_inverts_the_bounds(d, eps):
    n = max_vectors_allowed(d, eps)
    if math.isinf(n):
        assert coherence_lower_bound(10**7, d) <= eps
        return
    n = int(n)
    assert coherence_lower_bound(n, d) <= eps + 1e-12
    assert coherence_lower_bound(n + 1, d) > eps


@pytest.mark.parametrize("call", [
    lambda: welch_bound(0, 3), lambda: welch_bound(3, 0), lambda: levenshtein_bound(5, 3),
    lambda: jl_min_dim(10, 0.0), lambda: jl_min_dim(10, 1.0), lambda: jl_min_dim(0, 0.5),
    lambda: max_vectors_allowed(10, 1.5), lambda: max_vectors_allowed(0, 0.1),
])
def test_bad_input_is_refused(call):
    with pytest.raises(ValueError):
        call()
