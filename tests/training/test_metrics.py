"""Table 2 metrics against hand-computed values, ties, and one-class edge cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from napari_elnet.common.errors import ConfigurationError
from napari_elnet.training.metrics import (
    average_ranks,
    binary_metrics,
    confusion,
    mcc,
    mean_and_sd,
    roc_auc,
)


def test_confusion_counts() -> None:
    assert confusion([1, 1, 1, 0, 0, 0, 0], [1, 1, 0, 0, 0, 1, 0]) == (2, 1, 3, 1)


def test_binary_metrics_hand_computed() -> None:
    # tp=2 fp=1 tn=3 fn=1 at threshold 0.5
    labels = [1, 1, 1, 0, 0, 0, 0]
    probs = [0.9, 0.6, 0.3, 0.1, 0.2, 0.7, 0.4]
    m = binary_metrics(labels, probs)
    assert m["accuracy"] == pytest.approx(5 / 7)
    assert m["sensitivity"] == pytest.approx(2 / 3)
    assert m["specificity"] == pytest.approx(3 / 4)
    assert m["mcc"] == pytest.approx((2 * 3 - 1 * 1) / math.sqrt(3 * 3 * 4 * 4))
    # positive scores 0.9, 0.6, 0.3 vs negatives 0.1, 0.2, 0.7, 0.4: pairs won 4 + 3 + 2 = 9 of 12
    assert m["roc_auc"] == pytest.approx(9 / 12)
    assert m["n"] == 7.0


def test_threshold_is_inclusive() -> None:
    m = binary_metrics([1, 0], [0.5, 0.49])
    assert m["sensitivity"] == 1.0
    assert m["specificity"] == 1.0


def test_roc_auc_ties_count_half() -> None:
    assert roc_auc([1, 0], [0.5, 0.5]) == 0.5
    # positives 0.8, 0.5; negatives 0.5, 0.2: wins 2 + (0.5 + 1) = 3.5 of 4
    assert roc_auc([1, 1, 0, 0], [0.8, 0.5, 0.5, 0.2]) == pytest.approx(3.5 / 4)
    assert roc_auc([0, 1], [0.9, 0.1]) == 0.0


def test_average_ranks_share_ties() -> None:
    np.testing.assert_allclose(average_ranks(np.array([3.0, 1.0, 3.0, 2.0])), [3.5, 1, 3.5, 2])


def test_one_class_gives_nan_without_error() -> None:
    m = binary_metrics([1, 1, 1], [0.9, 0.2, 0.7])
    assert math.isnan(m["roc_auc"])
    assert math.isnan(m["specificity"])
    assert math.isnan(m["mcc"])
    assert m["sensitivity"] == pytest.approx(2 / 3)
    assert m["accuracy"] == pytest.approx(2 / 3)


def test_empty_set_is_nan() -> None:
    m = binary_metrics([], [])
    assert math.isnan(m["accuracy"]) and math.isnan(m["roc_auc"])
    assert m["n"] == 0.0


def test_mcc_constant_prediction_is_zero() -> None:
    assert mcc(tp=3, fp=2, tn=0, fn=0) == 0.0
    assert mcc(tp=2, fp=0, tn=2, fn=0) == 1.0
    assert mcc(tp=0, fp=2, tn=0, fn=2) == -1.0


def test_bad_labels_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="labels must be 0 or 1"):
        binary_metrics([0, 2], [0.1, 0.2])
    with pytest.raises(ConfigurationError, match="2 labels but 3 scores"):
        roc_auc([0, 1], [0.1, 0.2, 0.3])


def test_mean_and_sd_skips_nan() -> None:
    records = [
        {"accuracy": 0.5, "sensitivity": 1.0, "specificity": 0.0, "roc_auc": 0.6, "mcc": math.nan},
        {"accuracy": 1.0, "sensitivity": 1.0, "specificity": 1.0, "roc_auc": 0.8, "mcc": 0.5},
    ]
    summary = mean_and_sd(records)
    assert summary["accuracy"] == pytest.approx((0.75, math.sqrt(0.125)))
    assert summary["roc_auc"] == pytest.approx((0.7, math.sqrt(0.02)))
    assert summary["mcc"] == (0.5, 0.0)
