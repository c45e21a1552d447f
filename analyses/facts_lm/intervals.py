"""Wilson's 95% interval for a share, the one interval formula the facts_lm parts share (edits and neurons).

Example::

    from analyses.facts_lm.intervals import wilson_interval

    wilson_interval(0.5, 20)   # (0.299..., 0.700...): inside [0, 1], unlike the share +- 1.96 standard errors
"""

import numpy as np


def wilson_interval(share: float, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson's (1927) interval ``(low, high)`` for a share of ``n`` 0/1 values; ``z`` sets the coverage (95%)."""
    centre = (share + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(share * (1 - share) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half
