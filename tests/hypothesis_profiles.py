"""Hypothesis profiles: a few hundred examples per target in CI, many more by hand.

    HYPOTHESIS_PROFILE=dev pytest tests/test_fuzz.py

No deadline: the machine is often shared, and a slow example is not a failing one.
"""

import os

from hypothesis import HealthCheck, settings

settings.register_profile("ci", max_examples=200, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=5000, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])


def load() -> None:
    """Select the profile named by $HYPOTHESIS_PROFILE (default ci)."""
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
