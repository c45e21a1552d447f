import pytest
import torch

from interp.jl import coherence_lower_bound
from interp.chirps import chirp_start
from interp.packing import choose_init, hinge_gradient, capacity, max_abs_cos, pack, random_capacity

# Conway, Hardin & Sloane 1996, Table 1 (lines in R^3); N = 8 proven by Mixon & Parshall 2019.
BEST_R3 = {4: 70.5288, 5: 63.4349, 6: 63.4349, 7: 54.7356, 8: 49.5567}


@pytest.mark.parametrize("n", sorted(BEST_R3))
def test_lines_in_r3_reach_the_best_known_angles(n):
    result = pack(n, 3, seed=0, steps=800, restarts=8)
    assert result.min_angle_deg > BEST_R3[n] - 0.5, f"{n} lines: {result.min_angle_deg:.3f} vs {BEST_R3[n]}"
    assert result.min_angle_deg < BEST_R3[n] + 0.01, "beat a proven optimum: the angle is computed wrongly"
    assert torch.allclose(result.vectors.norm(dim=1), torch.ones(n, dtype=result.vectors.dtype))
    assert result.max_abs_cos == pytest.approx(max_abs_cos(result.vectors), abs=1e-9)


def test_hand_written_gradient_matches_autograd_chunk_by_chunk():
    generator = torch.Generator().manual_seed(0)
    vectors = torch.nn.functional.normalize(torch.randn(2, 37, 5, generator=generator, dtype=torch.float64), dim=-1)
    threshold = torch.tensor([0.3, 0.5], dtype=torch.float64)
    gradient, worst = hinge_gradient(vectors, threshold, chunk_size=8)  # 37 rows: ragged last chunk
    leaf = vectors.clone().requires_grad_(True)
    gram = leaf @ leaf.transpose(1, 2)
    off = gram * (1 - torch.eye(37, dtype=torch.float64))
    loss = 0.5 * (torch.relu(off.abs() - threshold[:, None, None]) ** 2).sum()
    loss.backward()
    # L counts each pair twice (i,j and j,i), so autograd's gradient is twice the row sum.
    torch.testing.assert_close(gradient, leaf.grad / 2)
    torch.testing.assert_close(worst, off.abs().amax(dim=(1, 2)))


def test_chunked_max_matches_dense():
    vectors = torch.randn(300, 7, generator=torch.Generator().manual_seed(1))
    unit = torch.nn.functional.normalize(vectors, dim=1)
    dense = (unit @ unit.T - torch.eye(300)).abs().max().item()
    assert max_abs_cos(vectors, chunk_size=64) == pytest.approx(dense, abs=1e-6)


def test_pack_beats_random_and_respects_the_bound():
    result = pack(400, 12, seed=0, steps=200)
    random = max_abs_cos(torch.randn(400, 12, generator=torch.Generator().manual_seed(0)))
    assert coherence_lower_bound(400, 12) <= result.max_abs_cos < 0.75 * random
    assert result.history["max_abs_cos"].is_monotonic_decreasing


def test_pack_is_deterministic_and_orthonormal_when_it_can_be():
    assert pack(50, 6, seed=3, steps=50).max_abs_cos == pack(50, 6, seed=3, steps=50).max_abs_cos
    assert pack(4, 6).max_abs_cos < 1e-12


def test_capacity_sits_between_random_and_the_bound():
    result = capacity(6, 0.3, steps=300)
    assert result["random"] <= result["optimised"] <= result["bound"]
    assert result["optimised"] >= 9, "6 dims at |cos| <= 0.3 holds at least 9 vectors"


def test_pack_starts_from_a_given_configuration():
    start = torch.randn(60, 5, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    untouched = pack(60, 5, init=start, steps=0)
    assert untouched.max_abs_cos == pytest.approx(max_abs_cos(start), abs=1e-12)
    assert torch.allclose(untouched.vectors, torch.nn.functional.normalize(start, dim=1))
    assert pack(60, 5, init=start, steps=100).max_abs_cos < untouched.max_abs_cos


def test_auto_start_takes_the_chirp_frame_where_it_applies_and_it_beats_random_starts():
    # 2,800 lines in R^53: beyond d(d+1)/2 = 1,431, and the chirp frame of p = 53 has 2,809
    chirp = pack(2800, 53, steps=150)
    assert chirp.history["max_abs_cos"].iloc[0] == pytest.approx(max_abs_cos(chirp_start(2800, 53)), abs=1e-6)
    random = pack(2800, 53, steps=150, init="random")
    assert chirp.max_abs_cos < random.max_abs_cos
    # random starts below d(d+1)/2, on small problems, and where no prime lies close above d
    assert [choose_init(n, d, "auto", small) for n, d, small in ((1000, 53, False), (169, 13, True),
                                                                  (2000, 50, False))] == ["random"] * 3


@pytest.mark.parametrize("call", [lambda: pack(0, 3), lambda: pack(3, 0), lambda: pack(5, 3, slack=0),
                                  lambda: pack(5, 3, slack=(0.5, 1.5)), lambda: capacity(5, 1.2),
                                  lambda: random_capacity(5, 0.0), lambda: pack(5, 3, init="grid"),
                                  lambda: pack(5, 3, init=torch.ones(4, 3)), lambda: pack(2000, 50, init="chirp")])
def test_bad_input_is_refused(call):
    with pytest.raises(ValueError):
        call()
