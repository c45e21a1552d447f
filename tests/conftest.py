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


# Property-based tests (hypothesis): a few hundred examples per target in CI; developers run
# many more with HYPOTHESIS_PROFILE=dev. No deadline: the machine is often shared.
from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile("ci", max_examples=200, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=5000, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
