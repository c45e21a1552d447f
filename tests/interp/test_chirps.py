import math

import pytest
import torch

from interp.chirps import chirp_lines, chirp_prime, chirp_start, fourier_basis, is_prime
from interp.packing import max_abs_cos


@pytest.mark.parametrize("p", [7, 11, 13, 17])
def test_chirp_lines_are_p_squared_distinct_lines_within_the_gauss_sum_bound(p):
    lines = chirp_lines(p)
    assert lines.shape == (p * p, p)
    assert torch.allclose(lines.norm(dim=1), torch.ones(p * p, dtype=torch.float64))
    worst = max_abs_cos(lines)
    # distinct lines: |<Re u, Re v>| <= sqrt(p) (two Gauss sums of modulus sqrt(p), halved) over
    # squared lengths >= (p - sqrt(p)) / 2, so |cos| <= 2 / (sqrt(p) - 1), attained when p = 1 mod 4
    assert worst < 1 - 1e-9, "two chirp lines coincide"
    assert worst <= 2 / (math.sqrt(p) - 1) + 1e-9
    if p % 4 == 1:
        assert worst == pytest.approx(2 / (math.sqrt(p) - 1), abs=1e-9)


def test_fourier_basis_is_orthonormal():
    basis = fourier_basis(11)
    assert torch.allclose(basis.T @ basis, torch.eye(11, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(basis[:, 0], torch.full((11,), 11 ** -0.5, dtype=torch.float64))


def test_chirp_prime_takes_the_nearest_prime_with_enough_lines():
    assert chirp_prime(10_000, 100) == 101
    assert chirp_prime(9_000, 97) == 97
    assert chirp_prime(9_500, 97) == 101  # 97² = 9409 < 9500; 101 drops 4 of 97 dimensions (within 5%)
    assert chirp_prime(2_000, 50) is None  # 53 drops 3 of 50 dimensions: more than 5%
    assert all(is_prime(p) for p in (2, 3, 5, 97, 101)) and not any(is_prime(k) for k in (1, 9, 91, 100))


def test_chirp_start_keeps_the_frame_geometry_and_depends_on_the_seed():
    full = chirp_lines(13)
    start = chirp_start(169, 13, seed=0, dtype=torch.float64)  # p = d: no dimension dropped
    assert start.shape == (169, 13)
    assert max_abs_cos(start) == pytest.approx(max_abs_cos(full), abs=1e-12)
    other = chirp_start(169, 13, seed=1, dtype=torch.float64)
    assert not torch.allclose(start, other)  # another rotation, same angles
    assert max_abs_cos(other) == pytest.approx(max_abs_cos(full), abs=1e-12)
    dropped = chirp_start(150, 12)  # p = 13 > d: the constant direction dropped
    assert dropped.shape == (150, 12) and torch.allclose(dropped.norm(dim=1), torch.ones(150))


def test_chirp_start_refuses_sizes_it_does_not_fit():
    with pytest.raises(ValueError, match="no chirp frame"):
        chirp_start(2_000, 50)
    with pytest.raises(ValueError, match="prime p >= 7"):
        chirp_lines(9)
    with pytest.raises(ValueError, match="prime p >= 7"):
        chirp_lines(5)
