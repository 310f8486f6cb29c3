r"""The book's one rule for "real or noise": a paired bootstrap over test items and seeds.

A difference between two runs, ``A - B``, moves for two reasons: the test set is a sample (other
test items would give other scores) and training is random (other seeds would give other
models). :func:`compare` resamples both at once. In each of ``n_boot`` replicates it draws the
test items with replacement, the *same* items for A and B (paired: both are scored on one test
set), and the seeds with replacement, each side its own seeds, and recomputes

.. math::
    \Delta^{*} = \frac{1}{S_A}\sum_{s} m(A_{s^*}, y^*) - \frac{1}{S_B}\sum_{s} m(B_{s^*}, y^*),

where :math:`m` is the metric (accuracy, Spearman, ...) computed on the resampled items. The
interval is the percentile interval of :math:`\Delta^{*}` (95 % by default); the verdict says
"within noise" when it contains 0. With one seed only the items are resampled, and the verdict
says so: seed-to-seed variation is then not part of the interval.

Every chapter decides its comparisons with this rule and prints the :class:`Comparison`
(``A - B = +1.2 [-0.3, 2.6] (95 %, 400 items, 3 seeds): within noise``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["Comparison", "compare", "accuracy", "spearman"]


@dataclass(frozen=True)
class Comparison:
    """``A - B`` on the test set, its bootstrap interval, and what the rule concludes."""

    a: str
    b: str
    difference: float
    low: float
    high: float
    level: float
    items: int
    seeds: tuple[int, int]

    @property
    def real(self) -> bool:
        """The interval excludes 0: the difference is larger than the noise."""
        return self.low > 0 or self.high < 0

    @property
    def verdict(self) -> str:
        if not self.real:
            return "within noise"
        return f"{self.a} is {'better' if self.difference > 0 else 'worse'}, beyond the noise"

    def __str__(self) -> str:
        seeds = f"{self.seeds[0]} seeds" if self.seeds[0] == self.seeds[1] else f"{self.seeds[0]} and {self.seeds[1]} seeds"
        caveat = "" if min(self.seeds) > 1 else "; one seed: the interval covers the test items only"
        return (f"{self.a} - {self.b} = {self.difference:+.2f} [{self.low:+.2f}, {self.high:+.2f}] "
                f"({100 * self.level:.0f} %, {self.items} items, {seeds}{caveat}): {self.verdict}")


def accuracy(predictions: np.ndarray, labels: np.ndarray) -> float:
    """Percentage of ``predictions`` equal to ``labels``."""
    return 100.0 * float(np.mean(predictions == labels))


def spearman(predictions: np.ndarray, labels: np.ndarray) -> float:
    """Spearman's rank correlation x 100 (ties get average ranks), as the STS evaluation reports it."""
    from scipy.stats import rankdata

    a, b = rankdata(predictions), rankdata(labels)
    a, b = a - a.mean(), b - b.mean()
    denominator = np.sqrt((a * a).sum() * (b * b).sum())
    return 100.0 * float((a * b).sum() / denominator) if denominator > 0 else 0.0


def _runs(runs, name: str) -> np.ndarray:
    array = np.asarray(runs, dtype=np.float64)
    if array.ndim == 1:
        array = array[None]
    if array.ndim != 2 or array.shape[1] < 2:
        raise ValueError(f"{name} must be (seeds, items) or (items,) with at least 2 items, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} holds NaN or inf")
    return array


def compare(
    a: Sequence | np.ndarray,
    b: Sequence | np.ndarray,
    labels: Sequence | np.ndarray,
    metric: Callable[[np.ndarray, np.ndarray], float] = accuracy,
    *,
    names: tuple[str, str] = ("A", "B"),
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> Comparison:
    """Paired bootstrap of ``metric(A) - metric(B)`` over test items and seeds (module docstring).

    Args:
        a, b: per-item outputs of each run, ``(seeds, items)`` (or ``(items,)`` for one seed):
            predicted classes for :func:`accuracy`, predicted similarities for :func:`spearman`.
            Both sides are scored on the same items; their seed counts may differ.
        labels: ``(items,)`` gold labels or scores.
        metric: ``metric(outputs, labels) -> float`` on one run's items.
        names: what to call A and B in the printed verdict.
    """
    a, b = _runs(a, "a"), _runs(b, "b")
    labels = np.asarray(labels)
    if a.shape[1] != b.shape[1] or labels.shape != (a.shape[1],):
        raise ValueError(f"a, b and labels must cover the same items: got {a.shape[1]}, {b.shape[1]} and {labels.shape}")
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    if n_boot < 100:
        raise ValueError(f"n_boot must be at least 100, got {n_boot}")
    rng = np.random.default_rng(seed)
    items = a.shape[1]

    def delta(idx: np.ndarray, seeds_a: np.ndarray, seeds_b: np.ndarray) -> float:
        score_a = np.mean([metric(a[s, idx], labels[idx]) for s in seeds_a])
        score_b = np.mean([metric(b[s, idx], labels[idx]) for s in seeds_b])
        return score_a - score_b

    observed = delta(np.arange(items), np.arange(len(a)), np.arange(len(b)))
    replicates = np.empty(n_boot)
    for r in range(n_boot):
        idx = rng.integers(0, items, items)
        seeds_a = rng.integers(0, len(a), len(a)) if len(a) > 1 else np.zeros(1, dtype=int)
        seeds_b = rng.integers(0, len(b), len(b)) if len(b) > 1 else np.zeros(1, dtype=int)
        replicates[r] = delta(idx, seeds_a, seeds_b)
    tail = (1 - level) / 2
    low, high = np.quantile(replicates, [tail, 1 - tail])
    return Comparison(names[0], names[1], float(observed), float(low), float(high), level, items, (len(a), len(b)))
