"""Test-session settings.

The zoo caches trained subjects under ``$INTERP_CACHE`` (default ``~/.cache/interp/zoo``).
A plain ``pytest`` must not write into the user's home cache, so unless ``INTERP_CACHE`` is
already set, the tests use ``.cache/zoo`` inside the repository (ignored by git); the
subjects trained there are reused by later test runs.
"""

import os
from pathlib import Path

if "INTERP_CACHE" not in os.environ:  # at import, before any test module reads the cache folder
    os.environ["INTERP_CACHE"] = str(Path(__file__).resolve().parent.parent / ".cache" / "zoo")
    os.environ["INTERP_CACHE_SET_BY_TESTS"] = "1"

# The kernels `interp` runs (models.kernels), chosen before any test runs a torch operation, so that
# the tests train and compute what the command line does; its subprocesses inherit them.
from models.kernels import pin_kernels  # noqa: E402

pin_kernels()


# Property-based tests (hypothesis): the profiles are in tests/hypothesis_profiles.py
from tests import hypothesis_profiles  # noqa: E402

hypothesis_profiles.load()

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def ray_cluster():
    """A local two-CPU Ray cluster, started once for the whole session by the first test that asks for it
    (sweeps on ``backend="ray"`` join it instead of starting their own)."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()
