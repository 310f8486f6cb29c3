"""Evaluation of frozen representations: linear probe and kNN for images, STS for sentences.

A good self-supervised encoder makes classes linearly separable (linear probe) and
puts same-class examples near each other (kNN), without ever seeing a label in training.
A good sentence encoder ranks sentence pairs by cosine similarity the way people rank
them by meaning (STS, Spearman's correlation), with no regressor trained on top.
A good clustering puts each class into its own cluster (clustering accuracy under the best
matching of clusters to classes, and NMI).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from collections.abc import Callable, Sequence

from torch import Tensor, nn

from . import checks
from .train import eval_mode

__all__ = [
    "embed",
    "linear_probe_predictions",
    "linear_probe_accuracy",
    "knn_predictions",
    "knn_accuracy",
    "spearman",
    "mean_cosine",
    "effective_rank",
    "normalised_std",
    "sts_tasks",
    "evaluate_sts",
    "sts_pairs",
    "pairs_table",
    "sts_table",
    "transfer_cv_predictions",
    "transfer_split_predictions",
    "pair_features",
    "clustering_accuracy",
    "nmi",
    "kmeans",
    "kmeans_runs",
]


@torch.no_grad()
def embed(
    encoder: nn.Module, inputs: Tensor, batch_size: int = 512, device: torch.device | str | None = None
) -> Tensor:
    """Run ``encoder`` in eval mode over ``inputs`` in batches; return ``(N, D)`` features on the CPU.

    ``uint8`` images are scaled to [0, 1] first.
    """
    if not isinstance(inputs, Tensor):
        raise TypeError(f"inputs must be a torch tensor, got {type(inputs).__name__}")
    batch_size = checks.count(batch_size, "batch_size")
    device = torch.device(device) if device is not None else next(encoder.parameters()).device
    out = []
    with eval_mode(encoder):
        for start in range(0, len(inputs), batch_size):
            batch = inputs[start : start + batch_size].to(device)
            if batch.dtype == torch.uint8:
                batch = batch.float() / 255
            out.append(encoder(batch).float().cpu())
    return torch.cat(out)


def _check_features(features: Tensor, name: str) -> None:
    """``name`` is the argument's prefix: ``"train"`` checks ``train_features``, ``""`` plain ``features``."""
    arg = f"{name}_features" if name else "features"
    if not isinstance(features, Tensor):
        raise TypeError(f"{arg} must be a torch tensor, got {type(features).__name__}")
    if features.dim() != 2 or features.shape[0] == 0 or features.shape[1] == 0:
        raise ValueError(f"{arg} must have shape (N, D) with N, D >= 1, got {tuple(features.shape)}")
    if not features.is_floating_point() or not torch.isfinite(features).all():
        raise ValueError(f"{arg} must be finite floating-point values (NaN or inf from the encoder?)")


def _check_split(features: Tensor, labels: Tensor, name: str) -> None:
    arg, labels_arg = (f"{name}_features", f"{name}_labels") if name else ("features", "labels")
    if not isinstance(features, Tensor) or not isinstance(labels, Tensor):
        raise TypeError(f"{arg} and {labels_arg} must be torch tensors, got "
                        f"{type(features).__name__} and {type(labels).__name__}")
    _check_features(features, name)
    if labels.shape != (features.shape[0],):
        raise ValueError(
            f"{labels_arg} must have shape ({features.shape[0]},) to match {arg}, got {tuple(labels.shape)}"
        )
    if labels.is_floating_point() or labels.dtype == torch.bool or (labels < 0).any():
        raise TypeError(f"{labels_arg} must hold class indices (non-negative integers), got dtype {labels.dtype}")


def _check_pair(train_features: Tensor, train_labels: Tensor, test_features: Tensor) -> None:
    _check_split(train_features, train_labels, "train")
    _check_features(test_features, "test")
    if train_features.shape[1] != test_features.shape[1]:
        raise ValueError(f"train_features and test_features must have the same D, got {train_features.shape[1]} "
                         f"and {test_features.shape[1]}")


def _check_directions(x: Tensor, name: str) -> None:
    """Cosines need a direction: a row of zeros has none."""
    if (torch.linalg.vector_norm(x.double(), dim=1) == 0).any():
        raise ValueError(f"{name} has rows of zeros, whose cosine similarity is undefined")


def _to_numpy(features: Tensor, labels: Tensor) -> tuple[np.ndarray, np.ndarray]:
    return features.detach().cpu().double().numpy(), labels.detach().cpu().numpy()


def linear_probe_predictions(
    train_features: Tensor, train_labels: Tensor, test_features: Tensor, C: float = 1.0
) -> np.ndarray:
    """The class a logistic regression, trained on frozen standardised features, predicts for each test row.

    Per-item predictions are what :func:`contrastive_tutorial.stats.compare` resamples.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    _check_pair(train_features, train_labels, test_features)
    if len(torch.unique(train_labels)) < 2:
        raise ValueError("train_labels must hold at least 2 classes for a linear probe")
    x_tr, y_tr = _to_numpy(train_features, train_labels)
    probe = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000))
    probe.fit(x_tr, y_tr)
    return probe.predict(test_features.detach().cpu().double().numpy())


def linear_probe_accuracy(
    train_features: Tensor, train_labels: Tensor, test_features: Tensor, test_labels: Tensor, C: float = 1.0
) -> float:
    """Test accuracy of a logistic regression trained on frozen, standardised features."""
    _check_split(test_features, test_labels, "test")
    predictions = linear_probe_predictions(train_features, train_labels, test_features, C)
    return float(np.mean(predictions == test_labels.cpu().numpy()))


def knn_predictions(train_features: Tensor, train_labels: Tensor, test_features: Tensor, k: int = 20) -> np.ndarray:
    """The majority class among each test row's ``k`` most cosine-similar training rows (ties: lowest class)."""
    _check_pair(train_features, train_labels, test_features)
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= len(train_features):
        raise ValueError(f"k must be an integer in [1, {len(train_features)}], got {k!r}")
    _check_directions(train_features, "train_features")
    _check_directions(test_features, "test_features")
    sim = F.normalize(test_features.float(), dim=1) @ F.normalize(train_features.float(), dim=1).T
    neighbours = train_labels[sim.topk(k, dim=1).indices.to(train_labels.device)]
    votes = F.one_hot(neighbours.long(), int(train_labels.max()) + 1).sum(1)
    return votes.argmax(1).cpu().numpy()


def knn_accuracy(
    train_features: Tensor, train_labels: Tensor, test_features: Tensor, test_labels: Tensor, k: int = 20
) -> float:
    """Test accuracy of a majority vote among the ``k`` most cosine-similar training examples."""
    _check_split(test_features, test_labels, "test")
    predictions = knn_predictions(train_features, train_labels, test_features, k)
    return float(np.mean(predictions == test_labels.cpu().numpy()))


# --------------------------------------------------------------------------- STS
Encode = Callable[[list[str]], "Tensor | np.ndarray"]


def spearman(x: Sequence[float] | np.ndarray | Tensor, y: Sequence[float] | np.ndarray | Tensor) -> float:
    """Spearman's rank correlation: Pearson's correlation of the ranks (ties get their mean rank)."""
    from scipy.stats import spearmanr

    x, y = (v.detach().cpu() if isinstance(v, Tensor) else v for v in (x, y))  # a tensor with grad is legal input
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.ndim != 1 or x.shape != y.shape:
        raise ValueError(f"x and y must be 1-D of the same length, got shapes {x.shape} and {y.shape}")
    if len(x) < 2:
        raise ValueError(f"spearman needs at least 2 pairs, got {len(x)}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("x and y must be finite (an encoder returned NaN or inf?)")
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        raise ValueError("spearman is undefined when x or y is constant (a collapsed encoder?)")
    return float(spearmanr(x, y).statistic)


def mean_cosine(x: Tensor) -> float:
    r"""Average cosine similarity of distinct pairs, :math:`\frac{1}{N(N-1)}\sum_{i \ne j} \cos(x_i, x_j)`.

    Near 0 for directions spread over the sphere; near 1 when all vectors crowd into a narrow
    cone (the anisotropy of raw language-model sentence vectors, Ethayarajh 2019).
    """
    if not isinstance(x, Tensor):
        raise TypeError(f"x must be a torch tensor, got {type(x).__name__}")
    if x.dim() != 2 or x.shape[0] < 2 or x.shape[1] < 1:
        raise ValueError(f"x must have shape (N, D) with N >= 2 and D >= 1, got {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError("x holds NaN or inf (from the encoder?)")
    _check_directions(x, "x")
    z = F.normalize(x.double(), dim=1)
    total = z.sum(0)
    n = z.shape[0]
    return float((total @ total - n) / (n * (n - 1)))


def _check_embeddings(z: Tensor, name: str = "z") -> None:
    if not isinstance(z, Tensor) or not z.is_floating_point():
        raise TypeError(f"{name} must be a floating-point torch tensor, got {getattr(z, 'dtype', type(z).__name__)}")
    if z.dim() != 2 or z.shape[0] < 2 or z.shape[1] < 1:
        raise ValueError(f"{name} must have shape (N, D) with N >= 2 and D >= 1, got {tuple(z.shape)}")
    if not torch.isfinite(z).all():
        raise ValueError(f"{name} holds NaN or inf (from the encoder?)")


def effective_rank(z: Tensor, centre: bool = False, eps: float = 1e-7) -> float:
    r"""How many directions carry the embeddings: :math:`\exp\big(-\sum_k p_k \log p_k\big)` with
    :math:`p_k = \sigma_k / \lVert\sigma
Vert_1 + \epsilon` for the singular values :math:`\sigma` of ``z``.

    Between 1 (every row on one line) and :math:`\min(N, D)` (all directions equally used).
    ``centre=False`` is RankMe (Garrido et al. 2023), which reads the embeddings as they are;
    ``centre=True`` subtracts the mean row first (Roy & Vetterli's effective rank of the
    centred matrix), so a shared offset does not count as a direction. Chapter "Beyond negatives".
    """
    _check_embeddings(z)
    x = z.double()
    sigma = torch.linalg.svdvals(x - x.mean(0) if centre else x)
    if sigma.sum() == 0:
        return 1.0  # every row equal (and centred): no direction is used; 1 is the floor
    p = sigma / sigma.sum() + eps
    return float(torch.exp(-(p * p.log()).sum()))


def normalised_std(z: Tensor) -> float:
    r"""Mean over dimensions of the standard deviation, over the rows, of the L2-normalised rows of ``z``.

    0 when every row points the same way (collapse); about :math:`1/\sqrt{D}` for directions
    spread over the sphere. SimSiam's collapse monitor (Chen & He 2021, Figure 2). Chapter
    "Beyond negatives".
    """
    _check_embeddings(z)
    _check_directions(z, "z")
    return float(F.normalize(z.double(), dim=1).std(0).mean())


def sts_tasks(tasks: Sequence[str], split: str = "test", source: str = "auto", max_pairs: int | None = None, seed: int = 0):
    """Load STS ``tasks`` as ``{task: Dataset}``; ``max_pairs`` keeps a fixed random sample of each.

    The quick profile samples pairs to stay within its time budget; its scores are then
    estimates of the full task's (the book prints how many pairs each one used).
    """
    from .data import load_sts

    if isinstance(tasks, str):
        raise ValueError(f"tasks must be a sequence of task names, e.g. [{tasks!r}], got the string {tasks!r}")
    max_pairs = checks.count(max_pairs, "max_pairs", optional=True)
    loaded = {}
    for task in tasks:
        ds = load_sts(task, split=split, source=source)
        if max_pairs is not None and len(ds) > max_pairs:
            rng = np.random.default_rng(seed)
            ds = ds.select(sorted(rng.choice(len(ds), max_pairs, replace=False).tolist()))
        loaded[task] = ds
    return loaded


def _distinct(sentences) -> tuple[list[str], dict[str, int]]:
    """The distinct sentences (to encode each once) and each one's row in that list."""
    unique = sorted(set(sentences))
    return unique, {s: i for i, s in enumerate(unique)}


def _as_matrix(out, n: int) -> Tensor:
    """Check that an encoder returned ``(n, D)`` and return its rows L2-normalised, in float64, on the CPU."""
    vectors = out.detach().cpu() if isinstance(out, Tensor) else torch.as_tensor(np.asarray(out))
    if vectors.dim() != 2 or vectors.shape[0] != n:
        raise ValueError(f"encode must return one row per sentence ({n}), got shape {tuple(vectors.shape)}")
    return F.normalize(vectors.double(), dim=1)


def _pair_cosines(encode: Encode, data: dict) -> dict[str, dict[str, np.ndarray]]:
    """``{representation: {task: cosines}}``, encoding each distinct sentence once.

    ``encode`` returns one matrix, or a dict of matrices (several representations from one
    pass); a single matrix is returned under the key ``None``.
    """
    unique, index = _distinct(s for ds in data.values() for column in ("sentence1", "sentence2") for s in ds[column])
    out = encode(unique)
    outputs = out if isinstance(out, dict) else {None: out}
    cosines: dict = {}
    for name, matrix in outputs.items():
        vectors = _as_matrix(matrix, len(unique))
        cosines[name] = {}
        for task, ds in data.items():
            a = vectors[[index[s] for s in ds["sentence1"]]]
            b = vectors[[index[s] for s in ds["sentence2"]]]
            cosines[name][task] = (a * b).sum(1).numpy()
    return cosines


def _aggregate(cos: np.ndarray, gold: np.ndarray, subsets: list[str] | None, aggregation: str) -> float:
    if aggregation == "all" or subsets is None:
        return spearman(cos, gold)
    names = sorted(set(subsets))
    labels = np.asarray(subsets)
    per = [spearman(cos[labels == n], gold[labels == n]) for n in names]
    if aggregation == "mean":
        return float(np.mean(per))
    sizes = [int((labels == n).sum()) for n in names]
    return float(np.average(per, weights=sizes))


def evaluate_sts(
    encode: Encode,
    tasks: Sequence[str] | dict = ("sts12", "sts13", "sts14", "sts15", "sts16", "stsb", "sickr"),
    *,
    split: str = "test",
    source: str = "auto",
    aggregation: str = "all",
    max_pairs: int | None = None,
    seed: int = 0,
):
    """SentEval-style STS: Spearman x 100 between cosine similarity and gold score, per task.

    ``encode`` is any callable mapping a list of sentences to an ``(N, D)`` array or tensor
    (``TextEncoder.encode``, ``SentenceTransformer.encode``, ...). No regressor is trained.
    ``aggregation`` says how a task made of subsets (STS12-16) is scored: ``all`` pools the
    pairs of every subset (SimCSE's and SBERT's setting), ``mean`` averages the subsets'
    correlations, ``wmean`` weights them by size (tasks without subsets score the same in all
    three). ``tasks`` may also be an already loaded ``{task: Dataset}`` (see :func:`sts_tasks`).

    Returns a ``pandas.DataFrame`` indexed by task plus ``avg`` with columns ``spearman``
    (x 100) and ``pairs``. When ``encode`` returns a dict of matrices (several
    representations from one pass, e.g. ``TextEncoder.encode_poolers``), the result is a
    dict of such tables with the same keys.
    """
    import pandas as pd

    if aggregation not in ("all", "mean", "wmean"):
        raise ValueError(f"aggregation must be 'all', 'mean' or 'wmean', got {aggregation!r}")
    data = tasks if isinstance(tasks, dict) else sts_tasks(tasks, split, source, max_pairs, seed)
    if not data:
        raise ValueError("tasks is empty")
    cosines = _pair_cosines(encode, data)
    tables = {}
    for name, per_task in cosines.items():
        rows = {}
        for task, ds in data.items():
            subsets = ds["subset"] if "subset" in ds.column_names else None
            gold = np.asarray(ds["score"], dtype=np.float64)
            score = _aggregate(per_task[task], gold, subsets, aggregation)
            rows[task] = {"spearman": 100 * score, "pairs": len(ds)}
        table = pd.DataFrame.from_dict(rows, orient="index")
        table.loc["avg"] = {"spearman": table["spearman"].mean(), "pairs": table["pairs"].sum()}
        table["pairs"] = table["pairs"].astype(int)
        tables[name] = table
    return tables[None] if list(tables) == [None] else tables


def sts_pairs(encode: Encode, tasks: Sequence[str] | dict, *, split: str = "test", source: str = "auto",
              max_pairs: int | None = None, seed: int = 0):
    """Per-pair cosines for :func:`contrastive_tutorial.stats.compare`: ``(cosines, labels)``.

    ``cosines`` is ``{representation: (pairs,)}`` over all the tasks' pairs in order (one array
    under ``None`` when ``encode`` returns a single matrix); ``labels`` is ``(pairs, 2)``: each
    pair's gold score and its task's index, what :func:`contrastive_tutorial.stats.sts_average`
    reads. ``stats.sts_average(cosines, labels)`` is :func:`evaluate_sts`'s ``avg`` (pooled
    ``"all"`` aggregation).
    """
    data = tasks if isinstance(tasks, dict) else sts_tasks(tasks, split, source, max_pairs, seed)
    if not data:
        raise ValueError("tasks is empty")
    cosines = _pair_cosines(encode, data)
    gold = np.concatenate([np.asarray(ds["score"], dtype=np.float64) for ds in data.values()])
    task = np.concatenate([np.full(len(ds), i, dtype=np.float64) for i, ds in enumerate(data.values())])
    stacked = {name: np.concatenate([per_task[t] for t in data]) for name, per_task in cosines.items()}
    return (stacked[None] if list(stacked) == [None] else stacked), np.stack([gold, task], 1)


def pairs_table(cosines: np.ndarray, labels: np.ndarray, tasks: Sequence[str]):
    """:func:`evaluate_sts`'s table (pooled ``"all"`` aggregation) from :func:`sts_pairs`' output, so that
    one encoding pass gives both the table and the per-pair cosines that the noise rule resamples."""
    import pandas as pd

    tasks = list(tasks)
    if labels.ndim != 2 or labels.shape[1] != 2 or len(cosines) != len(labels):
        raise ValueError(f"cosines and labels must come from sts_pairs, got shapes {np.shape(cosines)} and {labels.shape}")
    if set(np.unique(labels[:, 1]).astype(int)) - set(range(len(tasks))):
        raise ValueError(f"labels index {int(labels[:, 1].max()) + 1} tasks, got {len(tasks)} names")
    rows = {}
    for i, task in enumerate(tasks):
        mine = labels[:, 1] == i
        rows[task] = {"spearman": 100 * spearman(cosines[mine], labels[mine, 0]), "pairs": int(mine.sum())}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.loc["avg"] = {"spearman": table["spearman"].mean(), "pairs": table["pairs"].sum()}
    table["pairs"] = table["pairs"].astype(int)
    return table


def sts_table(results: dict) -> "pd.DataFrame":
    """One row per model, one column per task plus ``avg``: ``{name: evaluate_sts(...)}`` side by side."""
    import pandas as pd

    return pd.DataFrame({name: table["spearman"] for name, table in results.items()}).T.round(2)


# --------------------------------------------------------------------------- clustering
# --------------------------------------------------------------------------- SentEval's transfer tasks
TRANSFER_CV_C = tuple(2.0**t for t in range(-2, 4))  # SentEval's sklearn grid for cross-validation and dev splits
TRANSFER_TRAIN_C = tuple(2.0**t for t in range(-1, 6))  # and for a train/test split without a dev set


def _logistic(C: float, seed: int):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=C, random_state=seed, max_iter=1000)


def _best_C(x: np.ndarray, y: np.ndarray, grid: Sequence[float], folds: int, seed: int) -> float:
    """The C of ``grid`` with the best mean accuracy over stratified ``folds``-fold cross-validation of (x, y)."""
    from sklearn.model_selection import StratifiedKFold

    splits = list(StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(x, y))
    scores = [np.mean([_logistic(C, seed).fit(x[a], y[a]).score(x[b], y[b]) for a, b in splits]) for C in grid]
    return grid[int(np.argmax(scores))]


def _check_transfer(features: Tensor, labels: Tensor, folds: int, name: str = "") -> tuple[np.ndarray, np.ndarray]:
    _check_split(features, labels, name)
    folds = checks.count(folds, "folds", minimum=2)
    x, y = _to_numpy(features, labels)
    counts = np.unique(y, return_counts=True)[1]
    if len(counts) < 2 or counts.min() < folds:
        raise ValueError(f"labels need at least 2 classes with at least folds={folds} examples each, got counts {counts.tolist()}")
    return x, y


def transfer_cv_predictions(features: Tensor, labels: Tensor, folds: int = 10, seed: int = 1111) -> np.ndarray:
    r"""SentEval's protocol for MR, CR, SUBJ and MPQA: nested cross-validation of a logistic regression
    on frozen sentence vectors. Returns each item's out-of-fold prediction.

    The items are split into ``folds`` stratified folds. For each one, the L2 strength is chosen
    by an inner ``folds``-fold cross-validation of the other folds over SentEval's grid
    :math:`C \in \{2^{-2}, \dots, 2^{3}\}`, a logistic regression with it is fitted on them, and it
    predicts the held-out fold (SentEval's ``InnerKFoldClassifier``, scikit-learn path; its
    accuracy is the mean over folds, which equals the accuracy of these predictions when the folds
    are of equal size). SimCSE's ``test`` mode uses 10 folds, its ``fasttest`` mode 5.
    Per-item predictions are what :func:`contrastive_tutorial.stats.compare` resamples. Chapter "SimCSE".
    """
    from sklearn.model_selection import StratifiedKFold

    x, y = _check_transfer(features, labels, folds)
    predictions = np.empty_like(y)
    for train, test in StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(x, y):
        C = _best_C(x[train], y[train], TRANSFER_CV_C, folds, seed)
        predictions[test] = _logistic(C, seed).fit(x[train], y[train]).predict(x[test])
    return predictions


def transfer_split_predictions(train_features: Tensor, train_labels: Tensor, test_features: Tensor,
                               dev: tuple[Tensor, Tensor] | None = None, folds: int = 10, seed: int = 1111) -> np.ndarray:
    r"""SentEval's protocol for tasks with a fixed test set: predictions of a logistic regression on frozen
    vectors for ``test_features``.

    With a ``dev`` set (SST-2) the L2 strength is the one of :math:`C \in \{2^{-2}, \dots, 2^{3}\}` that
    scores best on it (``SplitClassifier``); without one (TREC, MRPC) it is chosen by ``folds``-fold
    cross-validation of the training set over :math:`C \in \{2^{-1}, \dots, 2^{5}\}` (``KFoldClassifier``).
    Either way the classifier is then fitted on the whole training set. Chapter "SimCSE".
    """
    x, y = _check_transfer(train_features, train_labels, folds, "train")
    _check_features(test_features, "test")
    if test_features.shape[1] != x.shape[1]:
        raise ValueError(f"test_features must have {x.shape[1]} columns like train_features, got {test_features.shape[1]}")
    if dev is None:
        C = _best_C(x, y, TRANSFER_TRAIN_C, folds, seed)
    else:
        if not isinstance(dev, tuple) or len(dev) != 2:
            raise TypeError("dev must be a (features, labels) pair")
        _check_split(*dev, "dev")
        x_dev, y_dev = _to_numpy(*dev)
        C = TRANSFER_CV_C[int(np.argmax([_logistic(C, seed).fit(x, y).score(x_dev, y_dev) for C in TRANSFER_CV_C]))]
    return _logistic(C, seed).fit(x, y).predict(test_features.detach().cpu().double().numpy())


def pair_features(u: Tensor, v: Tensor) -> Tensor:
    r"""SentEval's features of a sentence pair for MRPC: :math:`[\,|u - v|,\; u \odot v\,]`, shape ``(N, 2D)``."""
    if not isinstance(u, Tensor) or u.dim() != 2 or not u.is_floating_point():
        raise ValueError(f"u must be a floating-point (N, D) tensor, got {getattr(u, 'dtype', type(u).__name__)} "
                         f"{tuple(getattr(u, 'shape', ()))}")
    if not isinstance(v, Tensor) or v.shape != u.shape:
        raise ValueError(f"v must have the shape of u {tuple(u.shape)}, got {tuple(getattr(v, 'shape', ()))}")
    return torch.cat([(u - v).abs(), u * v], dim=1)


def _check_labelings(labels_true, labels_pred) -> tuple[np.ndarray, np.ndarray]:
    y, c = np.asarray(labels_true), np.asarray(labels_pred)
    if y.ndim != 1 or y.shape != c.shape:
        raise ValueError(f"labels_true and labels_pred must be 1-D of the same length, got shapes {y.shape} and {c.shape}")
    if len(y) == 0:
        raise ValueError("labels_true is empty")
    for name, v in (("labels_true", y), ("labels_pred", c)):
        if not np.issubdtype(v.dtype, np.integer):
            raise TypeError(f"{name} must hold integer labels, got dtype {v.dtype}")
    return y, c


def clustering_accuracy(labels_true, labels_pred) -> float:
    r"""Unsupervised clustering accuracy: the best one-to-one matching of clusters to classes.

    .. math::
        \mathrm{ACC} = \max_{m} \frac{1}{N} \sum_{i=1}^{N} \mathbb{1}[y_i = m(c_i)]

    over one-to-one maps :math:`m` from clusters to classes, found with the Hungarian
    algorithm (``scipy.optimize.linear_sum_assignment``) on the contingency table. With more
    clusters than classes the unmatched clusters count as errors. Chapter "SCCL".
    """
    from scipy.optimize import linear_sum_assignment

    y, c = _check_labelings(labels_true, labels_pred)
    _, y = np.unique(y, return_inverse=True)
    _, c = np.unique(c, return_inverse=True)
    table = np.zeros((c.max() + 1, y.max() + 1), dtype=np.int64)
    np.add.at(table, (c, y), 1)
    rows, cols = linear_sum_assignment(table, maximize=True)
    return float(table[rows, cols].sum() / len(y))


def nmi(labels_true, labels_pred) -> float:
    r"""Normalised mutual information :math:`I(Y;C) / \tfrac{1}{2}(H(Y) + H(C))` (scikit-learn's default).

    Invariant to renaming the clusters; 1 for a perfect clustering, near 0 for one unrelated
    to the classes. Chapter "SCCL".
    """
    from sklearn.metrics import normalized_mutual_info_score

    y, c = _check_labelings(labels_true, labels_pred)
    return float(normalized_mutual_info_score(y, c))


def kmeans(features: Tensor | np.ndarray, n_clusters: int, seed: int = 0, n_init: int = 10):
    """k-means (scikit-learn) on ``(N, D)`` features: ``(labels (N,), centres (K, D))`` as NumPy arrays."""
    from sklearn.cluster import KMeans

    x = features.detach().cpu().double().numpy() if isinstance(features, Tensor) else np.asarray(features, np.float64)
    if x.ndim != 2:
        raise ValueError(f"features must have shape (N, D), got {x.shape}")
    if isinstance(n_clusters, bool) or not isinstance(n_clusters, (int, np.integer)) or not 1 <= n_clusters <= len(x):
        raise ValueError(f"n_clusters must be an integer in [1, {len(x)}], got {n_clusters!r}")
    model = KMeans(n_clusters=n_clusters, random_state=seed, n_init=n_init).fit(x)
    return model.labels_.astype(np.int64), model.cluster_centers_


def kmeans_runs(features: Tensor | np.ndarray, n_clusters: int, seeds: Sequence[int] = (0, 1, 2)) -> np.ndarray:
    """``(len(seeds), N)`` cluster assignments, one :func:`kmeans` per seed: k-means' own variation,
    which :func:`contrastive_tutorial.stats.compare` then resamples with the items (chapters "SimCSE"
    and "PromptBERT" score their encoders on short-text clustering this way)."""
    if isinstance(seeds, (int, str)) or len(seeds) == 0:
        raise ValueError(f"seeds must be a non-empty sequence of integers, got {seeds!r}")
    return np.stack([kmeans(features, n_clusters, seed=s)[0] for s in seeds])
