"""Linear probes per hook, cross-validated, with Hewitt and Liang's control tasks.

A probe is a logistic regression (scikit-learn) from a hook's activation to a label. High
accuracy alone does not show the model represents the label: a flexible enough probe can
memorise. Hewitt and Liang (2019, "Designing and Interpreting Probes with Control Tasks",
section 2) pair each task with a *control task* in which every word **type** gets a
random label drawn from the real labels' empirical distribution; *selectivity* is the
real-task accuracy minus the control-task accuracy. Where every example is its own type
(an image, a sentence), the control labels are random per example and a probe cannot
beat chance on held-out folds, which is the sanity check this module's tests make.

Example::

    import numpy as np
    from interp.probing import probe_hooks

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 300)
    activations = {"layer_0": rng.normal(size=(300, 8)),                 # no information
                   "layer_1": np.eye(3)[labels] + 0.3 * rng.normal(size=(300, 3))}
    probe_hooks(activations, labels)   # hook, accuracy, control_accuracy, selectivity, chance, ...

Each hook is one task of :func:`interp.parallel.map_tasks`: a grid of layers runs serially, on
worker processes or on Ray with the same table.
"""

import warnings
from typing import Hashable, Sequence

import numpy as np
import pandas as pd
from einops import rearrange
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from interp.parallel import map_tasks


def control_labels(labels: Sequence[Hashable], types: Sequence[Hashable] | None = None, seed: int = 0) -> np.ndarray:
    """Hewitt and Liang's control task: one random label per type, drawn from the labels' empirical distribution.

    Examples of the same type share their control label; ``types=None`` makes every
    example its own type (random labels with the real class frequencies).
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    if types is None:
        return rng.permutation(labels)  # exactly the real class counts, assigned at random
    types = np.asarray(types)
    if len(types) != len(labels):
        raise ValueError(f"types has {len(types)} entries but labels has {len(labels)}; give one type per example")
    unique_types, type_index = np.unique(types, return_inverse=True)
    per_type = rng.choice(labels, size=len(unique_types), replace=True)
    return per_type[type_index]


def probe_accuracy(
    X: np.ndarray, labels: Sequence[Hashable], cv: int = 5, seed: int = 0, C: float = 1.0, max_iter: int = 2000
) -> np.ndarray:
    """Held-out accuracy of a standardised logistic-regression probe in each of ``cv`` stratified folds."""
    labels = _checked_labels({"X": X}, labels, cv)
    return _cross_validated(X, labels, cv, seed, C, max_iter)


def _checked_labels(activations: dict[str, np.ndarray], labels: Sequence[Hashable], cv: int) -> np.ndarray:
    """``labels`` as an array, or a ValueError if an activation set has another length or a class is too rare."""
    labels = np.asarray(labels)
    for name, X in activations.items():
        if len(X) != len(labels):
            raise ValueError(f"{name} has {len(X)} examples but labels has {len(labels)}")
    _, counts = np.unique(labels, return_counts=True)
    if len(counts) < 2:
        raise ValueError("labels has a single class; a probe needs at least two")
    if counts.min() < cv:
        raise ValueError(f"the rarest class has {counts.min()} examples, fewer than cv={cv} folds; lower cv or add examples")
    return labels


def _cross_validated(X: np.ndarray, labels: np.ndarray, cv: int, seed: int, C: float, max_iter: int) -> np.ndarray:
    if len(np.unique(labels)) < 2:
        return np.ones(cv)  # a control task with one label for every type: trivially predictable
    X = np.asarray(X, dtype=np.float64)
    X = rearrange(X, "batch ... -> batch (...)") if X.ndim > 2 else X
    probe = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=max_iter))
    folds = StratifiedKFold(n_splits=cv, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        # control labels drawn per type may leave a class rarer than cv; the folds stay valid
        warnings.filterwarnings("ignore", message="The least populated class")
        return cross_val_score(probe, X, labels, cv=folds, scoring="accuracy")


def probe_hooks(
    activations: dict[str, np.ndarray],
    labels: Sequence[Hashable],
    types: Sequence[Hashable] | None = None,
    cv: int = 5,
    seed: int = 0,
    C: float = 1.0,
    max_iter: int = 2000,
) -> pd.DataFrame:
    """Probe every hook for ``labels`` and for the control task; one row per hook.

    Columns: ``hook, accuracy, accuracy_std, control_accuracy, control_std, selectivity,
    chance, n_examples, n_classes, cv``. ``chance`` is the majority-class rate, what a
    probe that ignores its input scores; accuracies are means over the folds.
    """
    labels = _checked_labels(activations, labels, cv)
    control = control_labels(labels, types, seed)
    tasks = [{"hook": hook, "cv": cv, "C": C, "max_iter": max_iter, "seed": seed} for hook in activations]
    shared = {"activations": activations, "labels": labels, "control": control}
    return pd.DataFrame(map_tasks(probe_one_hook, tasks, shared=shared, name="linear probes"))


def probe_one_hook(task: dict, shared: dict) -> dict:
    """One task of :func:`probe_hooks` (a layer of the grid): the real and the control probe at one hook."""
    X, labels, cv, seed = shared["activations"][task["hook"]], shared["labels"], task["cv"], task["seed"]
    real = _cross_validated(X, labels, cv, seed, task["C"], task["max_iter"])
    fake = _cross_validated(X, shared["control"], cv, seed, task["C"], task["max_iter"])
    _, counts = np.unique(labels, return_counts=True)
    return {"hook": task["hook"], "accuracy": real.mean(), "accuracy_std": real.std(ddof=1),
            "control_accuracy": fake.mean(), "control_std": fake.std(ddof=1),
            "selectivity": real.mean() - fake.mean(), "chance": counts.max() / counts.sum(),
            "n_examples": len(labels), "n_classes": len(counts), "cv": cv}
