"""Detection metrics, written out so that they can be checked by hand and bootstrapped fast.

Convention: ``labels`` are 1 for a wrong translation (what a detector should flag) and 0 for a right one;
``scores`` are "how suspicious" (higher = more likely wrong), e.g. the negated cosine similarity.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _as_arrays(labels, scores) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(labels, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float64)
    if labels.shape != scores.shape or labels.ndim != 1:
        raise ValueError(f"labels {labels.shape} and scores {scores.shape} must be 1-d and of equal length")
    return labels, scores


def roc_auc(labels, scores) -> float:
    """P(score of a random wrong pair > score of a random right pair), ties counting one half (Mann-Whitney)."""
    labels, scores = _as_arrays(labels, scores)
    positives, negatives = int(labels.sum()), int((1 - labels).sum())
    if positives == 0 or negatives == 0:
        return float("nan")
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    # Mid-ranks: tied scores share the mean of the ranks they occupy.
    ends = np.cumsum(counts)
    ranks = (ends - (counts - 1) / 2.0)[inverse]
    return float((ranks[labels == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def average_precision(labels, scores, weights=None) -> float | np.ndarray:
    """Average precision: the mean, over wrong pairs, of the precision at the threshold that first flags
    them (tied scores are flagged together, as in scikit-learn). ``weights`` (n,) or (B, n) gives weighted
    (bootstrap) versions, one per row."""
    labels, scores = _as_arrays(labels, scores)
    order = np.argsort(-scores, kind="stable")
    labels, scores = labels[order], scores[order]
    # The last index of every block of tied scores: precision is read there.
    last_of_block = np.r_[scores[1:] != scores[:-1], True]
    if weights is None:
        w = np.ones((1, len(labels)))
    else:
        w = np.atleast_2d(np.asarray(weights, dtype=np.float64))[:, order]
    true_positives = np.cumsum(w * labels, axis=1)[:, last_of_block]
    flagged = np.cumsum(w, axis=1)[:, last_of_block]
    total = true_positives[:, -1]
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(flagged > 0, true_positives / flagged, 0.0)
        recall_step = np.diff(true_positives, axis=1, prepend=0.0)
        result = (recall_step * precision).sum(axis=1) / total
    result = np.where(total > 0, result, np.nan)
    return float(result[0]) if weights is None or np.ndim(weights) == 1 else result


@dataclass(frozen=True)
class Confusion:
    """Counts of a binary decision (flagged = predicted wrong)."""

    tp: int
    fp: int
    fn: int
    tn: int

    @classmethod
    def of(cls, labels, flagged) -> Confusion:
        labels = np.asarray(labels, dtype=bool)
        flagged = np.asarray(flagged, dtype=bool)
        return cls(
            int((labels & flagged).sum()),
            int((~labels & flagged).sum()),
            int((labels & ~flagged).sum()),
            int((~labels & ~flagged).sum()),
        )

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        return 2 * self.tp / (2 * self.tp + self.fp + self.fn) if self.tp else 0.0

    @property
    def mcc(self) -> float:
        """Matthews correlation coefficient; 0 when a row or column of the table is empty."""
        tp, fp, fn, tn = self.tp, self.fp, self.fn, self.tn
        denominator = float(tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)
        return (tp * tn - fp * fn) / np.sqrt(denominator) if denominator else 0.0


def best_threshold(labels, scores) -> float:
    """The score threshold (flag when score >= threshold) with the highest F1 on these pairs.

    It is set half-way between the last flagged score and the next lower one, so that it generalises
    to unseen scores rather than sitting exactly on a dev pair.
    """
    labels, scores = _as_arrays(labels, scores)
    if labels.sum() == 0:
        raise ValueError("choosing a threshold needs at least one wrong pair")
    order = np.argsort(-scores, kind="stable")
    sorted_labels, sorted_scores = labels[order], scores[order]
    last_of_block = np.r_[sorted_scores[1:] != sorted_scores[:-1], True]
    true_positives = np.cumsum(sorted_labels)[last_of_block]
    flagged = np.cumsum(np.ones_like(sorted_labels))[last_of_block]
    f1 = 2 * true_positives / (flagged + labels.sum())
    best = int(np.argmax(f1))
    block_scores = sorted_scores[last_of_block]
    if best + 1 < len(block_scores):
        return float((block_scores[best] + block_scores[best + 1]) / 2)
    return float(block_scores[best])


def bootstrap_weights(groups, samples: int, seed: int = 0) -> np.ndarray:
    """(samples, n) multiplicities of a cluster bootstrap: whole groups (e.g. all pairs of one source
    string) are drawn with replacement, since pairs of one group are not independent."""
    _, group_index = np.unique(np.asarray(groups), return_inverse=True)
    num_groups = int(group_index.max()) + 1 if len(group_index) else 0
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, num_groups, size=(samples, num_groups))
    counts = np.zeros((samples, num_groups))
    np.add.at(counts, (np.arange(samples)[:, None], draws), 1.0)
    return counts[:, group_index]


def interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """The percentile interval of bootstrap replicates, NaNs dropped."""
    values = np.asarray(values, dtype=np.float64)
    values = values[~np.isnan(values)]
    if not len(values):
        return float("nan"), float("nan")
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)
