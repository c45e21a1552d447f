"""Zoo subjects an analysis needs many of (the digit networks over variants and seeds),
trained as one sweep the first time and read from the cache after.

    from analyses.subjects import train_missing
    from models import zoo

    wanted = [{"subject": "digit_network", "seed": s, "epochs": 5} for s in range(4)]
    train_missing(wanted, name="digit networks")      # map_tasks over the ones not cached
    nets = [zoo.load(w["subject"], seed=w["seed"], epochs=5) for w in wanted]   # trains nothing

The tasks run wherever ``interp run --backend`` sends sweeps (each on one thread, seeded);
each trains its subject into the zoo's cache and returns the training's record, which is
counted in this process's ``zoo.TRAINED`` (so a report says what its run trained), with the
weights and history, which this machine caches too (``zoo.store``) where a worker's cache is
another machine's.
"""

from typing import Any

from interp.parallel import map_tasks
from models import zoo

SPECIAL = ("subject", "quick", "seed")  # the task fields that are not the recipe's options


def options(request: dict[str, Any]) -> dict[str, Any]:
    """The recipe options of a request (everything but ``subject``, ``quick`` and ``seed``)."""
    return {k: v for k, v in request.items() if k not in SPECIAL}


def train_subject(task: dict[str, Any], shared: Any = None) -> dict[str, Any]:
    """A task of :func:`train_missing`: train one subject into the cache (the worker's own); returns the
    training's record (None when it was cached), the weights and the history, so that the machine that
    gathers the results can cache them too (a Ray worker's cache may be on another machine)."""
    how = dict(quick=bool(task.get("quick", False)), seed=int(task["seed"]), **options(task))
    training, reads = zoo.ensure(task["subject"], **how), len(zoo.CACHED)
    model = zoo.load(task["subject"], **how)
    del zoo.CACHED[reads:]  # reading back what the task trained is no cache hit of the run (serial: this process)
    return {"training": training, "state": {k: v.detach().clone() for k, v in model.state_dict().items()},
            "history": zoo.history(task["subject"], **how)}


def train_missing(requests: list[dict[str, Any]], name: str) -> int:
    """Train, as one sweep called ``name``, the requested subjects the cache lacks; returns how many.

    A request is ``{"subject": ..., "seed": ..., "quick": ... (default False), **options}``.
    """
    missing = [r for r in requests if not zoo.is_cached(r["subject"], quick=bool(r.get("quick", False)),
                                                          seed=int(r["seed"]), **options(r))]
    if missing:
        for request, result in zip(missing, map_tasks(train_subject, missing, name=name)):
            training = result["training"]  # None: the worker's cache (maybe another machine's) had it
            if training is not None:
                zoo.record(training)
            zoo.store(request["subject"], result["state"], result["history"],  # a no-op where it is cached
                      training["seconds"] if training else 0.0,
                      quick=bool(request.get("quick", False)), seed=int(request["seed"]), **options(request))
    return len(missing)


def load(request: dict[str, Any]) -> tuple[Any, Any]:
    """The requested subject and the history its training recorded, both from the zoo."""
    how = dict(quick=bool(request.get("quick", False)), seed=int(request["seed"]), **options(request))
    return zoo.load(request["subject"], **how), zoo.history(request["subject"], **how)
