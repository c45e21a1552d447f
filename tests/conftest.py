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


# Property-based tests (hypothesis): the profiles are in tests/hypothesis_profiles.py
from tests import hypothesis_profiles  # noqa: E402

hypothesis_profiles.load()
