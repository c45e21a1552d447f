import math

import pytest
import torch

from interp.superposition import (dimensions_per_feature, feature_dimensionality, feature_norms, interference,
                                  superposition_table)


def _polygon(k: int) -> torch.Tensor:
    angles = torch.arange(k, dtype=torch.float64) * 2 * math.pi / k
    return torch.stack([angles.cos(), angles.sin()])  # [hidden=2, features=k]


def test_known_geometries():
    # The paper's sticky fractions (Elhage et al. 2022, "Feature Dimensionality").
    torch.testing.assert_close(feature_dimensionality(_polygon(5)), torch.full((5,), 0.4, dtype=torch.float64))
    antipodal = torch.tensor([[1.0, -1.0]], dtype=torch.float64)
    torch.testing.assert_close(feature_dimensionality(antipodal), torch.full((2,), 0.5, dtype=torch.float64))
    tetrahedron = torch.tensor([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]], dtype=torch.float64).T / 3**0.5
    torch.testing.assert_close(feature_dimensionality(tetrahedron), torch.full((4,), 0.75, dtype=torch.float64))
    triangle = _polygon(3)
    torch.testing.assert_close(feature_dimensionality(triangle), torch.full((3,), 2 / 3, dtype=torch.float64))
    torch.testing.assert_close(feature_dimensionality(torch.eye(3, dtype=torch.float64)), torch.ones(3, dtype=torch.float64))


def test_dimensionality_ignores_scale_dead_features_and_keeps_leading_dims():
    W = torch.cat([2 * _polygon(5), torch.zeros(2, 1, dtype=torch.float64)], dim=1)  # a dropped 6th feature
    D = feature_dimensionality(torch.stack([W, W]))  # [instances=2, features=6]
    assert D.shape == (2, 6)
    torch.testing.assert_close(D[:, :5], torch.full((2, 5), 0.4, dtype=torch.float64))
    assert (D[:, 5] == 0).all()


def test_dimensions_per_feature_and_norms():
    assert dimensions_per_feature(_polygon(5)).item() == pytest.approx(2 / 5)
    assert dimensions_per_feature(torch.eye(4)).item() == pytest.approx(1.0)
    torch.testing.assert_close(feature_norms(3 * _polygon(4)), torch.full((4,), 3.0, dtype=torch.float64))


def test_interference_against_a_direct_sum():
    W = torch.randn(3, 7, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    expected = torch.tensor([sum(float((W[:, i] / W[:, i].norm()) @ W[:, j]) ** 2 for j in range(7) if j != i)
                             for i in range(7)], dtype=torch.float64)
    torch.testing.assert_close(interference(W), expected)
    assert interference(torch.eye(3)).abs().max() < 1e-12, "orthogonal features do not interfere"


def test_table_is_long_format():
    table = superposition_table(torch.stack([_polygon(5), _polygon(5)]))
    assert list(table.columns) == ["instance", "feature", "norm", "interference", "dimensionality"]
    assert len(table) == 10 and table["dimensionality"].round(6).eq(0.4).all()


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError):
        feature_dimensionality(torch.ones(3))
    with pytest.raises(ValueError):
        superposition_table(torch.ones(2, 3))
