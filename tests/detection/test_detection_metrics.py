"""The metrics against values worked out by hand (and against scikit-learn where it has the same metric)."""

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from st_generalized_pooling.detection.metrics import (
    Confusion,
    average_precision,
    best_threshold,
    bootstrap_weights,
    interval,
    roc_auc,
)

LABELS = [1, 0, 1, 0]
SCORES = [0.9, 0.8, 0.7, 0.1]


def test_roc_auc_counts_ordered_pairs_of_wrong_over_right():
    # wrong 0.9 beats both right pairs; wrong 0.7 beats 0.1 only: 3 of 4.
    assert roc_auc(LABELS, SCORES) == pytest.approx(0.75)


def test_roc_auc_ties_count_one_half():
    assert roc_auc([1, 0, 1], [0.5, 0.5, 0.2]) == pytest.approx(0.25)
    assert roc_auc([1, 0], [3.0, 3.0]) == pytest.approx(0.5)


def test_average_precision_is_mean_precision_at_each_wrong_pair():
    # precisions at the two wrong pairs: 1/1 and 2/3.
    assert average_precision(LABELS, SCORES) == pytest.approx((1 + 2 / 3) / 2)


def test_average_precision_flags_tied_scores_together():
    # 0.9 and 0.8 tie: both flagged at once, precision 1/2, then the second wrong at 2/3.
    assert average_precision([1, 0, 1, 0], [0.9, 0.9, 0.7, 0.1]) == pytest.approx((0.5 + 2 / 3) / 2)


def test_metrics_agree_with_scikit_learn_on_random_data():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 500)
    scores = np.round(rng.normal(size=500) + labels, 1)  # rounded: many ties
    assert roc_auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores))
    assert average_precision(labels, scores) == pytest.approx(average_precision_score(labels, scores))


def test_weighted_average_precision_equals_repeating_pairs():
    weights = np.array([2, 1, 0, 1])  # pair 0 twice, pair 2 dropped
    repeated = average_precision([1, 1, 0, 0], [0.9, 0.9, 0.8, 0.1])
    assert average_precision(LABELS, SCORES, weights) == pytest.approx(repeated)
    rows = average_precision(LABELS, SCORES, np.stack([weights, np.ones(4)]))
    assert rows == pytest.approx([repeated, average_precision(LABELS, SCORES)])


def test_confusion_f1_and_mcc_by_hand():
    # labels 1 1 1 0 0 0, flagged 1 1 0 1 0 0: tp 2, fn 1, fp 1, tn 2.
    confusion = Confusion.of([1, 1, 1, 0, 0, 0], [1, 1, 0, 1, 0, 0])
    assert (confusion.tp, confusion.fp, confusion.fn, confusion.tn) == (2, 1, 1, 2)
    assert confusion.precision == pytest.approx(2 / 3)
    assert confusion.f1 == pytest.approx(2 / 3)
    assert confusion.mcc == pytest.approx((2 * 2 - 1 * 1) / 9)  # sqrt(3*3*3*3) = 9
    assert Confusion.of([0, 0], [0, 0]).mcc == 0.0 and Confusion.of([0, 0], [0, 0]).f1 == 0.0


def test_best_threshold_maximises_f1_half_way_between_scores():
    # Flagging >= 0.9 gives F1 2/3, >= 0.7 gives 4/5, >= 0.1 gives 2/3: the cut goes between 0.7 and 0.1.
    assert best_threshold(LABELS, SCORES) == pytest.approx(0.4)
    with pytest.raises(ValueError):
        best_threshold([0, 0], [0.1, 0.2])


def test_cluster_bootstrap_draws_whole_groups():
    groups = ["a", "a", "b", "c", "c", "c"]
    weights = bootstrap_weights(groups, samples=200, seed=1)
    assert weights.shape == (200, 6)
    assert (weights[:, 0] == weights[:, 1]).all() and (weights[:, 3] == weights[:, 5]).all()
    assert (weights[:, [0, 2, 3]].sum(axis=1) == 3).all()  # three groups drawn each time


def test_interval_is_the_central_percentile_range():
    low, high = interval(np.r_[np.arange(1, 101, dtype=float), np.nan])
    assert low == pytest.approx(3.475) and high == pytest.approx(97.525)
