"""The noise rule's bootstrap: scoring blocks of replicates from item counts vs one resample at a time.

    python benchmarks/bootstrap_speed.py [--items 4000] [--n-boot 2000] [--repeats 3]

``stats.compare`` scores the book's own metrics (accuracy, Spearman, the STS average) for a block
of replicates at once from how often each item was drawn; any other metric is scored one resample
at a time. Here the same comparison runs both ways (the plain way through a lambda around the
same metric, which the fast path does not recognise) on random data shaped like the chapters':
STS pairs in seven tasks with tied gold scores, two runs of three seeds; predicted classes for
accuracy. The two intervals must agree; the ratio is plain time over block time, in the same run.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from contrastive_tutorial import stats


def _best_of(repeats: int, run) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        out = run()
        best = min(best, time.perf_counter() - start)
    return best, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=4000, help="test items (STS pairs or images)")
    parser.add_argument("--n-boot", type=int, default=2000)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    n = args.items
    task = np.sort(rng.integers(0, 7, n)).astype(float)
    gold = np.round(rng.uniform(0, 5, n) * 5) / 5  # ties, as STS gold scores have
    sts_labels = np.stack([gold, task], axis=1)
    a = gold + rng.normal(0, 2.0, (args.seeds, n))
    b = gold + rng.normal(0, 2.2, (args.seeds, n))
    classes = rng.integers(0, 10, n)
    pa = np.where(rng.random((args.seeds, n)) < 0.6, classes, rng.integers(0, 10, (args.seeds, n)))
    pb = np.where(rng.random((args.seeds, n)) < 0.58, classes, rng.integers(0, 10, (args.seeds, n)))
    cases = [("sts_average", stats.sts_average, a, b, sts_labels), ("spearman", stats.spearman, a, b, gold),
             ("accuracy", stats.accuracy, pa, pb, classes)]
    print(f"{n} items, {args.seeds} seeds a side, {args.n_boot} replicates; best of {args.repeats}")
    print("| metric | one resample at a time | blocks from counts | ratio | intervals agree |")
    print("|---|---|---|---|---|")
    for name, metric, x, y, labels in cases:
        plain_s, plain = _best_of(args.repeats, lambda: stats.compare(x, y, labels, lambda p, q: metric(p, q),
                                                                      n_boot=args.n_boot))
        fast_s, fast = _best_of(args.repeats, lambda: stats.compare(x, y, labels, metric, n_boot=args.n_boot))
        agree = abs(plain.low - fast.low) < 1e-9 and abs(plain.high - fast.high) < 1e-9
        print(f"| {name} | {plain_s * 1000:.0f} ms | {fast_s * 1000:.0f} ms | {plain_s / fast_s:.1f}x | {agree} |")


if __name__ == "__main__":
    main()
