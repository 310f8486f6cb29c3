r"""The book's one rule for "real or noise": a paired bootstrap over test items and seeds.

A difference between two runs, ``A - B``, moves for two reasons: the test set is a sample (other
test items would give other scores) and training is random (other seeds would give other
models). :func:`compare` resamples both at once. In each of ``n_boot`` replicates it draws the
test items with replacement, the *same* items for A and B (paired: both are scored on one test
set), and the seeds with replacement (each side its own seeds, or the same seeds for both when
seed ``s`` gave both runs the same training draw: ``paired_seeds``), and recomputes

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

__all__ = ["Comparison", "compare", "compare_runs", "Estimate", "estimate", "estimate_run", "accuracy", "spearman", "sts_average"]


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
        plural = "s" if max(self.seeds) > 1 else ""
        seeds = (f"{self.seeds[0]} seed{plural}" if self.seeds[0] == self.seeds[1]
                 else f"{self.seeds[0]} and {self.seeds[1]} seeds")
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


def sts_average(similarities: np.ndarray, labels: np.ndarray) -> float:
    """The STS average: Spearman x 100 within each task, averaged over tasks.

    ``labels`` is ``(items, 2)``: the gold score and the task's index, so that a bootstrap
    resample of pairs keeps each pair in its task (see :func:`contrastive_tutorial.evaluate.sts_pairs`).
    """
    gold, task = labels[:, 0], labels[:, 1]
    return float(np.mean([spearman(similarities[task == t], gold[task == t]) for t in np.unique(task)]))


def _runs(runs, name: str) -> np.ndarray:
    array = np.asarray(runs)
    if array.dtype.kind not in "iu":  # class indices stay integers; anything else is a real number
        try:
            array = array.astype(np.float64)
        except (TypeError, ValueError) as error:
            raise TypeError(f"{name} must hold numbers (classes or scores), got dtype {array.dtype}") from error
    if array.ndim == 1:
        array = array[None]
    if array.ndim != 2 or array.shape[1] < 2:
        raise ValueError(f"{name} must be (seeds, items) or (items,) with at least 2 items, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} holds NaN or inf")
    return array


def _check(sides: list[np.ndarray], labels, level: float, n_boot: int) -> np.ndarray:
    labels = np.asarray(labels.detach().cpu() if hasattr(labels, "detach") else labels)
    if len({side.shape[1] for side in sides}) != 1 or labels.ndim == 0 or len(labels) != sides[0].shape[1]:
        items = " and ".join(str(side.shape[1]) for side in sides)
        raise ValueError(f"the runs and labels must cover the same items: got {items} items and labels of "
                         f"shape {labels.shape}")
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    if n_boot < 100:
        raise ValueError(f"n_boot must be at least 100, got {n_boot}")
    return labels


def _draws(rng: np.random.Generator, sides: list[np.ndarray], items: int, paired: bool):
    """One replicate's resampled items and, for each side, its resampled seed rows."""
    idx = rng.integers(0, items, items)
    shared = rng.integers(0, len(sides[0]), len(sides[0])) if paired and len(sides[0]) > 1 else None
    seeds = []
    for side in sides:
        if shared is not None:
            seeds.append(shared)
        else:
            seeds.append(rng.integers(0, len(side), len(side)) if len(side) > 1 else np.zeros(1, dtype=int))
    return idx, seeds


def _bootstrap(sides: list[np.ndarray], labels: np.ndarray, metric, n_boot: int, seed: int, paired: bool = False):
    """Each side's observed score (mean over its seeds) and ``(n_boot, sides)`` replicates:
    the same resampled items for every side; the seeds resampled for each side on its own, or,
    ``paired``, the same seed rows for every side (row ``s`` of each side is seed ``s``).

    The book's metrics (:func:`accuracy`, :func:`spearman`, :func:`sts_average`) score a block of
    replicates at once from how often each item was drawn (:data:`_BY_COUNTS`); the numbers are
    those of scoring each resample on its own, which any other metric does."""
    rng = np.random.default_rng(seed)
    items = len(labels)

    def score(side: np.ndarray, idx: np.ndarray, seeds: np.ndarray) -> float:
        return float(np.mean([metric(side[s, idx], labels[idx]) for s in seeds]))

    observed = [score(side, np.arange(items), np.arange(len(side))) for side in sides]
    replicates = np.empty((n_boot, len(sides)))
    by_counts = _BY_COUNTS.get(metric)
    block = max(1, min(n_boot, 4_000_000 // max(items, 1)))  # replicates drawn (and held) at a time
    for first in range(0, n_boot, block):
        draws = [_draws(rng, sides, items, paired) for _ in range(min(block, n_boot - first))]
        rows = slice(first, first + len(draws))
        if by_counts is None:
            replicates[rows] = [[score(side, idx, seeds[j]) for j, side in enumerate(sides)] for idx, seeds in draws]
            continue
        offsets = np.arange(len(draws))[:, None] * items
        counts = np.bincount((np.stack([idx for idx, _ in draws]) + offsets).ravel(),
                             minlength=len(draws) * items).reshape(len(draws), items)
        scorer = by_counts(labels, counts)
        for j, side in enumerate(sides):
            per_seed = np.stack([scorer(side[s]) for s in range(len(side))], axis=1)
            picked = np.stack([seeds[j] for _, seeds in draws])  # (replicates, seeds drawn)
            replicates[rows, j] = np.take_along_axis(per_seed, picked, axis=1).mean(axis=1)
    return observed, replicates


def _ranks_by_counts(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Average ranks (ties shared, as in :func:`spearman`) of the items of a resample that holds
    item ``i`` ``counts[i, r]`` times, for each column ``r``: ``(items, replicates)``."""
    order = np.argsort(values, kind="stable")
    new_value = np.r_[True, values[order][1:] != values[order][:-1]]
    group = np.empty(len(values), dtype=np.intp)
    group[order] = np.cumsum(new_value) - 1
    in_group = np.add.reduceat(counts[order], np.flatnonzero(new_value), axis=0).astype(np.float64)
    # a group of G equal values fills the positions (c - G + 1) .. c, where c counts it and all below
    return (np.cumsum(in_group, axis=0) - (in_group - 1) / 2)[group]


def _spearman_scorer(labels: np.ndarray, counts: np.ndarray):
    """``score(predictions)``: :func:`spearman` of each resample that ``counts`` describes (rows of
    item multiplicities); the labels' ranks are computed once for every run scored on the block."""
    items_first = np.ascontiguousarray(counts.T)  # (items, replicates): rows gather fast
    weight = items_first.astype(np.float64)
    total = np.maximum(weight.sum(axis=0), 1)

    def centred_ranks(values: np.ndarray) -> np.ndarray:
        ranks = _ranks_by_counts(np.asarray(values, dtype=np.float64), items_first)
        return ranks - (weight * ranks).sum(axis=0) / total

    b = centred_ranks(labels)
    bb = (weight * b * b).sum(axis=0)

    def score(predictions: np.ndarray) -> np.ndarray:
        a = centred_ranks(predictions)
        denominator = np.sqrt((weight * a * a).sum(axis=0) * bb)
        safe = np.where(denominator > 0, denominator, 1.0)
        return np.where(denominator > 0, 100.0 * (weight * a * b).sum(axis=0) / safe, 0.0)

    return score


def _sts_average_scorer(labels: np.ndarray, counts: np.ndarray):
    """``score(similarities)``: :func:`sts_average` of each resample, over the tasks it holds."""
    gold, task = labels[:, 0], labels[:, 1]
    tasks = [task == t for t in np.unique(task)]
    scorers = [_spearman_scorer(gold[mine], counts[:, mine]) for mine in tasks]
    present = np.stack([counts[:, mine].sum(axis=1) > 0 for mine in tasks], axis=1)

    def score(similarities: np.ndarray) -> np.ndarray:
        scores = np.stack([scorer(similarities[mine]) for scorer, mine in zip(scorers, tasks)], axis=1)
        return (scores * present).sum(axis=1) / present.sum(axis=1)

    return score


def _accuracy_scorer(labels: np.ndarray, counts: np.ndarray):
    """``score(predictions)``: :func:`accuracy` of each resample."""
    drawn = counts.sum(axis=1)
    return lambda predictions: 100.0 * (counts * (predictions == labels)).sum(axis=1) / drawn


# the book's metrics, scored for a block of replicates at once: ``_BY_COUNTS[metric](labels, counts)(outputs)``
_BY_COUNTS = {accuracy: _accuracy_scorer, spearman: _spearman_scorer, sts_average: _sts_average_scorer}


def _interval(values: np.ndarray, level: float) -> tuple[float, float]:
    tail = (1 - level) / 2
    low, high = np.quantile(values, [tail, 1 - tail])
    return float(low), float(high)


def compare(
    a: Sequence | np.ndarray,
    b: Sequence | np.ndarray,
    labels: Sequence | np.ndarray,
    metric: Callable[[np.ndarray, np.ndarray], float] = accuracy,
    *,
    names: tuple[str, str] = ("A", "B"),
    paired_seeds: bool = False,
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> Comparison:
    """Paired bootstrap of ``metric(A) - metric(B)`` over test items and seeds (module docstring).

    Args:
        a, b: per-item outputs of each run, ``(seeds, items)`` (or ``(items,)`` for one seed):
            predicted classes for :func:`accuracy`, predicted similarities for :func:`spearman`.
            Both sides are scored on the same items; their seed counts may differ.
        labels: ``(items, ...)`` gold labels or scores, one row per item (a tensor is moved to numpy).
        metric: ``metric(outputs, labels) -> float`` on one run's items.
        names: what to call A and B in the printed verdict.
        paired_seeds: row ``s`` of ``a`` and of ``b`` share seed ``s`` (the same training draw, the
            same initialisation): resample seeds as pairs, so that what the seed does to both runs
            alike (an easy or a hard few-shot draw) cancels in the difference.
    """
    a, b = _runs(a, "a"), _runs(b, "b")
    labels = _check([a, b], labels, level, n_boot)
    if paired_seeds and len(a) != len(b):
        raise ValueError(f"paired_seeds needs the same seeds on both sides, got {len(a)} and {len(b)}")
    (score_a, score_b), replicates = _bootstrap([a, b], labels, metric, n_boot, seed, paired_seeds)
    low, high = _interval(replicates[:, 0] - replicates[:, 1], level)
    return Comparison(names[0], names[1], score_a - score_b, low, high, level, len(labels), (len(a), len(b)))


@dataclass(frozen=True)
class Estimate:
    """One run's score (mean over its seeds) with its bootstrap interval over test items and seeds."""

    value: float
    low: float
    high: float
    level: float
    items: int
    seeds: int

    def __str__(self) -> str:
        return (f"{self.value:.2f} [{self.low:.2f}, {self.high:.2f}] ({100 * self.level:.0f} %, {self.items} items, "
                f"{self.seeds} seed{'s' if self.seeds > 1 else ''})")


def estimate(
    runs: Sequence | np.ndarray,
    labels: Sequence | np.ndarray,
    metric: Callable[[np.ndarray, np.ndarray], float] = accuracy,
    *,
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> Estimate:
    """``metric`` of one run, ``(seeds, items)`` outputs, with the interval :func:`compare` would give it
    (items and seeds resampled together): what the Results page records beside each number."""
    runs = _runs(runs, "runs")
    labels = _check([runs], labels, level, n_boot)
    (value,), replicates = _bootstrap([runs], labels, metric, n_boot, seed)
    return Estimate(value, *_interval(replicates[:, 0], level), level, len(labels), len(runs))


def _stacked(table, name: str, column: str, by: str) -> tuple[np.ndarray, list | None]:
    """``(seeds, items)``: the ``column`` predictions of the rows whose ``by`` is ``name``, in seed
    order, and the seeds (``None`` when the table has no ``seed`` column)."""
    import pandas as pd

    table = pd.DataFrame(table)
    for needed in (by, "predictions"):
        if needed not in table.columns:
            raise ValueError(f"table needs a {needed!r} column, got columns {list(table.columns)}")
    selected = table.loc[table[by] == name]
    if selected.empty:
        raise ValueError(f"no run called {name!r} in column {by!r}; runs: {sorted(map(str, table[by].unique()))}")
    seeds = None
    if "seed" in selected.columns:
        selected = selected.sort_values("seed", kind="stable")
        seeds = selected["seed"].tolist()
    rows = selected["predictions"]
    if any(column not in p for p in rows):
        raise ValueError(f"run {name!r} has no {column!r} predictions")
    return np.stack([np.asarray(p[column]) for p in rows]), seeds


def compare_runs(
    table,
    a: str,
    b: str,
    labels,
    column: str = "linear_probe",
    *,
    by: str = "run",
    metric: Callable[[np.ndarray, np.ndarray], float] = accuracy,
    **options,
) -> Comparison:
    """:func:`compare` of the runs called ``a`` and ``b`` in a table of per-seed rows.

    ``table`` is a ``pandas.DataFrame`` (or a list of dicts) with a ``by`` column naming the run
    and a ``predictions`` column of ``{column: per-item outputs}``, one row per seed, as the
    chapters build from :class:`~contrastive_tutorial.methods.simclr.EncoderScores`. With a
    ``seed`` column and the same seeds on both sides, the seeds are resampled as pairs
    (``paired_seeds``). The verdict calls the runs ``a`` and ``b`` unless ``names`` is given.
    """
    (a_runs, a_seeds), (b_runs, b_seeds) = _stacked(table, a, column, by), _stacked(table, b, column, by)
    names = options.pop("names", (str(a), str(b)))
    paired = a_seeds is not None and a_seeds == b_seeds and len(set(a_seeds)) == len(a_seeds)
    return compare(a_runs, b_runs, labels, metric, names=names, paired_seeds=paired, **options)


def estimate_run(table, name: str, labels, column: str = "linear_probe", *, by: str = "run",
                 metric: Callable[[np.ndarray, np.ndarray], float] = accuracy, **options) -> Estimate:
    """:func:`estimate` of the run called ``name`` in a table of per-seed rows (see :func:`compare_runs`)."""
    return estimate(_stacked(table, name, column, by)[0], labels, metric, **options)
