"""Losses of the families beyond in-batch negatives (MoCo, BYOL/SimSiam, SwAV, Barlow Twins)
against float64 loop references written from the papers' equations."""

from __future__ import annotations

import math

import pytest
import torch

from contrastive_tutorial.losses import barlow_twins_loss, byol_loss, moco_loss, sinkhorn_knopp, swav_loss


def rand(*shape):
    return torch.randn(*shape, dtype=torch.float64)


def unit(v):
    n = math.sqrt(sum(x * x for x in v))
    return [x / n for x in v]


def dot(a, b):
    return sum(x * y for x, y in zip(a, b))


# ------------------------------------------------------------------ references
def ref_byol(p, z):
    return sum(2 - 2 * dot(unit(pi), unit(zi)) for pi, zi in zip(p.tolist(), z.tolist())) / len(p)


def ref_moco(q, k, queue, tau):
    total = 0.0
    for qi, ki in zip(q.tolist(), k.tolist()):
        qi = unit(qi)
        pos = dot(qi, unit(ki)) / tau
        negs = [dot(qi, unit(u)) / tau for u in queue.tolist()]
        total += -pos + math.log(math.exp(pos) + sum(math.exp(n) for n in negs))
    return total / len(q)


def ref_sinkhorn(scores, eps, iterations):
    s = scores.tolist()
    b, k = len(s), len(s[0])
    q = [[math.exp(s[i][j] / eps) for j in range(k)] for i in range(b)]
    total = sum(map(sum, q))
    q = [[v / total for v in row] for row in q]
    for _ in range(iterations):
        col = [sum(q[i][j] for i in range(b)) for j in range(k)]
        q = [[q[i][j] / col[j] / k for j in range(k)] for i in range(b)]
        row = [sum(q[i]) for i in range(b)]
        q = [[q[i][j] / row[i] / b for j in range(k)] for i in range(b)]
    return [[v * b for v in r] for r in q]


def ref_swav(s1, s2, tau, eps, iterations):
    def log_softmax(row):
        m = max(row)
        lse = m + math.log(sum(math.exp(x - m) for x in row))
        return [x - lse for x in row]

    q1, q2 = ref_sinkhorn(s1, eps, iterations), ref_sinkhorn(s2, eps, iterations)
    total = 0.0
    for i, (r1, r2) in enumerate(zip(s1.tolist(), s2.tolist())):
        lp1, lp2 = log_softmax([x / tau for x in r1]), log_softmax([x / tau for x in r2])
        total += dot(q1[i], lp2) + dot(q2[i], lp1)
    return -total / (2 * len(s1))


def ref_barlow(z1, z2, lambd, eps=1e-5):
    a, b = z1.tolist(), z2.tolist()
    n, d = len(a), len(a[0])

    def standardise(z):
        cols = []
        for j in range(d):
            col = [z[i][j] for i in range(n)]
            mu = sum(col) / n
            var = sum((x - mu) ** 2 for x in col) / n
            cols.append([(x - mu) / math.sqrt(var + eps) for x in col])
        return cols

    ca, cb = standardise(a), standardise(b)
    loss = 0.0
    for i in range(d):
        for j in range(d):
            c = sum(ca[i][t] * cb[j][t] for t in range(n)) / n
            loss += (1 - c) ** 2 if i == j else lambd * c * c
    return loss


# ------------------------------------------------------------------ against references
def test_byol_matches_reference_and_is_zero_for_aligned_pairs():
    p, z = rand(6, 5), rand(6, 5)
    assert byol_loss(p, z).item() == pytest.approx(ref_byol(p, z), abs=1e-12)
    assert byol_loss(p, 3 * p).item() == pytest.approx(0, abs=1e-12)
    assert byol_loss(p, -p).item() == pytest.approx(4, abs=1e-12)


@pytest.mark.parametrize("tau", [0.07, 0.2, 1.0])
def test_moco_matches_reference(tau):
    q, k, queue = rand(5, 4), rand(5, 4), rand(7, 4)
    assert moco_loss(q, k, queue, tau).item() == pytest.approx(ref_moco(q, k, queue, tau), abs=1e-10)


@pytest.mark.parametrize("iterations", [1, 3, 10])
def test_sinkhorn_matches_reference_and_its_marginals(iterations):
    scores = torch.nn.functional.normalize(rand(6, 4), dim=1)
    codes = sinkhorn_knopp(scores, epsilon=0.3, iterations=iterations)
    torch.testing.assert_close(codes, torch.tensor(ref_sinkhorn(scores, 0.3, iterations), dtype=torch.float64))
    torch.testing.assert_close(codes.sum(1), torch.ones(6, dtype=torch.float64))  # each sample: one unit of mass


def test_sinkhorn_equipartitions_a_batch_that_prefers_one_prototype():
    scores = torch.zeros(8, 4, dtype=torch.float64)
    scores[:, 0] = 1.0  # every sample prefers prototype 0
    scores += 0.1 * rand(8, 4)
    codes = sinkhorn_knopp(scores, epsilon=0.5, iterations=50)
    torch.testing.assert_close(codes.sum(0), torch.full((4,), 2.0, dtype=torch.float64), atol=1e-6, rtol=0)
    naive = torch.softmax(scores / 0.5, dim=1).sum(0)
    assert naive[0] > 4  # without the constraint, prototype 0 takes most of the batch


def test_sinkhorn_is_stable_at_small_epsilon_and_has_no_gradient():
    scores = torch.nn.functional.normalize(torch.randn(16, 10), dim=1).requires_grad_()
    codes = sinkhorn_knopp(scores, epsilon=0.01)
    assert torch.isfinite(codes).all() and not codes.requires_grad


def test_swav_matches_reference():
    s1 = torch.nn.functional.normalize(rand(6, 5), dim=1)
    s2 = torch.nn.functional.normalize(rand(6, 5), dim=1)
    assert swav_loss(s1, s2, 0.1, 0.3, 3).item() == pytest.approx(ref_swav(s1, s2, 0.1, 0.3, 3), abs=1e-10)


@pytest.mark.parametrize("lambd", [5e-3, 0.5])
def test_barlow_twins_matches_reference(lambd):
    z1, z2 = rand(7, 4), rand(7, 4)
    assert barlow_twins_loss(z1, z2, lambd).item() == pytest.approx(ref_barlow(z1, z2, lambd), rel=1e-10)


def test_barlow_twins_is_near_zero_for_identical_decorrelated_features():
    z = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]], dtype=torch.float64)
    assert barlow_twins_loss(z, z.clone()).item() == pytest.approx(0, abs=1e-4)
    collapsed = z[:, :1].repeat(1, 2)  # two copies of one feature: redundant
    assert barlow_twins_loss(collapsed, collapsed.clone(), lambd=1.0).item() > 1.5


# ------------------------------------------------------------------ gradients
def test_gradchecks():
    p, z = rand(4, 3).requires_grad_(), rand(4, 3)
    assert torch.autograd.gradcheck(lambda a: byol_loss(a, z), (p,))
    q, k, queue = rand(4, 3).requires_grad_(), rand(4, 3), rand(5, 3)
    assert torch.autograd.gradcheck(lambda a: moco_loss(a, k, queue, 0.5), (q,))
    # swav_loss has no gradcheck: its codes depend on the scores but are constants by design
    # (a finite difference would see them move); its gradient is checked in closed form below.
    z1, z2 = rand(6, 3).requires_grad_(), rand(6, 3).requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: barlow_twins_loss(a, b, 0.1), (z1, z2))


def test_stop_gradients_on_targets_keys_and_queue():
    p, z = rand(4, 3).requires_grad_(), rand(4, 3).requires_grad_()
    byol_loss(p, z).backward()
    assert z.grad is None and p.grad is not None
    q, k, queue = rand(4, 3).requires_grad_(), rand(4, 3).requires_grad_(), rand(6, 3).requires_grad_()
    moco_loss(q, k, queue).backward()
    assert k.grad is None and queue.grad is None and q.grad is not None


def test_swav_gradient_flows_only_through_the_predictions():
    """Codes are constants: the gradient of the loss w.r.t. scores1 is (softmax(s1/tau) - q2) / (2 B tau)."""
    s1, s2 = rand(5, 4).requires_grad_(), rand(5, 4)
    tau = 0.5
    swav_loss(s1, s2, tau, 0.5).backward()
    q2 = sinkhorn_knopp(s2, 0.5)
    expected = (torch.softmax(s1.detach() / tau, dim=1) - q2) / (2 * 5 * tau)
    torch.testing.assert_close(s1.grad, expected)


# ------------------------------------------------------------------ bad input
def test_bad_input_is_refused_with_the_argument_named():
    x = torch.randn(4, 3)
    with pytest.raises(ValueError, match="p and z"):
        byol_loss(x, torch.randn(4, 5))
    with pytest.raises(ValueError, match="queue"):
        moco_loss(x, x, torch.randn(6, 5))
    with pytest.raises(ValueError, match="temperature"):
        moco_loss(x, x, x, temperature=0.0)
    with pytest.raises(ValueError, match="epsilon"):
        sinkhorn_knopp(x, epsilon=-1.0)
    with pytest.raises(ValueError, match="iterations"):
        sinkhorn_knopp(x, iterations=0)
    with pytest.raises(ValueError, match="scores1 and scores2"):
        swav_loss(x, torch.randn(5, 3))
    with pytest.raises(ValueError, match="lambd"):
        barlow_twins_loss(x, x, lambd=-1.0)
    with pytest.raises(TypeError, match="z1"):
        barlow_twins_loss(torch.ones(4, 3, dtype=torch.long), x)
