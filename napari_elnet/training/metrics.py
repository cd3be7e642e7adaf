"""Binary classification metrics of the paper's Table 2: accuracy, sensitivity, specificity,
ROC-AUC and Matthews correlation coefficient (MCC).

Undefined values are ``nan``, never an exception: sensitivity without positive cases, specificity
without negative cases, ROC-AUC and MCC when the labels hold one class only, and everything for an
empty set. MCC is 0.0 when both classes are present but every prediction is the same class (no
correlation can be measured; the usual convention, e.g. scikit-learn's).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from napari_elnet.common.errors import ConfigurationError

METRIC_NAMES: tuple[str, ...] = ("accuracy", "sensitivity", "specificity", "roc_auc", "mcc")
"""Keys of the metrics in records, JSON and model files, in Table 2's order."""
METRIC_HEADERS: tuple[str, ...] = ("accuracy", "sensitivity", "specificity", "ROC-AUC", "MCC")
"""Column headers of :data:`METRIC_NAMES` in tables, in the same order."""


def _as_labels(labels: Sequence[int] | np.ndarray) -> np.ndarray:
    """Labels as an int array of 0/1; ConfigurationError for anything else."""
    array = np.asarray(labels).ravel()
    if array.size and not np.isin(array, (0, 1)).all():
        raise ConfigurationError(f"labels must be 0 or 1, got values {np.unique(array)[:5]}")
    return array.astype(np.int64)


def confusion(
    labels: Sequence[int] | np.ndarray, predictions: Sequence[int] | np.ndarray
) -> tuple[int, int, int, int]:
    """(tp, fp, tn, fn) of 0/1 predictions against 0/1 labels."""
    y, p = _as_labels(labels), _as_labels(predictions)
    if y.shape != p.shape:
        raise ConfigurationError(f"{y.size} labels but {p.size} predictions")
    tp = int(np.sum((y == 1) & (p == 1)))
    fp = int(np.sum((y == 0) & (p == 1)))
    tn = int(np.sum((y == 0) & (p == 0)))
    fn = int(np.sum((y == 1) & (p == 0)))
    return tp, fp, tn, fn


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else math.nan


def accuracy(tp: int, fp: int, tn: int, fn: int) -> float:
    """(tp + tn) / all; nan for no cases."""
    return _ratio(tp + tn, tp + fp + tn + fn)


def sensitivity(tp: int, fp: int, tn: int, fn: int) -> float:
    """True positive rate tp / (tp + fn); nan without positive cases."""
    return _ratio(tp, tp + fn)


def specificity(tp: int, fp: int, tn: int, fn: int) -> float:
    """True negative rate tn / (tn + fp); nan without negative cases."""
    return _ratio(tn, tn + fp)


def mcc(tp: int, fp: int, tn: int, fn: int) -> float:
    """Matthews correlation coefficient; nan with one label class, 0.0 with one predicted class."""
    if tp + fn == 0 or tn + fp == 0:
        return math.nan
    denominator = math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return (tp * tn - fp * fn) / denominator if denominator else 0.0


def average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks of ``values``, ties sharing the mean of their ranks."""
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    ranks = np.empty(values.size, dtype=np.float64)
    start = 0
    while start < values.size:
        stop = start + 1
        while stop < values.size and sorted_values[stop] == sorted_values[start]:
            stop += 1
        ranks[order[start:stop]] = (start + stop + 1) / 2.0  # mean of ranks start+1 .. stop
        start = stop
    return ranks


def roc_auc(labels: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U / (n_pos n_neg)); ties count one half.

    nan when the labels hold one class only.
    """
    y = _as_labels(labels)
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ConfigurationError(f"{y.size} labels but {s.size} scores")
    positives, negatives = int(y.sum()), int(y.size - y.sum())
    if positives == 0 or negatives == 0:
        return math.nan
    rank_sum = float(average_ranks(s)[y == 1].sum())
    return (rank_sum - positives * (positives + 1) / 2.0) / (positives * negatives)


def binary_metrics(
    labels: Sequence[int] | np.ndarray,
    probabilities: Sequence[float] | np.ndarray,
    threshold: float = 0.5,
) -> dict[str, float]:
    """Table 2 metrics of probabilities thresholded at ``threshold`` (positive when >=), plus ``n``."""
    y = _as_labels(labels)
    p = np.asarray(probabilities, dtype=np.float64).ravel()
    counts = confusion(y, (p >= threshold).astype(np.int64))
    return {
        "accuracy": accuracy(*counts),
        "sensitivity": sensitivity(*counts),
        "specificity": specificity(*counts),
        "roc_auc": roc_auc(y, p),
        "mcc": mcc(*counts),
        "n": float(y.size),
    }


def mean_and_sd(records: Sequence[dict[str, float]]) -> dict[str, tuple[float, float]]:
    """Per metric: mean and sample standard deviation over records, ignoring nan (nan if none)."""
    summary: dict[str, tuple[float, float]] = {}
    for name in METRIC_NAMES:
        values = np.asarray([r[name] for r in records if not math.isnan(r.get(name, math.nan))])
        mean = float(values.mean()) if values.size else math.nan
        sd = float(values.std(ddof=1)) if values.size > 1 else (0.0 if values.size else math.nan)
        summary[name] = (mean, sd)
    return summary
