import os
from pathlib import Path

import pytest


def test_plain_pytest_keeps_the_zoo_out_of_the_home_folder():
    if os.environ.get("INTERP_CACHE_SET_BY_TESTS") != "1":
        pytest.skip("INTERP_CACHE was set by the user; conftest leaves it alone")
    repo = Path(__file__).resolve().parent.parent
    cache = Path(os.environ["INTERP_CACHE"])
    assert cache == repo / ".cache" / "zoo", f"tests would write the zoo to {cache}, not inside the repository"
