"""Zoo subjects an analysis needs many of (the digit networks over variants and seeds),
trained as one sweep the first time and read from the cache after.

    from analyses.subjects import train_missing
    from models import zoo

    wanted = [{"subject": "digit_network", "seed": s, "epochs": 5} for s in range(4)]
    train_missing(wanted, name="digit networks")      # map_tasks over the ones not cached
    nets = [zoo.load(w["subject"], seed=w["seed"], epochs=5) for w in wanted]   # trains nothing

The tasks run wherever ``interp run --backend`` sends sweeps (each on one thread, seeded);
each trains its subject into the zoo's cache and returns the training's record, which is
counted in this process's ``zoo.TRAINED``, so a report says what its run trained.
"""

from typing import Any

from interp.parallel import map_tasks
from models import zoo

SPECIAL = ("subject", "quick", "seed")  # the task fields that are not the recipe's options


def options(request: dict[str, Any]) -> dict[str, Any]:
    """The recipe options of a request (everything but ``subject``, ``quick`` and ``seed``)."""
    return {k: v for k, v in request.items() if k not in SPECIAL}


def train_subject(task: dict[str, Any], shared: Any = None) -> dict[str, Any] | None:
    """A task of :func:`train_missing`: train one subject into the cache; its training record, or None."""
    return zoo.ensure(task["subject"], quick=bool(task.get("quick", False)), seed=int(task["seed"]), **options(task))


def train_missing(requests: list[dict[str, Any]], name: str) -> int:
    """Train, as one sweep called ``name``, the requested subjects the cache lacks; returns how many.

    A request is ``{"subject": ..., "seed": ..., "quick": ... (default False), **options}``.
    """
    missing = [r for r in requests if not zoo.is_cached(r["subject"], quick=bool(r.get("quick", False)),
                                                          seed=int(r["seed"]), **options(r))]
    if missing:
        for training in map_tasks(train_subject, missing, name=name):
            if training is not None:
                zoo.record(training)
    return len(missing)


def load(request: dict[str, Any]) -> tuple[Any, Any]:
    """The requested subject and the history its training recorded, both from the zoo."""
    how = dict(quick=bool(request.get("quick", False)), seed=int(request["seed"]), **options(request))
    return zoo.load(request["subject"], **how), zoo.history(request["subject"], **how)
