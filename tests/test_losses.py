"""Losses against float64 loop references written from each paper's equation."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from contrastive_tutorial import losses as L

torch.manual_seed(0)


# ------------------------------------------------------------------ slow references
def cos(a, b):
    return float(torch.dot(a, b) / (a.norm() * b.norm()))


def ref_info_nce(q, k, pos, tau, excluded=None):
    """Oord et al.: mean_i -log exp(s_ip/tau) / sum_{j not excluded} exp(s_ij/tau)."""
    total = 0.0
    for i in range(len(q)):
        positives = pos[i] if isinstance(pos[i], list) else [pos[i]]
        denom = sum(
            math.exp(cos(q[i], k[j]) / tau)
            for j in range(len(k))
            if not (excluded and j in excluded[i])
        )
        total += -sum(math.log(math.exp(cos(q[i], k[p]) / tau) / denom) for p in positives) / len(positives)
    return total / len(q)


def ref_nt_xent(z1, z2, tau):
    """Chen et al.: l(i, j) = -log exp(s_ij/tau) / sum_{k != i} exp(s_ik/tau), mean over 2N."""
    z = torch.cat([z1, z2])
    n = len(z1)
    total = 0.0
    for i in range(2 * n):
        p = (i + n) % (2 * n)
        denom = sum(math.exp(cos(z[i], z[k]) / tau) for k in range(2 * n) if k != i)
        total += -math.log(math.exp(cos(z[i], z[p]) / tau) / denom)
    return total / (2 * n)


def ref_simcse(z1, z2, tau, h=None):
    """Gao et al. eq. (1) and (5)."""
    total = 0.0
    for i in range(len(z1)):
        denom = sum(math.exp(cos(z1[i], z2[j]) / tau) for j in range(len(z2)))
        if h is not None:
            denom += sum(math.exp(cos(z1[i], h[j]) / tau) for j in range(len(h)))
        total += -math.log(math.exp(cos(z1[i], z2[i]) / tau) / denom)
    return total / len(z1)


def ref_supcon(z, y, tau):
    """Khosla et al. eq. (2), L_out; anchors without positives left out."""
    losses = []
    for i in range(len(z)):
        P = [p for p in range(len(z)) if p != i and y[p] == y[i]]
        if not P:
            continue
        denom = sum(math.exp(cos(z[i], z[a]) / tau) for a in range(len(z)) if a != i)
        losses.append(-sum(math.log(math.exp(cos(z[i], z[p]) / tau) / denom) for p in P) / len(P))
    return sum(losses) / len(losses)


def ref_alignment(x, y, alpha):
    return sum(float((x[i] - y[i]).norm()) ** alpha for i in range(len(x))) / len(x)


def ref_uniformity(x, t):
    vals = [math.exp(-t * float((x[i] - x[j]).norm()) ** 2) for i in range(len(x)) for j in range(i + 1, len(x))]
    return math.log(sum(vals) / len(vals))


def rand(*shape, dtype=torch.float64):
    return torch.randn(*shape, dtype=dtype)


# ------------------------------------------------------------------ against references
@pytest.mark.parametrize("tau", [0.05, 0.1, 0.5, 2.0])
def test_info_nce_matches_reference(tau):
    q, k = rand(5, 7), rand(9, 7)
    pos = torch.tensor([3, 0, 8, 8, 1])
    got = L.info_nce(q, k, pos, tau)
    assert got.dtype == torch.float64
    assert got.item() == pytest.approx(ref_info_nce(q, k, pos.tolist(), tau), rel=1e-10)


def test_info_nce_key_mask_and_multiple_positives():
    q, k = rand(4, 6), rand(6, 6)
    mask = torch.zeros(4, 6, dtype=torch.bool)
    mask[0, 5] = mask[2, 1] = mask[3, 0] = True
    pos = torch.zeros(4, 6, dtype=torch.bool)
    pos[0, [1, 2]] = pos[1, 0] = pos[2, [3, 4, 5]] = pos[3, 2] = True
    got = L.info_nce(q, k, pos, 0.2, key_mask=mask)
    positives = [[1, 2], [0], [3, 4, 5], [2]]
    excluded = [{5}, set(), {1}, {0}]
    assert got.item() == pytest.approx(ref_info_nce(q, k, positives, 0.2, excluded), rel=1e-10)


def test_info_nce_dot_product_and_reductions():
    q, k = rand(3, 4), rand(3, 4)
    pos = torch.tensor([0, 1, 2])
    per = L.info_nce(q, k, pos, 1.0, normalize=False, reduction="none")
    expected = F.cross_entropy(q @ k.T, pos, reduction="none")
    torch.testing.assert_close(per, expected)
    torch.testing.assert_close(L.info_nce(q, k, pos, 1.0, normalize=False, reduction="sum"), expected.sum())


@pytest.mark.parametrize("tau", [0.1, 0.5])
def test_nt_xent_matches_reference(tau):
    z1, z2 = rand(6, 5), rand(6, 5)
    assert L.nt_xent(z1, z2, tau).item() == pytest.approx(ref_nt_xent(z1, z2, tau), rel=1e-10)


def test_simcse_matches_reference_with_and_without_hard_negatives():
    z1, z2, h = rand(5, 8), rand(5, 8), rand(5, 8)
    assert L.simcse_loss(z1, z2).item() == pytest.approx(ref_simcse(z1, z2, 0.05), rel=1e-10)
    got = L.simcse_loss(z1, z2, 0.05, hard_negatives=h)
    assert got.item() == pytest.approx(ref_simcse(z1, z2, 0.05, h), rel=1e-10)
    # hard negatives only add terms to the denominator: the loss can only grow
    assert got > L.simcse_loss(z1, z2)


def test_simcse_equals_official_cross_entropy_form():
    """The official code: CrossEntropy(cos(z1_i, z2_j) / tau, labels = arange(N))."""
    z1, z2 = rand(7, 4), rand(7, 4)
    sim = F.cosine_similarity(z1[:, None], z2[None, :], dim=-1) / 0.05
    torch.testing.assert_close(L.simcse_loss(z1, z2), F.cross_entropy(sim, torch.arange(7)))


def test_supcon_matches_reference_and_skips_anchors_without_positives():
    z = rand(8, 5)
    y = torch.tensor([0, 1, 0, 2, 1, 1, 3, 0])  # labels 2 and 3 have no positive
    got = L.supcon_loss(z, y, 0.1)
    assert got.item() == pytest.approx(ref_supcon(z, y.tolist(), 0.1), rel=1e-10)


def test_supcon_with_views_equals_flattened_batch():
    f = rand(4, 2, 6)
    y = torch.tensor([0, 1, 0, 2])
    flat = torch.cat([f[:, 0], f[:, 1]])
    got = L.supcon_loss(f, y, 0.3)
    assert got.item() == pytest.approx(ref_supcon(flat, y.tolist() * 2, 0.3), rel=1e-10)


def test_supcon_two_views_no_repeated_labels_is_nt_xent():
    """With distinct labels and two views, the only positive is the other view: NT-Xent."""
    z1, z2 = rand(5, 4), rand(5, 4)
    got = L.supcon_loss(torch.stack([z1, z2], 1), torch.arange(5), 0.5)
    torch.testing.assert_close(got, L.nt_xent(z1, z2, 0.5))


@pytest.mark.parametrize("alpha", [1, 2, 3])
def test_alignment_matches_reference(alpha):
    x, y = F.normalize(rand(6, 3), dim=1), F.normalize(rand(6, 3), dim=1)
    assert L.alignment(x, y, alpha).item() == pytest.approx(ref_alignment(x, y, alpha), rel=1e-10)


@pytest.mark.parametrize("t", [0.5, 2, 5])
def test_uniformity_matches_reference_and_pdist_form(t):
    x = F.normalize(rand(7, 3), dim=1)
    got = L.uniformity(x, t)
    assert got.item() == pytest.approx(ref_uniformity(x, t), rel=1e-9)
    # Wang & Isola's one-liner
    torch.testing.assert_close(got, torch.pdist(x).pow(2).mul(-t).exp().mean().log())


# ------------------------------------------------------------------ gradients
def test_gradcheck_all_losses():
    q, k = rand(3, 4, dtype=torch.float64).requires_grad_(), rand(5, 4).requires_grad_()
    pos = torch.tensor([0, 4, 2])
    assert torch.autograd.gradcheck(lambda a, b: L.info_nce(a, b, pos, 0.3), (q, k))
    z1, z2, h = (rand(4, 3).requires_grad_() for _ in range(3))
    assert torch.autograd.gradcheck(lambda a, b: L.nt_xent(a, b, 0.5), (z1, z2))
    assert torch.autograd.gradcheck(lambda a, b, c: L.simcse_loss(a, b, 0.1, c), (z1, z2, h))
    y = torch.tensor([0, 0, 1, 1])
    assert torch.autograd.gradcheck(lambda a: L.supcon_loss(a, y, 0.2), (z1,))
    unit = lambda a: F.normalize(a, dim=1)  # noqa: E731  (alignment and uniformity live on the sphere)
    assert torch.autograd.gradcheck(lambda a, b: L.alignment(unit(a), unit(b)), (z1, z2))
    assert torch.autograd.gradcheck(lambda a: L.uniformity(unit(a)), (z1,))
    assert torch.autograd.gradcheck(lambda a, b: L.contrastive_tension_loss(a, b, torch.tensor([1.0, 0, 0, 1])), (z1, z2))


def test_alignment_and_uniformity_refuse_unnormalised_input():
    x = torch.randn(5, 3) * 3
    with pytest.raises(ValueError, match="L2-normalised"):
        L.uniformity(x)
    with pytest.raises(ValueError, match="L2-normalised"):
        L.alignment(x, F.normalize(x, dim=1))


def test_uniformity_gradient_finite_at_collapse():
    x = torch.ones(4, 3, dtype=torch.float64).div(3**0.5).requires_grad_()
    u = L.uniformity(x)
    u.backward()
    assert u.item() == pytest.approx(0.0, abs=1e-12)
    assert torch.isfinite(x.grad).all()


def test_info_nce_gradient_weights_negatives_by_softmax():
    """d loss / d s_ij = (p_ij - 1[j = pos]) / tau: each negative's pull is its softmax weight."""
    q = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    angles = torch.tensor([0.2, 0.5, 1.0, 2.0], dtype=torch.float64)
    k = torch.stack([angles.cos(), angles.sin()], 1).requires_grad_()
    tau = 0.1
    loss = L.info_nce(q, k, torch.tensor([0]), tau, normalize=False)
    loss.backward()
    p = torch.softmax(angles.cos() / tau, 0)
    # d loss / d k_j = (p_j - 1[j=0]) / tau * q
    expected = ((p - F.one_hot(torch.tensor(0), 4)) / tau)[:, None] * q
    torch.testing.assert_close(k.grad, expected)


# ------------------------------------------------------------------ behaviour
def test_small_temperature_approaches_hardest_negative():
    """As tau -> 0, tau * loss -> max(0, max_neg s - s_pos): only the hardest negative counts."""
    q, k = F.normalize(rand(1, 5), dim=1), F.normalize(rand(6, 5), dim=1)
    s = (q @ k.T)[0]
    pos = int(s.argmin())  # make the positive the least similar: a positive margin
    hardest = max(float(s[j]) for j in range(6) if j != pos)
    tau = 1e-3
    got = tau * L.info_nce(q, k, torch.tensor([pos]), tau).item()
    assert got == pytest.approx(hardest - float(s[pos]), abs=5 * tau)


def test_large_temperature_approaches_uniform_weights():
    """As tau -> inf, the softmax is uniform and the loss tends to log K."""
    q, k = rand(4, 5), rand(10, 5)
    got = L.info_nce(q, k, torch.tensor([0, 1, 2, 3]), 1e6).item()
    assert got == pytest.approx(math.log(10), rel=1e-5)


def test_permutation_equivariance():
    z1, z2 = rand(6, 4), rand(6, 4)
    perm = torch.randperm(6)
    torch.testing.assert_close(L.nt_xent(z1[perm], z2[perm]), L.nt_xent(z1, z2))
    torch.testing.assert_close(L.simcse_loss(z1[perm], z2[perm]), L.simcse_loss(z1, z2))
    y = torch.tensor([0, 1, 0, 1, 2, 2])
    torch.testing.assert_close(L.supcon_loss(z1[perm], y[perm]), L.supcon_loss(z1, y))
    # permuting keys and re-pointing the positives does not change info_nce
    q, k = rand(3, 4), rand(5, 4)
    pos = torch.tensor([4, 0, 2])
    kperm = torch.randperm(5)
    inverse = torch.argsort(kperm)
    torch.testing.assert_close(L.info_nce(q, k[kperm], inverse[pos], 0.2), L.info_nce(q, k, pos, 0.2))


def test_nt_xent_symmetric_in_views():
    z1, z2 = rand(5, 3), rand(5, 3)
    torch.testing.assert_close(L.nt_xent(z1, z2), L.nt_xent(z2, z1))


def test_perfect_alignment_with_well_separated_negatives_gives_small_loss():
    e = torch.eye(4, dtype=torch.float64)
    assert L.simcse_loss(e, e, 0.05).item() < 1e-6
    assert L.alignment(e, e).item() == 0


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_inputs_stay_finite_at_small_temperature(dtype):
    z1 = torch.randn(16, 32).to(dtype)
    z2 = (z1.float() + 0.01 * torch.randn(16, 32)).to(dtype)
    for loss in (L.simcse_loss(z1, z2, 0.05), L.nt_xent(z1, z2, 0.05), L.supcon_loss(z1, torch.arange(16) % 4, 0.05)):
        assert loss.dtype == torch.float32 and torch.isfinite(loss)
    ref = L.simcse_loss(z1.double(), z2.double(), 0.05).item()
    assert L.simcse_loss(z1, z2, 0.05).item() == pytest.approx(ref, abs=0.05)
    z1.requires_grad_()
    L.simcse_loss(z1, z2, 0.05).backward()
    assert torch.isfinite(z1.grad.float()).all()


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize("tau", [0, -0.1, float("nan"), float("inf")])
def test_bad_temperature_raises(tau):
    z = rand(3, 2)
    with pytest.raises(ValueError, match="temperature"):
        L.nt_xent(z, z, tau)


def test_temperature_of_wrong_type_raises():
    z = rand(3, 2)
    with pytest.raises(TypeError, match="temperature"):
        L.simcse_loss(z, z, "0.05")


def test_mismatched_shapes_raise():
    with pytest.raises(ValueError, match="z1 and z2"):
        L.nt_xent(rand(3, 2), rand(4, 2))
    with pytest.raises(ValueError, match="feature size"):
        L.info_nce(rand(3, 2), rand(4, 3), torch.tensor([0, 1, 2]), 0.1)
    with pytest.raises(ValueError, match="hard_negatives"):
        L.simcse_loss(rand(3, 2), rand(3, 2), hard_negatives=rand(2, 2))


def test_wrong_rank_raises():
    with pytest.raises(ValueError, match=r"z1 must have shape \(B, D\)"):
        L.simcse_loss(rand(3), rand(3))
    with pytest.raises(ValueError, match="features"):
        L.supcon_loss(rand(2, 2, 2, 2), torch.tensor([0, 1]))


def test_batch_of_one_raises():
    with pytest.raises(ValueError, match="at least 2 rows"):
        L.nt_xent(rand(1, 4), rand(1, 4))
    with pytest.raises(ValueError, match="at least 2 rows"):
        L.simcse_loss(rand(1, 4), rand(1, 4))
    with pytest.raises(ValueError, match="at least 2 rows"):
        L.uniformity(rand(1, 4))
    with pytest.raises(ValueError, match="keys"):
        L.info_nce(rand(1, 4), rand(1, 4), torch.tensor([0]), 0.1)


def test_bad_labels_raise():
    with pytest.raises(ValueError, match="labels must have shape"):
        L.supcon_loss(rand(4, 3), torch.tensor([0, 1, 0]))
    with pytest.raises(TypeError, match="labels"):
        L.supcon_loss(rand(4, 3), torch.tensor([0.0, 1.0, 0.0, 1.0]))
    with pytest.raises(ValueError, match="at least one anchor with a positive"):
        L.supcon_loss(rand(4, 3), torch.arange(4))


def test_bad_positive_idx_raises():
    q, k = rand(2, 3), rand(4, 3)
    with pytest.raises(ValueError, match="positive_idx must lie"):
        L.info_nce(q, k, torch.tensor([0, 4]), 0.1)
    with pytest.raises(ValueError, match=r"positive_idx must have shape \(2,\)"):
        L.info_nce(q, k, torch.tensor([0, 1, 2]), 0.1)
    with pytest.raises(TypeError, match="positive_idx"):
        L.info_nce(q, k, torch.tensor([0.0, 1.0]), 0.1)
    with pytest.raises(ValueError, match="without any positive"):
        L.info_nce(q, k, torch.zeros(2, 4, dtype=torch.bool), 0.1)
    mask = torch.zeros(2, 4, dtype=torch.bool)
    mask[0, 0] = True
    with pytest.raises(ValueError, match="excludes a positive"):
        L.info_nce(q, k, torch.tensor([0, 1]), 0.1, key_mask=mask)


def test_integer_embeddings_raise():
    with pytest.raises(TypeError, match="floating-point"):
        L.nt_xent(torch.ones(3, 2, dtype=torch.long), torch.ones(3, 2, dtype=torch.long))


def _finite_cases():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(8, 4, generator=g)
    unit = F.normalize(z, dim=1)
    q = L.student_t_assignment(z, torch.randn(3, 4, generator=g))
    return {
        "info_nce": (lambda x: L.info_nce(x, z, torch.arange(8), 0.1), z),
        "nt_xent": (lambda x: L.nt_xent(x, z, 0.5), z),
        "debiased_nt_xent": (lambda x: L.debiased_nt_xent(x, z, 0.5, 0.1, 1.0), z),
        "push_shares": (lambda x: L.push_shares(x, z, torch.arange(8), 0.1), z),
        "simcse_loss": (lambda x: L.simcse_loss(x, z, 0.05), z),
        "supcon_loss": (lambda x: L.supcon_loss(x, torch.arange(8) % 2, 0.1), z),
        "contrastive_tension_loss": (lambda x: L.contrastive_tension_loss(x, z, torch.ones(8)), z),
        "alignment": (lambda x: L.alignment(x, unit), unit),
        "uniformity": (lambda x: L.uniformity(x), unit),
        "student_t_assignment": (lambda x: L.student_t_assignment(x, torch.randn(3, 4)), z),
        "cluster_kl_loss": (lambda x: L.cluster_kl_loss(x), q),
        "byol_loss": (lambda x: L.byol_loss(x, z), z),
        "moco_loss": (lambda x: L.moco_loss(x, unit, unit), z),
        "swav_loss": (lambda x: L.swav_loss(x, unit @ unit.T, 0.1, 0.05), unit @ unit.T),
        "barlow_twins_loss": (lambda x: L.barlow_twins_loss(x, z), z),
        "vicreg_loss": (lambda x: L.vicreg_loss(x, z), z),
    }


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_every_loss_names_a_non_finite_argument(bad):
    for name, (call, clean) in _finite_cases().items():
        assert torch.isfinite(call(clean)).all(), name
        broken = clean.clone()
        broken[1, 2] = bad
        with pytest.raises(ValueError, match=f"{name}: .* holds NaN or inf"):
            call(broken)


def test_similarity_refuses_vectors_empty_rows_and_mismatched_widths():
    with pytest.raises(ValueError, match="query must have shape"):
        L.similarity(torch.randn(4), torch.randn(4))
    with pytest.raises(ValueError, match="D >= 1"):
        L.similarity(torch.randn(3, 0), torch.randn(3, 0))
    with pytest.raises(ValueError, match="same D"):
        L.similarity(torch.randn(3, 4), torch.randn(3, 5))
    with pytest.raises(TypeError, match="floating-point"):
        L.similarity(torch.ones(3, 4, dtype=torch.long), torch.randn(3, 4))


# ----------------------------------------------------------------- numerically fragile paths
def _log_domain_sinkhorn(scores, eps, iterations):
    """Sinkhorn-Knopp written out with Python floats in the log domain (math.fsum, log-sum-exp)."""
    rows = [[v / eps for v in r] for r in scores.tolist()]
    n, k = len(rows), len(rows[0])

    def lse(values):
        top = max(values)
        return top + math.log(math.fsum(math.exp(v - top) for v in values))

    for _ in range(iterations):
        cols = [lse([rows[i][j] for i in range(n)]) for j in range(k)]
        rows = [[rows[i][j] - cols[j] - math.log(k) for j in range(k)] for i in range(n)]
        sums = [lse(r) for r in rows]
        rows = [[v - sums[i] - math.log(n) for v in r] for i, r in enumerate(rows)]
    return [[math.exp(v + math.log(n)) for v in r] for r in rows]


@pytest.mark.parametrize("epsilon", [1e-2, 1e-3, 1e-4])
def test_sinkhorn_at_tiny_epsilon_is_finite_and_matches_a_log_domain_reference(epsilon):
    torch.manual_seed(0)
    scores = F.normalize(torch.randn(12, 5, dtype=torch.float64), dim=1)
    codes = L.sinkhorn_knopp(scores, epsilon=epsilon, iterations=3)
    assert torch.isfinite(codes).all()
    torch.testing.assert_close(codes, torch.tensor(_log_domain_sinkhorn(scores, epsilon, 3), dtype=torch.float64),
                               rtol=1e-7, atol=1e-9)
    torch.testing.assert_close(codes.sum(1), torch.ones(12, dtype=torch.float64))
    assert torch.isfinite(L.sinkhorn_knopp(scores.float(), epsilon=epsilon)).all()


def test_student_t_assignments_of_far_away_points_are_finite_and_right():
    centres = torch.tensor([[0.0, 0.0], [4.0, 0.0]])
    for scale in (1.0, 1e10, 1e20, 1e30):  # float32 squares overflow from about 1.8e19
        e = torch.tensor([[1.0, 0.0], [3.0, 1.0]]) * scale
        mu = centres * scale
        q = L.student_t_assignment(e, mu)
        assert torch.isfinite(q).all(), scale
        d = [[math.dist(a, b) / 1.0 for b in mu.double().tolist()] for a in e.double().tolist()]
        # float64 reference: q ~ (1 + d^2)^-1, normalised; log form for the huge scales
        logk = [[-math.log1p(x * x) if x < 1e150 else -2 * math.log(x) for x in row] for row in d]
        ref = [[math.exp(v - max(row)) / math.fsum(math.exp(w - max(row)) for w in row) for v in row] for row in logk]
        torch.testing.assert_close(q.double(), torch.tensor(ref, dtype=torch.float64), rtol=1e-5, atol=1e-6)


def test_similarity_of_huge_vectors_does_not_overflow():
    x = torch.tensor([[3e20, 4e20], [1e30, 0.0]])
    y = torch.tensor([[4e20, 3e20], [0.0, 1.0]])
    s = L.similarity(x, y)
    expected = torch.tensor([[24 / 25, 0.8], [0.8, 0.0]])
    torch.testing.assert_close(s, expected)
    loss = L.info_nce(x, y, torch.tensor([0, 1]), 0.5)
    assert torch.isfinite(loss)
    assert loss.item() != pytest.approx(math.log(2))  # not the "every row is log K" of an overflowed norm


def test_probability_checks_follow_the_callers_precision():
    torch.manual_seed(0)
    q = torch.softmax(torch.randn(16, 40), dim=1)
    for dtype in (torch.float16, torch.bfloat16):
        low = q.to(dtype)  # valid, but its rows sum to 1 only within the format's rounding
        assert ((low.double().sum(1) - 1).abs() > 1e-4).any()
        assert torch.isfinite(L.target_distribution(low)).all()
        assert torch.isfinite(L.cluster_kl_loss(low)).all()
        with pytest.raises(ValueError, match="sum to 1"):
            L.target_distribution((0.9 * q).to(dtype))  # a real mistake is still caught
    with pytest.raises(ValueError, match="sum to 1"):
        L.target_distribution(q * (1 + 1e-3))  # float32 keeps the tight tolerance


def test_features_without_dimensions_are_refused():
    for call in (lambda z: L.nt_xent(z, z), lambda z: L.uniformity(z), lambda z: L.barlow_twins_loss(z, z)):
        with pytest.raises(ValueError, match="D >= 1"):
            call(torch.zeros(4, 0))


# ------------------------------------------------------------------ false and hard negatives
def ref_debiased(z1, z2, tau, tau_plus, beta):
    """Chuang et al. (2020) eq. (6) with Robinson et al.'s (2021) hardness weights, written as the
    papers' estimator: Ng = max((sum_j w_j e^{s_j} - tau+ M e^{s+}) / (1 - tau+), M e^{-1/tau})."""
    z = torch.cat([z1, z2])
    n = len(z1)
    m = 2 * n - 2
    total = 0.0
    for i in range(2 * n):
        p = (i + n) % (2 * n)
        pos = math.exp(cos(z[i], z[p]) / tau)
        neg = [math.exp(cos(z[i], z[k]) / tau) for k in range(2 * n) if k not in (i, p)]
        imp = [x**beta for x in neg]
        mass = sum(w * x for w, x in zip(imp, neg)) / (sum(imp) / m)
        ng = max((mass - tau_plus * m * pos) / (1 - tau_plus), m * math.exp(-1 / tau))
        total += -math.log(pos / (pos + ng))
    return total / (2 * n)


@pytest.mark.parametrize("tau,tau_plus,beta", [(0.5, 0.1, 0.0), (0.5, 0.1, 1.0), (0.2, 0.3, 0.5), (1.0, 0.5, 2.0)])
def test_debiased_nt_xent_matches_reference(tau, tau_plus, beta):
    z1, z2 = rand(6, 4), rand(6, 4)
    got = L.debiased_nt_xent(z1, z2, tau, tau_plus, beta).item()
    assert got == pytest.approx(ref_debiased(z1, z2, tau, tau_plus, beta), rel=1e-9)


def test_debiased_nt_xent_floor_binds_when_the_correction_removes_everything():
    """Views of one image nearly together and a large prior: the estimate would go negative,
    and the papers' floor M e^{-1/tau} takes over (the reference clamps the same way)."""
    z1 = rand(5, 3)
    z2 = z1 + 1e-3 * rand(5, 3)
    got = L.debiased_nt_xent(z1, z2, 0.5, 0.9).item()
    assert got == pytest.approx(ref_debiased(z1, z2, 0.5, 0.9, 0.0), rel=1e-9)
    m = 8
    floor = m * math.exp(-2)
    pos = [math.exp(cos(a, b) / 0.5) for a, b in zip(torch.cat([z1, z2]), torch.cat([z2, z1]))]
    assert got == pytest.approx(sum(math.log1p(floor / x) for x in pos) / len(pos), rel=1e-9)


def test_debiased_nt_xent_without_correction_is_nt_xent_and_stays_finite_at_small_temperature():
    z1, z2 = rand(7, 5), rand(7, 5)
    torch.testing.assert_close(L.debiased_nt_xent(z1, z2, 0.3, 0.0, 0.0), L.nt_xent(z1, z2, 0.3))
    tiny = L.debiased_nt_xent(z1.float().requires_grad_(), z2.float(), 0.005, 0.1, 1.0)
    tiny.backward()
    assert torch.isfinite(tiny)


def test_debiased_nt_xent_gradients_and_bad_arguments():
    z1, z2 = rand(4, 3).requires_grad_(), rand(4, 3).requires_grad_()
    for tau_plus, beta in ((0.1, 0.0), (0.2, 1.0)):
        assert torch.autograd.gradcheck(lambda a, b: L.debiased_nt_xent(a, b, 0.5, tau_plus, beta), (z1, z2))
    for bad, message in (({"tau_plus": 1.0}, "tau_plus must lie in"), ({"tau_plus": -0.1}, "tau_plus must lie in"),
                         ({"beta": -1.0}, "beta must lie in"), ({"beta": math.inf}, "beta must lie in"),
                         ({"temperature": 0.0}, "temperature")):
        with pytest.raises(ValueError, match=message):
            L.debiased_nt_xent(z1, z2, **{"temperature": 0.5, **bad})
    with pytest.raises(TypeError, match="tau_plus must be a real number"):
        L.debiased_nt_xent(z1, z2, 0.5, "0.1")
    with pytest.raises(ValueError, match="same shape"):
        L.debiased_nt_xent(z1, z2[:3])


def test_push_shares_are_the_gradient_weights_of_info_nce():
    """w_ij = (d loss_i / d s_ij) / sum over negatives, read from autograd through info_nce."""
    q, k = rand(3, 4), rand(7, 4)
    pos = torch.tensor([0, 3, 6])
    mask = torch.zeros(3, 7, dtype=torch.bool)
    mask[1, 2] = True
    shares = L.push_shares(q, k, pos, 0.2, key_mask=mask)
    s = (F.normalize(q, dim=1) @ F.normalize(k, dim=1).T).detach().requires_grad_()
    logits = (s / 0.2).masked_fill(mask, float("-inf"))
    F.cross_entropy(logits, pos, reduction="sum").backward()
    grad = s.grad.clone()
    grad[torch.arange(3), pos] = 0.0
    torch.testing.assert_close(shares, grad / grad.sum(1, keepdim=True))
    assert (shares[torch.arange(3), pos] == 0).all() and shares[1, 2] == 0
    torch.testing.assert_close(shares.sum(1), torch.ones(3, dtype=torch.float64))


def test_push_shares_loop_reference_and_a_query_without_negatives():
    q, k = rand(2, 3), rand(4, 3)
    pos = torch.tensor([[True, True, False, False], [False, False, False, True]])
    shares = L.push_shares(q, k, pos, 0.5)
    for i in range(2):
        negatives = [j for j in range(4) if not pos[i, j]]
        denom = sum(math.exp(cos(q[i], k[j]) / 0.5) for j in negatives)
        for j in range(4):
            expected = math.exp(cos(q[i], k[j]) / 0.5) / denom if j in negatives else 0.0
            assert float(shares[i, j]) == pytest.approx(expected, rel=1e-12, abs=1e-15)
    with pytest.raises(ValueError, match="no negative"):
        L.push_shares(q, k, pos, 0.5, key_mask=~pos)


# ------------------------------------------------------------------ VICReg and SimSiam without stop-gradient
def ref_vicreg(z1, z2, lam, mu, nu, eps):
    """Bardes et al. (2022) eq. (1)-(6), loops; the variance term averaged over the two views (official code)."""
    n, d = z1.shape

    def mean(col):
        return sum(col) / len(col)

    def cov(z, i, j):
        mi, mj = mean([float(z[b, i]) for b in range(n)]), mean([float(z[b, j]) for b in range(n)])
        return sum((float(z[b, i]) - mi) * (float(z[b, j]) - mj) for b in range(n)) / (n - 1)

    def v(z):
        return sum(max(0.0, 1 - math.sqrt(cov(z, j, j) + eps)) for j in range(d)) / d

    def c(z):
        return sum(cov(z, i, j) ** 2 for i in range(d) for j in range(d) if i != j) / d

    s = sum((float(z1[b, j]) - float(z2[b, j])) ** 2 for b in range(n) for j in range(d)) / (n * d)
    return lam * s + mu * (v(z1) + v(z2)) / 2 + nu * (c(z1) + c(z2))


@pytest.mark.parametrize("scale", [0.3, 3.0])  # below and above the variance floor of 1
def test_vicreg_matches_reference(scale):
    z1, z2 = scale * rand(7, 4), scale * rand(7, 4)
    got = L.vicreg_loss(z1, z2, 25.0, 25.0, 1.0, 1e-4).item()
    assert got == pytest.approx(ref_vicreg(z1, z2, 25.0, 25.0, 1.0, 1e-4), rel=1e-10)
    assert L.vicreg_loss(z1, z2, 2.0, 3.0, 0.5).item() == pytest.approx(ref_vicreg(z1, z2, 2.0, 3.0, 0.5, 1e-4), rel=1e-10)


def test_vicreg_terms_see_collapse_and_gradients_and_bad_arguments():
    z = rand(6, 3)
    point = torch.ones(6, 3, dtype=torch.float64)
    # collapse to a point: no invariance cost, the full variance cost (std 0 < 1) of 25 * 1
    assert L.vicreg_loss(point, point).item() == pytest.approx(25 * (1 - math.sqrt(1e-4)), rel=1e-9)
    z1, z2 = z.clone().requires_grad_(), rand(6, 3).requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: L.vicreg_loss(a, b, 1.0, 1.0, 1.0), (z1, z2))
    with pytest.raises(ValueError, match="std_coeff"):
        L.vicreg_loss(z, z, std_coeff=-1.0)
    with pytest.raises(ValueError, match="same shape"):
        L.vicreg_loss(z, z[:, :2])


def test_byol_loss_without_stop_gradient_sends_gradient_to_the_target():
    p, z = rand(4, 3).requires_grad_(), rand(4, 3).requires_grad_()
    L.byol_loss(p, z).backward()
    assert z.grad is None and p.grad is not None
    L.byol_loss(p, z, stop_gradient=False).backward()
    assert z.grad is not None and z.grad.abs().sum() > 0
    torch.testing.assert_close(L.byol_loss(p, z, stop_gradient=False), L.byol_loss(p, z))
    with pytest.raises(TypeError, match="stop_gradient"):
        L.byol_loss(p, z, stop_gradient="no")


def test_smoothing_constants_and_counts_refuse_values_that_give_nan():
    """eps < 0 made SCCL's KL and Barlow Twins return NaN; iterations=True ran one Sinkhorn pass."""
    torch.manual_seed(0)
    z1, z2 = torch.randn(8, 4), torch.randn(8, 4)
    q = torch.softmax(torch.randn(8, 3), 1)
    for bad in (-1.0, float("nan"), float("inf"), True):
        with pytest.raises(ValueError, match="eps must be a finite number >= 0"):
            L.cluster_kl_loss(q, eps=bad)
    assert torch.isfinite(L.cluster_kl_loss(q, eps=0.0))
    for bad in (0.0, -1e-5, float("nan")):
        with pytest.raises(ValueError, match="eps must be a positive finite number"):
            L.barlow_twins_loss(z1, z2, eps=bad)
    constant = torch.ones(8, 4)  # a collapsed feature: finite with the default eps
    assert torch.isfinite(L.barlow_twins_loss(constant, z2))
    for bad in (True, 2.0, 0, -3):
        with pytest.raises(ValueError, match="iterations must be a positive integer"):
            L.sinkhorn_knopp(torch.randn(8, 3), iterations=bad)
