from dataclasses import dataclass
from typing import Optional

import pytest

from interp.config import apply_overrides


@dataclass(frozen=True)
class Config:
    steps: int = 100
    lr: float = 1e-3
    relu: bool = True
    name: str = "x"
    sizes: tuple[int, ...] = (1, 2)
    mnist_dir: Optional[str] = None


@pytest.mark.parametrize(
    "assignment, field, value",
    [
        ("steps=10", "steps", 10),
        ("steps=1e3", "steps", 1000),
        ("lr=3e-4", "lr", 3e-4),
        ("relu=false", "relu", False),
        ("name=hello", "name", "hello"),
        ("sizes=64,16,10", "sizes", (64, 16, 10)),
        ("mnist_dir=/data/mnist", "mnist_dir", "/data/mnist"),
        ("mnist_dir=none", "mnist_dir", None),
    ],
)
def test_overrides_parse_by_field_type(assignment, field, value):
    assert getattr(apply_overrides(Config(), [assignment]), field) == value


def test_unknown_field_suggests_close_names():
    with pytest.raises(ValueError, match="Did you mean steps"):
        apply_overrides(Config(), ["stepz=3"])


@pytest.mark.parametrize("assignment", ["steps=ten", "relu=maybe", "steps"])
def test_bad_values_are_refused(assignment):
    with pytest.raises(ValueError):
        apply_overrides(Config(), [assignment])
