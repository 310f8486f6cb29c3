"""The one rule for noise: a planted difference is found, a null is not (at about the stated rate),
and the interval is the bootstrap written out plainly."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr

from contrastive_tutorial import stats


def _classifier(rng, accuracy, labels):
    right = rng.random(len(labels)) < accuracy
    return np.where(right, labels, (labels + 1) % 4)


def test_a_planted_difference_is_real_and_its_interval_covers_it():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 2000)
    a = np.stack([_classifier(rng, 0.80, labels) for _ in range(3)])
    b = np.stack([_classifier(rng, 0.70, labels) for _ in range(3)])
    result = stats.compare(a, b, labels, names=("new", "old"), n_boot=500)
    assert result.real and result.low < 10 < result.high and result.low > 5
    assert result.verdict == "new is better, beyond the noise"
    assert str(result).startswith("new - old = +") and "3 seeds" in str(result) and "2000 items" in str(result)


def test_a_null_is_within_noise_at_about_the_stated_rate():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 4, 300)
    false_alarms = 0
    for _ in range(40):
        a = np.stack([_classifier(rng, 0.75, labels) for _ in range(2)])
        b = np.stack([_classifier(rng, 0.75, labels) for _ in range(2)])
        false_alarms += stats.compare(a, b, labels, n_boot=300, seed=int(rng.integers(1000))).real
    assert false_alarms <= 6  # 95 % intervals: about 2 in 40 expected


def _plain_bootstrap(a, b, labels, metric, n_boot, level, seed):
    """The same resampling, one replicate at a time, written from its definition."""
    rng = np.random.default_rng(seed)
    n, out = len(labels), []
    for _ in range(n_boot):
        idx = rng.integers(0, n, n)
        sa = rng.integers(0, len(a), len(a)) if len(a) > 1 else [0]
        sb = rng.integers(0, len(b), len(b)) if len(b) > 1 else [0]
        mean_a = sum(metric(np.array([a[s][i] for i in idx]), np.array([labels[i] for i in idx])) for s in sa) / len(sa)
        mean_b = sum(metric(np.array([b[s][i] for i in idx]), np.array([labels[i] for i in idx])) for s in sb) / len(sb)
        out.append(mean_a - mean_b)
    out.sort()
    return np.quantile(out, [(1 - level) / 2, 1 - (1 - level) / 2])


def test_the_interval_is_the_plain_bootstrap_and_spearman_is_scipys():
    rng = np.random.default_rng(2)
    gold = rng.random(60)
    a = gold[None] + 0.3 * rng.standard_normal((2, 60))
    b = gold + 0.6 * rng.standard_normal(60)  # one seed
    result = stats.compare(a, b, gold, stats.spearman, n_boot=200, seed=5)
    low, high = _plain_bootstrap(a, b[None], gold, stats.spearman, 200, 0.95, 5)
    assert (result.low, result.high) == pytest.approx((low, high))
    assert stats.spearman(a[0], gold) == pytest.approx(100 * spearmanr(a[0], gold).statistic)
    assert "2 and 1 seeds" in str(result) and "one seed" in str(result)  # B has no seed spread


def test_one_seed_says_the_interval_covers_items_only():
    labels = np.arange(10) % 2
    result = stats.compare(labels, 1 - labels, labels, n_boot=100)
    assert "one seed" in str(result) and result.difference == 100.0


def test_bad_input_is_named():
    labels = np.zeros(5)
    with pytest.raises(ValueError, match="same items"):
        stats.compare(np.zeros(5), np.zeros(6), labels)
    with pytest.raises(ValueError, match="NaN"):
        stats.compare(np.array([0, np.nan, 0, 0, 0]), np.zeros(5), labels)
    with pytest.raises(ValueError, match="level"):
        stats.compare(np.zeros(5), np.zeros(5), labels, level=1.5)
    with pytest.raises(ValueError, match="n_boot"):
        stats.compare(np.zeros(5), np.zeros(5), labels, n_boot=10)
    with pytest.raises(ValueError, match="at least 2 items"):
        stats.compare(np.zeros((2, 1)), np.zeros((2, 1)), np.zeros(1))


def test_compare_runs_stacks_each_runs_seeds():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 4, 500)
    rows = [{"run": name, "seed": s, "predictions": {"probe": _classifier(rng, acc, labels)}}
            for name, acc in (("good", 0.9), ("bad", 0.6)) for s in range(3)]
    result = stats.compare_runs(rows, "good", "bad", labels, "probe", n_boot=200)
    direct = stats.compare(np.stack([r["predictions"]["probe"] for r in rows[:3]]),
                           np.stack([r["predictions"]["probe"] for r in rows[3:]]), labels, paired_seeds=True,
                           n_boot=200)
    assert result == Comparison_named(direct, "good", "bad") and result.real and "3 seeds" in str(result)
    with pytest.raises(ValueError, match="no run called 'ugly'"):
        stats.compare_runs(rows, "good", "ugly", labels, "probe")
    with pytest.raises(ValueError, match="no 'knn' predictions"):
        stats.compare_runs(rows, "good", "bad", labels, "knn")
    with pytest.raises(ValueError, match="'predictions' column"):
        stats.compare_runs([{"run": "good"}], "good", "bad", labels)


def Comparison_named(c, a, b):
    return stats.Comparison(a, b, c.difference, c.low, c.high, c.level, c.items, c.seeds)


def test_sts_average_keeps_pairs_in_their_task():
    rng = np.random.default_rng(4)
    gold = rng.random(90)
    task = np.repeat([0, 1, 2], 30)
    similarities = gold + rng.standard_normal(90) * np.repeat([0.1, 0.5, 2.0], 30)
    per_task = [100 * spearmanr(similarities[task == t], gold[task == t]).statistic for t in range(3)]
    assert stats.sts_average(similarities, np.stack([gold, task], 1)) == pytest.approx(np.mean(per_task))
    result = stats.compare(similarities, gold, np.stack([gold, task], 1), stats.sts_average, n_boot=200)
    assert result.difference == pytest.approx(np.mean(per_task) - 100) and result.real


def test_paired_seeds_cancel_what_a_seed_does_to_both_runs():
    """Seed s gives both runs the same easy or hard draw (a shift of -15..+15 points); B is 5 points
    worse on every seed. Unpaired, the shift drowns the difference; paired, it cancels."""
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 4, 2000)
    a, b = [], []
    for accuracy in (0.55, 0.70, 0.85):
        a.append(_classifier(rng, accuracy, labels))
        b.append(_classifier(rng, accuracy - 0.05, labels))
    a, b = np.stack(a), np.stack(b)
    unpaired = stats.compare(a, b, labels, n_boot=400)
    paired = stats.compare(a, b, labels, paired_seeds=True, n_boot=400)
    assert not unpaired.real and paired.real and paired.high - paired.low < (unpaired.high - unpaired.low) / 2
    rows = [{"run": name, "seed": s, "predictions": {"c": side[s]}} for name, side in (("a", a), ("b", b))
            for s in (2, 0, 1)]  # out of seed order: compare_runs sorts and pairs them
    assert (stats.compare_runs(rows, "a", "b", labels, "c", n_boot=400).low, ) == pytest.approx((paired.low,))
    with pytest.raises(ValueError, match="paired_seeds needs the same seeds"):
        stats.compare(a, b[:2], labels, paired_seeds=True)


def test_block_scoring_gives_the_numbers_of_scoring_each_resample():
    """The book's metrics score blocks of replicates from item counts (stats._BY_COUNTS); a lambda
    around the same metric takes the plain path, one resample at a time. Ties in the predictions and
    the gold scores, tasks of unequal size, several seeds, paired and unpaired seeds."""
    from contrastive_tutorial import stats

    rng = np.random.default_rng(1)
    n = 120
    task = np.repeat(np.arange(4), [50, 40, 25, 5]).astype(float)
    gold = np.round(rng.uniform(0, 5, n) * 2) / 2
    sts_labels = np.stack([gold, task], axis=1)
    a, b = rng.normal(size=(3, n)), rng.normal(size=(3, n))
    a[:, :20] = 0.5
    classes = rng.integers(0, 3, n)
    cases = [(stats.sts_average, sts_labels, a, b), (stats.spearman, gold, a, b[:2]),
             (stats.accuracy, classes, rng.integers(0, 3, (3, n)), rng.integers(0, 3, (1, n)))]
    for metric, labels, x, y in cases:
        for paired in (False, True):
            if paired and len(x) != len(y):
                continue
            fast = stats._bootstrap([x, y], labels, metric, 300, 0, paired)
            plain = stats._bootstrap([x, y], labels, lambda p, q: metric(p, q), 300, 0, paired)
            assert fast[0] == plain[0]
            np.testing.assert_allclose(fast[1], plain[1], rtol=0, atol=1e-9)
    # a resample that misses a task averages the tasks it holds, as the plain path does
    tiny = np.stack([np.array([1.0, 2.0, 3.0, 1.0]), np.array([0.0, 0.0, 0.0, 1.0])], axis=1)
    counts = np.array([[1, 1, 1, 0], [2, 0, 1, 1]])
    sims = np.array([0.1, 0.3, 0.2, 0.9])
    expected = [stats.sts_average(sims[np.repeat(np.arange(4), c)], tiny[np.repeat(np.arange(4), c)]) for c in counts]
    np.testing.assert_allclose(stats._sts_average_scorer(tiny, counts)(sims), expected, atol=1e-12)


def test_bootstrap_benchmark_runs_and_both_paths_agree():
    """benchmarks/bootstrap_speed.py on a small problem: a row per metric, the two intervals equal."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "bootstrap_speed.py"
    out = subprocess.run([sys.executable, str(script), "--items", "150", "--n-boot", "100", "--repeats", "1"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    rows = [line for line in out.stdout.splitlines() if line.startswith(("| sts_average", "| spearman", "| accuracy"))]
    assert len(rows) == 3 and all(row.rstrip().endswith("| True |") for row in rows), out.stdout
