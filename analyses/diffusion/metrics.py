"""Measurements for the diffusion analysis: diversity, distance to the data mean, prompt
adherence by independent classifiers, and binomial confidence intervals.

Example::

    import torch
    from analyses.diffusion.metrics import mean_pairwise_distance, summarise_adherence

    mean_pairwise_distance(torch.eye(3))      # sqrt(2) = 1.414...
    summarise_adherence([True] * 45 + [False] * 5)["ci_low"]   # 0.786..., Wilson's (interp.intervals)

All image arguments are in the data range [0, 1]; distances are Euclidean in pixel space.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from jaxtyping import Float
from sklearn.linear_model import LogisticRegression
from sklearn.svm import SVC
from torch import Tensor

from interp.intervals import normal_interval, share_interval
from models.data.shapes import ATTRIBUTES


def mean_pairwise_distance(x: Float[Tensor, "batch ..."]) -> float:
    """Mean Euclidean distance over all unordered pairs of rows (0 for fewer than two rows)."""
    flat = x.reshape(x.shape[0], -1).double()
    return float(torch.pdist(flat).mean()) if flat.shape[0] > 1 else 0.0


def describe_samples(
    images: Float[Tensor, "batch channel height width"],
    groups: np.ndarray,
    means: dict,
    correct: np.ndarray | None = None,
) -> pd.DataFrame:
    """One row per group (class or caption): ``diversity`` (mean pairwise distance within
    the group), ``distance_to_mean`` (mean distance of its images to ``means[group]``, a
    [channel height width] image) and, given ``correct`` per image, ``adherence``."""
    rows = []
    for group in pd.unique(groups):
        member = torch.from_numpy(np.asarray(groups == group))
        flat = images[member].reshape(int(member.sum()), -1).double()
        mean = means[group].reshape(1, -1).double()
        row = {"group": group, "n": int(member.sum()), "diversity": mean_pairwise_distance(flat),
               "distance_to_mean": float((flat - mean).norm(dim=1).mean())}
        if correct is not None:
            row["adherence"] = float(np.asarray(correct)[member.numpy()].mean())
        rows.append(row)
    return pd.DataFrame(rows)


def flatten(images: Float[Tensor, "batch channel height width"]) -> np.ndarray:
    return images.reshape(images.shape[0], -1).numpy().astype(np.float64)


def fit_digit_classifier(images: Tensor, labels: Tensor, seed: int = 0) -> tuple[SVC, float]:
    """An RBF support-vector classifier of real digits, independent of the diffusion model;
    fit on a random two thirds, it returns the held-out accuracy on the rest too.
    (gamma = 0.256 on [0, 1] pixels is scikit-learn's digits example's 0.001 on 0..16 pixels.)"""
    order = np.random.default_rng(seed).permutation(images.shape[0])
    cut = 2 * len(order) // 3
    x, y = flatten(images), labels.numpy()
    classifier = SVC(gamma=0.256).fit(x[order[:cut]], y[order[:cut]])
    return classifier, float(classifier.score(x[order[cut:]], y[order[cut:]]))


def fit_shape_classifiers(train_images: Tensor, train_attributes: pd.DataFrame, test_images: Tensor,
                          test_attributes: pd.DataFrame) -> tuple[dict, pd.DataFrame]:
    """One logistic regression per attribute on real shapes; returns them and their held-out accuracy."""
    classifiers, rows = {}, []
    for attribute in ATTRIBUTES:
        classifiers[attribute] = LogisticRegression(max_iter=1000).fit(flatten(train_images), train_attributes[attribute].astype(str))
        accuracy = classifiers[attribute].score(flatten(test_images), test_attributes[attribute].astype(str))
        rows.append({"attribute": attribute, "held_out_accuracy": float(accuracy), "chance": 1 / len(ATTRIBUTES[attribute])})
    return classifiers, pd.DataFrame(rows)


def shape_adherence(classifiers: dict, images: Tensor, attributes: pd.DataFrame) -> pd.DataFrame:
    """Per image, whether each attribute the classifiers read off matches the requested one,
    and ``caption`` (all five match)."""
    x = flatten(images)
    correct = pd.DataFrame({a: classifiers[a].predict(x) == attributes[a].astype(str).to_numpy() for a in ATTRIBUTES})
    correct["caption"] = correct.all(axis=1)
    return correct


def summarise_adherence(correct: np.ndarray) -> dict:
    """Rate, count and 95% Wilson interval of a boolean array."""
    adherence, low, high = share_interval(np.ravel(correct))
    return {"adherence": adherence, "successes": int(np.sum(correct)), "n": int(np.size(correct)), "ci_low": low,
            "ci_high": high}


def mean_with_interval(values: np.ndarray) -> dict:
    """Mean and a normal-approximation 95% interval over groups (e.g. per-class diversities)."""
    mean, low, high = normal_interval(np.asarray(values, dtype=np.float64))
    return {"mean": mean, "low": low, "high": high}


@dataclass(frozen=True)
class Judges:
    """The classifiers, trained on real images only, that judge whether samples follow their condition."""

    digit: SVC  # reads the digit class
    digit_accuracy: float  # its held-out accuracy on real digits
    shapes: dict  # one logistic regression per shape attribute
    shape_accuracy: pd.DataFrame  # attribute, held_out_accuracy


def fit_judges(digits: Tensor, labels: Tensor, n_real: int, seed: int) -> Judges:
    """The digit SVM and the shape-attribute classifiers, on independent real shapes (seeds ``seed + 100``
    for training and ``seed + 101`` for the held-out check, other than the training images')."""
    from models.data.shapes import make_shapes

    digit, digit_accuracy = fit_digit_classifier(digits, labels, seed=seed)
    train_real, test_real = make_shapes(n_real, seed=seed + 100), make_shapes(n_real, seed=seed + 101)
    shapes, shape_accuracy = fit_shape_classifiers(train_real.images, train_real.attributes, test_real.images,
                                                   test_real.attributes)
    return Judges(digit, digit_accuracy, shapes, shape_accuracy)
