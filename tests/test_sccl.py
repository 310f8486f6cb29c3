"""SCCL: clustering losses and metrics against loop references, and the SCCL model on a tiny BERT."""

from __future__ import annotations

import copy
import itertools
import math

import numpy as np
import pytest
import torch

from contrastive_tutorial import losses as L
from contrastive_tutorial.encoders import TextEncoder
from contrastive_tutorial.evaluate import clustering_accuracy, kmeans, nmi
from contrastive_tutorial.methods import sccl


# ------------------------------------------------------------------ slow references
def ref_student_t(e, mu, alpha):
    """Zhang et al. (2021) eq. 3, written with loops in float64."""
    q = []
    for j in range(len(e)):
        kernel = [(1 + float(((e[j] - mu[k]) ** 2).sum()) / alpha) ** (-(alpha + 1) / 2) for k in range(len(mu))]
        q.append([v / sum(kernel) for v in kernel])
    return torch.tensor(q, dtype=torch.float64)


def ref_target(q):
    """Eq. 4: p_jk = (q_jk^2 / f_k) / sum_k' (q_jk'^2 / f_k'), f_k = sum_j q_jk."""
    m, k = q.shape
    f = [sum(float(q[j, c]) for j in range(m)) for c in range(k)]
    p = []
    for j in range(m):
        w = [float(q[j, c]) ** 2 / f[c] for c in range(k)]
        p.append([v / sum(w) for v in w])
    return torch.tensor(p, dtype=torch.float64)


def ref_kl(p, q):
    """Eq. 5: mean over j of sum_k p_jk log(p_jk / q_jk)."""
    total = 0.0
    for j in range(len(p)):
        total += sum(float(p[j, c]) * math.log(float(p[j, c]) / float(q[j, c])) for c in range(p.shape[1]) if p[j, c] > 0)
    return total / len(p)


def ref_accuracy(y, c):
    """Best accuracy over every one-to-one map of clusters to classes (brute force)."""
    classes, clusters = sorted(set(y)), sorted(set(c))
    best = 0
    pad = classes + [None] * max(0, len(clusters) - len(classes))
    for perm in itertools.permutations(pad, len(clusters)):
        mapping = dict(zip(clusters, perm))
        best = max(best, sum(mapping[ci] == yi for yi, ci in zip(y, c)))
    return best / len(y)


# ------------------------------------------------------------------ clustering losses
@pytest.mark.parametrize("alpha", [1.0, 0.5, 3.0])
def test_student_t_matches_reference(alpha):
    torch.manual_seed(0)
    e, mu = torch.randn(7, 4, dtype=torch.float64), torch.randn(3, 4, dtype=torch.float64)
    q = L.student_t_assignment(e, mu, alpha)
    torch.testing.assert_close(q, ref_student_t(e, mu, alpha))
    torch.testing.assert_close(q.sum(1), torch.ones(7, dtype=torch.float64))


def test_student_t_far_points_stay_finite_and_pick_nearest_centre():
    e = torch.tensor([[1e6, 0.0], [0.0, -1e6]])
    mu = torch.tensor([[1e6 - 1, 0.0], [0.0, 0.0]])
    q = L.student_t_assignment(e, mu)
    assert torch.isfinite(q).all()
    assert q[0].argmax() == 0 and q[1].argmax() == 1


def test_target_distribution_matches_reference_and_is_sharper():
    torch.manual_seed(1)
    q = L.student_t_assignment(torch.randn(9, 5, dtype=torch.float64), torch.randn(4, 5, dtype=torch.float64))
    p = L.target_distribution(q)
    torch.testing.assert_close(p, ref_target(q))
    entropy = lambda x: -(x * x.log()).sum(1)  # noqa: E731
    assert entropy(p).mean() < entropy(q).mean()  # sharper on average (the 1/f_k factor may flatten a row)


def test_target_distribution_is_detached():
    e = torch.randn(5, 3, requires_grad=True)
    q = L.student_t_assignment(e, torch.randn(2, 3))
    assert not L.target_distribution(q).requires_grad


def test_target_distribution_divides_by_cluster_frequency():
    # same confidence for both rows, but cluster 0 is three times as frequent: its weight shrinks
    q = torch.tensor([[0.6, 0.4]] * 3 + [[0.4, 0.6]], dtype=torch.float64)
    p = L.target_distribution(q)
    torch.testing.assert_close(p, ref_target(q))
    assert p[0, 0] < 0.6**2 / (0.6**2 + 0.4**2)


def test_cluster_kl_matches_reference_and_is_zero_at_its_target():
    torch.manual_seed(2)
    q = L.student_t_assignment(torch.randn(6, 3, dtype=torch.float64), torch.randn(3, 3, dtype=torch.float64))
    assert L.cluster_kl_loss(q, eps=0).item() == pytest.approx(ref_kl(ref_target(q), q), rel=1e-10)
    p = L.target_distribution(q)
    assert L.cluster_kl_loss(p, p, eps=0).item() == pytest.approx(0, abs=1e-12)


def test_cluster_kl_gradient_check():
    torch.manual_seed(3)
    e = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    mu = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    p = L.target_distribution(L.student_t_assignment(e, mu)).clone()
    assert torch.autograd.gradcheck(lambda a, b: L.cluster_kl_loss(L.student_t_assignment(a, b), p, eps=0), (e, mu))


def test_cluster_kl_pulls_points_toward_their_confident_centre():
    e = torch.tensor([[0.4, 0.0]], requires_grad=True)
    mu = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])
    q = L.student_t_assignment(torch.cat([e, torch.tensor([[-0.9, 0.0]])]), mu)
    L.cluster_kl_loss(q).backward()
    assert e.grad[0, 0] < 0  # gradient descent moves it toward +x, its nearer centre


def test_clustering_losses_reject_bad_input():
    with pytest.raises(ValueError, match="same dimension"):
        L.student_t_assignment(torch.randn(4, 3), torch.randn(2, 5))
    with pytest.raises(ValueError, match="alpha"):
        L.student_t_assignment(torch.randn(4, 3), torch.randn(2, 3), alpha=0)
    with pytest.raises(ValueError, match="q must hold probabilities"):
        L.target_distribution(torch.randn(4, 3))
    q = torch.full((4, 2), 0.5)
    with pytest.raises(ValueError, match="shape of q"):
        L.cluster_kl_loss(q, torch.full((4, 3), 1 / 3))


# ------------------------------------------------------------------ metrics
def test_clustering_accuracy_matches_brute_force():
    rng = np.random.default_rng(0)
    for n_clusters in (3, 4, 2):
        y = rng.integers(0, 3, 40)
        c = rng.integers(0, n_clusters, 40)
        assert clustering_accuracy(y, c) == pytest.approx(ref_accuracy(list(y), list(c)))


def test_clustering_accuracy_and_nmi_ignore_cluster_names():
    y = np.array([0, 0, 1, 1, 2, 2, 2, 1])
    c = np.array([5, 5, 9, 9, 7, 7, 7, 9])  # a perfect clustering under other names
    assert clustering_accuracy(y, c) == 1.0 and nmi(y, c) == pytest.approx(1.0)
    noisy = np.array([1, 2, 0, 0, 2, 2, 1, 0])
    perm = np.array([2, 0, 1])[noisy]
    assert clustering_accuracy(y, noisy) == clustering_accuracy(y, perm)
    assert nmi(y, noisy) == pytest.approx(nmi(y, perm))


def test_one_cluster_scores_the_largest_class_share():
    y = np.array([0, 0, 0, 1, 2])
    assert clustering_accuracy(y, np.zeros(5, dtype=int)) == pytest.approx(0.6)
    assert nmi(y, np.zeros(5, dtype=int)) == pytest.approx(0.0)


def test_metrics_reject_bad_labels():
    with pytest.raises(ValueError, match="same length"):
        clustering_accuracy([0, 1], [0, 1, 1])
    with pytest.raises(TypeError, match="labels_pred must hold integer"):
        nmi([0, 1], [0.5, 1.0])
    with pytest.raises(ValueError, match="empty"):
        clustering_accuracy([], [])


def test_kmeans_finds_separated_blobs():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(m, 0.1, (20, 2)) for m in (-5, 0, 5)])
    labels, centres = kmeans(torch.tensor(x), 3)
    assert centres.shape == (3, 2)
    assert clustering_accuracy(np.repeat([0, 1, 2], 20), labels) == 1.0
    with pytest.raises(ValueError, match="n_clusters"):
        kmeans(x, 100)


def test_kmeans_runs_stack_one_assignment_per_seed():
    from contrastive_tutorial.evaluate import kmeans_runs

    rng = np.random.default_rng(1)
    x = np.concatenate([rng.normal(m, 1.5, (30, 2)) for m in (-2, 0, 2)])  # overlapping: starts matter
    runs = kmeans_runs(x, 3, seeds=(0, 1, 2, 3))
    assert runs.shape == (4, 90)
    for s, run in zip((0, 1, 2, 3), runs):
        assert (run == kmeans(x, 3, seed=s)[0]).all()
    for bad in ((), 3, "012"):
        with pytest.raises(ValueError, match="seeds"):
            kmeans_runs(x, 3, seeds=bad)


# ------------------------------------------------------------------ the SCCL model
TEXTS = [
    "stocks fell sharply today", "the market rallied on earnings", "shares of the bank dropped",
    "the team won the final", "a late goal decided the match", "the coach praised his players",
    "new phone has a faster chip", "the software update fixes bugs",
]
LABELS = [0, 0, 0, 1, 1, 1, 2, 2]


@pytest.fixture
def model(tiny_encoder_parts):
    tokenizer, bert = tiny_encoder_parts
    torch.manual_seed(0)
    encoder = TextEncoder(copy.deepcopy(bert), tokenizer, pooler="mean", max_length=16)
    return sccl.SCCL.from_kmeans(encoder, TEXTS, 3, seed=0)


def test_losses_are_the_weighted_sum_of_their_terms(model):
    views = (sccl.word_deletion(TEXTS, 0.3, seed=1), sccl.word_deletion(TEXTS, 0.3, seed=2))
    model.eval()  # no dropout: the terms can be recomputed exactly
    out = model.losses(TEXTS, views, eta=10, temperature=0.5)
    torch.testing.assert_close(out["loss"], 10 * out["instance"] + out["cluster"])
    z1, z2 = model.head(model.embed(views[0])), model.head(model.embed(views[1]))
    torch.testing.assert_close(out["instance"], L.nt_xent(z1, z2, 0.5))
    torch.testing.assert_close(out["cluster"], L.cluster_kl_loss(model.assign(model.embed(TEXTS))))
    virtual = model.losses(TEXTS)  # dropout views: cluster term weighted 0.5 as in the official code
    torch.testing.assert_close(virtual["loss"], 10 * virtual["instance"] + 0.5 * virtual["cluster"])
    clustering_only = model.losses(TEXTS, views, objective="clustering")  # explicit mode: weight 1, no views encoded
    torch.testing.assert_close(clustering_only["loss"], out["cluster"])
    assert set(model.losses(TEXTS, objective="instance")) == {"instance", "loss"}
    assert set(model.losses(TEXTS, objective="clustering")) == {"cluster", "loss"}


def test_sccl_rejects_bad_input(model, tiny_encoder_parts):
    with pytest.raises(ValueError, match="objective"):
        model.losses(TEXTS, objective="kmeans")
    with pytest.raises(ValueError, match="views"):
        model.losses(TEXTS, (TEXTS, TEXTS[:3]))
    with pytest.raises(ValueError, match="centres must have shape"):
        sccl.SCCL(model.encoder, torch.zeros(3, 5))
    with pytest.raises(ValueError, match="labels"):
        sccl.evaluate_clustering(model, TEXTS, LABELS[:3])


def test_train_sccl_moves_encoder_and_heads_at_their_rates(model):
    before = {k: v.clone() for k, v in model.state_dict().items()}
    history = sccl.train_sccl(model, TEXTS, steps=3, batch_size=4, lr=1e-4, lr_scale=100, progress=False)
    # one record per pass over the texts (two full batches of 4), the last at step 3
    assert history["step"] == [len(TEXTS) // 4, 3] and all(math.isfinite(v) for v in history["loss"])
    moved = lambda key: (model.state_dict()[key] - before[key]).abs().max().item()  # noqa: E731
    assert moved("centres") > 10 * moved("encoder.model.embeddings.word_embeddings.weight") > 0
    assert moved("head.0.weight") > 0


def test_from_kmeans_starts_at_the_kmeans_centres(model):
    _, centres = kmeans(model.encoder.encode(TEXTS, pooler="mean"), 3, seed=0)
    torch.testing.assert_close(model.centres.detach(), torch.tensor(centres, dtype=torch.float32))


def test_evaluate_clustering_reports_kmeans_and_head(model):
    scores = sccl.evaluate_clustering(model, TEXTS, LABELS)
    assert set(scores) == {"kmeans_acc", "kmeans_nmi", "head_acc", "head_nmi"}
    assert all(0 <= v <= 1 for v in scores.values())
    assert scores["head_acc"] >= 3 / 8  # at least the largest class share
    found = sccl.cluster_assignments(model, TEXTS)
    assert found["kmeans"].shape == found["head"].shape == (len(TEXTS),)
    assert scores["head_acc"] == clustering_accuracy(LABELS, found["head"])
    assert scores["kmeans_nmi"] == nmi(LABELS, found["kmeans"])
    with pytest.raises(ValueError, match="non-empty sequence"):
        sccl.cluster_assignments(model, "one text")


def test_word_deletion_is_seeded_and_keeps_a_word():
    out = sccl.word_deletion(TEXTS, 0.5, seed=3)
    assert out == sccl.word_deletion(TEXTS, 0.5, seed=3) and out != TEXTS
    assert all(o and set(o.split()) <= set(t.split()) for o, t in zip(out, TEXTS))
    assert sccl.word_deletion(["one"], 0.99) == ["one"]
    with pytest.raises(ValueError, match="p must"):
        sccl.word_deletion(TEXTS, 1.0)


def test_contextual_substitution_replaces_a_fraction_of_words(tiny_mlm_parts):
    tokenizer, mlm = tiny_mlm_parts
    out = sccl.contextual_substitution(TEXTS, mlm, tokenizer, fraction=0.25, seed=0)
    assert out == sccl.contextual_substitution(TEXTS, mlm, tokenizer, fraction=0.25, seed=0)
    for new, old in zip(out, TEXTS):
        changed = sum(a != b for a, b in zip(new.split(), old.split()))
        assert len(new.split()) == len(old.split())  # one whole word per masked word
        assert changed == max(1, round(0.25 * len(old.split())))
    with pytest.raises(ValueError, match="fraction"):
        sccl.contextual_substitution(TEXTS, mlm, tokenizer, fraction=0)
