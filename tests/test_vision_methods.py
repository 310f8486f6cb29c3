"""Image encoders, the two-view methods (SimCLR, MoCo, BYOL/SimSiam, SwAV, Barlow Twins),
their momentum updates and queue, the shared training loop and the augmentation benchmark."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from contrastive_tutorial.data import ImageData, colourise
from contrastive_tutorial.losses import byol_loss, moco_loss
from contrastive_tutorial.encoders import ResNet18, SmallCNN, image_encoder
from contrastive_tutorial.methods.beyond import BYOL, BarlowTwins, MoCo, SwAV, ema_update
from contrastive_tutorial.methods.simclr import SimCLR, evaluate_encoder, train_supervised, train_views
from contrastive_tutorial.views import ImageViews


def tiny_data(n: int = 48, channels: int = 3, seed: int = 0) -> ImageData:
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, channels, 8, 8), dtype=torch.uint8, generator=g)
    labels = torch.arange(n) % 3
    return ImageData(images[: n // 2], labels[: n // 2], images[n // 2 :], labels[n // 2 :], ["a", "b", "c"])


# ------------------------------------------------------------------ encoders
def test_resnet18_has_the_cifar_stem_and_the_standard_size():
    net = ResNet18()
    first = net.features[0]
    assert first.kernel_size == (3, 3) and first.stride == (1, 1)
    assert not any(isinstance(m, nn.MaxPool2d) for m in net.modules())
    assert sum(p.numel() for p in net.parameters()) == 11_168_832  # ResNet-18 without its classifier
    assert net(torch.rand(2, 3, 32, 32)).shape == (2, 512)


def test_image_encoder_by_name():
    assert isinstance(image_encoder("small_cnn", 3, 16), SmallCNN)
    assert isinstance(image_encoder("resnet18", 3, 512), ResNet18)
    with pytest.raises(ValueError, match="feature_dim"):
        image_encoder("resnet18", 3, 64)
    with pytest.raises(ValueError, match="name"):
        image_encoder("vit", 3, 64)


# ------------------------------------------------------------------ momentum and queue
def test_ema_update_moves_parameters_and_copies_buffers():
    online, target = nn.BatchNorm1d(3), nn.BatchNorm1d(3)
    with torch.no_grad():
        online.weight.fill_(2.0)
        target.weight.fill_(0.0)
        online.running_mean.fill_(5.0)
    ema_update(target, online, momentum=0.75)
    torch.testing.assert_close(target.weight, torch.full((3,), 0.5))
    torch.testing.assert_close(target.running_mean, torch.full((3,), 5.0))
    ema_update(target, online, momentum=0.0)
    torch.testing.assert_close(target.weight, online.weight)
    with pytest.raises(ValueError, match="momentum"):
        ema_update(target, online, momentum=1.5)


def test_moco_queue_is_a_ring_buffer():
    moco = MoCo(SmallCNN(3, 8), 8, projection_dim=4, queue_size=5)
    first = torch.eye(4)[:3]
    moco.enqueue(first)
    torch.testing.assert_close(moco.queue[:3], first)
    second = -torch.eye(4)[:4]
    moco.enqueue(second)  # wraps around: slots 3, 4, 0, 1
    torch.testing.assert_close(moco.queue[[3, 4, 0, 1]], second)
    torch.testing.assert_close(moco.queue[2], first[2])
    assert int(moco.pointer) == 2
    moco.enqueue(torch.ones(7, 4))  # more keys than slots: the newest five stay
    torch.testing.assert_close(moco.queue, torch.ones(5, 4))


def test_targets_get_no_gradient_and_follow_by_momentum():
    torch.manual_seed(0)
    x1, x2 = torch.rand(6, 3, 8, 8), torch.rand(6, 3, 8, 8)
    for model in (BYOL(SmallCNN(3, 8), 8, 16, momentum=0.5), MoCo(SmallCNN(3, 8), 8, 16, queue_size=12, momentum=0.5)):
        target = model.target_encoder if isinstance(model, BYOL) else model.key_encoder
        before = [p.clone() for p in target.parameters()]
        model.loss(x1, x2).backward()
        assert all(p.grad is None for p in target.parameters())
        with torch.no_grad():
            for p in model.encoder.parameters():
                p.add_(1.0)
        model.after_step()
        for b, t, o in zip(before, target.parameters(), model.encoder.parameters()):
            torch.testing.assert_close(t, 0.5 * b + 0.5 * o)


def test_simsiam_detaches_its_own_pass_and_predictor_can_be_removed():
    """SimSiam's target is the online projection of the same forward pass behind a stop-gradient:
    one encoder pass per view (not a second target pass), the loss written out on those outputs."""
    torch.manual_seed(0)
    model = BYOL(SmallCNN(3, 8), 8, 16, momentum=0.0)
    assert not hasattr(model, "target_encoder")
    calls = []
    model.encoder.register_forward_hook(lambda *_: calls.append(1))
    x1, x2 = torch.rand(6, 3, 8, 8), torch.rand(6, 3, 8, 8)
    loss = model.loss(x1, x2)
    assert len(calls) == 2
    with torch.no_grad():
        z1, z2 = model(x1), model(x2)
    p1, p2 = model.predictor(model(x1)), model.predictor(model(x2))
    expected = 0.5 * (byol_loss(p1, z2) + byol_loss(p2, z1))
    torch.testing.assert_close(loss, expected)
    model.after_step()  # nothing to follow
    assert isinstance(BYOL(SmallCNN(3, 8), 8, 16, predictor=False).predictor, nn.Identity)


def test_moco_leaves_a_queued_key_of_the_querys_own_image_out():
    torch.manual_seed(1)
    moco = MoCo(SmallCNN(3, 8), 8, projection_dim=4, queue_size=6, temperature=0.5)
    old_keys = F.normalize(torch.randn(6, 4), dim=1)
    moco.enqueue(old_keys, torch.tensor([10, 11, 12, 13, 14, 15]))
    x1, x2 = torch.rand(3, 3, 8, 8), torch.rand(3, 3, 8, 8)
    ids = torch.tensor([12, 7, 15])  # images 12 and 15 have a stale key in the queue
    loss = moco.loss(x1, x2, ids=ids)
    with torch.no_grad():
        q1, q2 = (F.normalize(moco(x), dim=1).double() for x in (x1, x2))
    k1, k2 = (moco.keys(x).double() for x in (x1, x2))
    queue, queued_ids = old_keys.double(), [10, 11, 12, 13, 14, 15]
    total = 0.0
    for q, k in ((q1, k2), (q2, k1)):
        for i in range(3):
            negatives = [queue[j] for j in range(6) if queued_ids[j] != int(ids[i])]
            logits = [float(q[i] @ k[i]) / 0.5] + [float(q[i] @ n) / 0.5 for n in negatives]
            total += -logits[0] + math.log(sum(math.exp(v) for v in logits))
    assert loss.item() == pytest.approx(total / 6, abs=1e-5)
    assert moco.queue_ids.tolist() == [12, 7, 15, 13, 14, 15]  # the batch's keys replaced the oldest
    with pytest.raises(ValueError, match="queue_mask must be a boolean tensor of shape"):
        moco_loss(q1.float(), k2.float(), queue.float(), queue_mask=torch.zeros(3, 5, dtype=torch.bool))


def test_swav_keeps_prototypes_on_the_sphere():
    model = SwAV(SmallCNN(3, 8), 8, 16, n_prototypes=5)
    with torch.no_grad():
        model.prototypes.weight.mul_(7)
    model.loss(torch.rand(6, 3, 8, 8), torch.rand(6, 3, 8, 8))
    torch.testing.assert_close(model.prototypes.weight.norm(dim=1), torch.ones(5))


# ------------------------------------------------------------------ training and evaluation
@pytest.mark.parametrize("make", [
    lambda: SimCLR(SmallCNN(3, 8), 8, 16, temperature=0.5),
    lambda: SimCLR(SmallCNN(3, 8), 8, 16, negatives=False),
    lambda: MoCo(SmallCNN(3, 8), 8, 16, queue_size=10),
    lambda: BYOL(SmallCNN(3, 8), 8, 16, hidden_dim=32),
    lambda: BYOL(SmallCNN(3, 8), 8, 16, momentum=0.0),
    lambda: SwAV(SmallCNN(3, 8), 8, 16, n_prototypes=6),
    lambda: BarlowTwins(SmallCNN(3, 8), 8, 16),
], ids=["simclr", "alignment-only", "moco", "byol", "simsiam", "swav", "barlow"])
def test_every_method_trains_with_the_shared_loop(make):
    data = tiny_data()
    model = make()
    encoder_before = [p.clone() for p in model.encoder.parameters()]
    history = train_views(model, data, ImageViews.simclr(generator=torch.Generator().manual_seed(0)),
                          epochs=2, batch_size=8, lr=1e-2, seed=0)
    assert len(history) == 2 and all(torch.isfinite(torch.tensor(history["loss"])))
    assert any(not torch.equal(a, b) for a, b in zip(encoder_before, model.encoder.parameters()))
    scores = evaluate_encoder(model, data, space="representation")
    assert 0 <= scores.linear_probe <= 1 and -4.1 <= scores.uniformity <= 0


def test_train_views_is_reproducible():
    data = tiny_data()

    def once():
        torch.manual_seed(0)
        model = SimCLR(SmallCNN(3, 8), 8, 16)
        train_views(model, data, ImageViews.simclr(generator=torch.Generator().manual_seed(1)),
                    epochs=1, batch_size=8, lr=1e-2, seed=3)
        return [p.detach().clone() for p in model.parameters()]

    for a, b in zip(once(), once()):
        torch.testing.assert_close(a, b)


def test_supervised_reference_learns_the_labels():
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(60) % 2
    images = torch.zeros(60, 1, 8, 8, dtype=torch.uint8)
    images[labels == 1, :, :, :4] = 200  # class 1: bright left half
    images += torch.randint(0, 30, images.shape, generator=g, dtype=torch.uint8)
    data = ImageData(images[:40], labels[:40], images[40:], labels[40:], ["dark", "left"])
    encoder = SmallCNN(1, 8)
    before = [p.clone() for p in encoder.parameters()]
    model = train_supervised(data, encoder, 8, ImageViews(scale=(0.8, 1.0)), epochs=5, batch_size=20, lr=1e-2)
    assert model.encoder is encoder and any(not torch.equal(a, b) for a, b in zip(before, encoder.parameters()))
    scores = evaluate_encoder(SimCLR(encoder, 8, 4), data)
    assert scores.linear_probe == 1.0 and scores.knn == 1.0
    assert (model.predict(data.test_images) == data.test_labels.numpy()).mean() == 1.0


def test_evaluate_encoder_rejects_unknown_space():
    with pytest.raises(ValueError, match="space"):
        evaluate_encoder(SimCLR(SmallCNN(3, 8), 8, 4), tiny_data(), space="z")


def test_colourise_paints_dark_background_and_bright_strokes():
    gray = tiny_data(channels=1)
    gray.train_images[0] = 0
    gray.train_images[0, 0, 2:6, 3] = 255
    painted = colourise(gray, seed=0)
    assert painted.train_images.shape == (24, 3, 8, 8) and painted.train_images.dtype == torch.uint8
    image = painted.train_images[0].float() / 255
    assert (image[:, 0, 0] <= 0.5 + 1 / 255).all() and (image[:, 2, 3] >= 0.5 - 1 / 255).all()
    assert not torch.equal(painted.train_images[1, :, 0, 0], painted.train_images[2, :, 0, 0])  # own colours
    torch.testing.assert_close(painted.train_labels, gray.train_labels)
    with pytest.raises(ValueError, match="1-channel"):
        colourise(painted)


def test_augment_speed_benchmark_smoke():
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "augment_speed.py"
    out = subprocess.run([sys.executable, str(script), "--smoke"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "images/s" in out.stdout and "ratio batched / per-image" in out.stdout


def test_simclr_speed_benchmark_smoke():
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "simclr_speed.py"
    out = subprocess.run([sys.executable, str(script), "--smoke"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "model only" in out.stdout and "batched" in out.stdout and "images/s" in out.stdout


def test_views_without_generator_draw_parameters_on_the_images_device(monkeypatch):
    views = ImageViews.simclr(strength=0.5)
    asked = []
    sample = views.sample
    monkeypatch.setattr(views, "sample", lambda n, device=None: asked.append(device) or sample(n, device))
    images = torch.rand(3, 3, 8, 8)
    assert views(images).shape == images.shape
    assert asked == [images.device]
    assert views.sample(5, "cpu").w.shape == (5,)
    seeded = ImageViews.simclr(strength=0.5, generator=torch.Generator().manual_seed(3))
    again = ImageViews.simclr(strength=0.5, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(seeded.sample(4).cx, again.sample(4).cx)


@pytest.mark.parametrize("chapter", ["infonce", "simclr"])
def test_full_profile_encoders_build_and_train_one_step_on_cifar_shaped_images(chapter, monkeypatch):
    import contrastive_tutorial as ct

    monkeypatch.setenv("CT_PROFILE", "full")
    p = ct.profile(chapter)
    encoder = image_encoder(p.encoder, 3, p.feature_dim)
    model = SimCLR(encoder, p.feature_dim, p.projection_dim, hidden_dim=p.settings.get("hidden_dim"))
    images = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    data = ImageData(images, torch.arange(4) % 2, images, torch.arange(4) % 2, ["a", "b"])
    views = ImageViews.simclr(strength=0.5, blur=True, generator=torch.Generator().manual_seed(0))
    history = train_views(model, data, views, epochs=1, batch_size=4, lr=1e-3, seed=0)
    assert torch.isfinite(torch.tensor(history["loss"])).all()


def test_simclr_trains_with_a_given_criterion_and_refuses_a_bad_one():
    from functools import partial

    from contrastive_tutorial.losses import debiased_nt_xent, nt_xent

    torch.manual_seed(0)
    x1, x2 = torch.rand(6, 1, 8, 8), torch.rand(6, 1, 8, 8)
    model = SimCLR(SmallCNN(1, 16), 16, 8, temperature=0.5)
    plain = model.loss(x1, x2)
    model.criterion = partial(debiased_nt_xent, temperature=0.5, tau_plus=0.0)  # tau+ = 0: NT-Xent exactly
    torch.testing.assert_close(model.loss(x1, x2), plain)
    model.criterion = partial(debiased_nt_xent, temperature=0.5, tau_plus=0.2, beta=1.0)
    corrected = model.loss(x1, x2)
    corrected.backward()
    assert not torch.isclose(corrected, plain) and all(p.grad is not None for p in model.encoder.parameters())
    with pytest.raises(TypeError, match="criterion must be a function"):
        SimCLR(SmallCNN(1, 16), 16, 8, criterion="nt_xent")
    with pytest.raises(ValueError, match="negatives=False"):
        SimCLR(SmallCNN(1, 16), 16, 8, negatives=False, criterion=nt_xent)


def test_few_labels_keeps_per_class_training_images_and_the_whole_test_set():
    from contrastive_tutorial.data import few_labels, few_shot_indices

    labels = torch.arange(30) % 3
    images = torch.arange(30, dtype=torch.uint8).view(30, 1, 1, 1).expand(30, 1, 2, 2).clone()
    data = ImageData(images, labels, images[:6], labels[:6], ["a", "b", "c"])
    few = few_labels(data, 2, seed=1)
    assert sorted(few.train_labels.tolist()) == [0, 0, 1, 1, 2, 2]
    assert torch.equal(few.train_labels, few.train_images[:, 0, 0, 0].long() % 3)  # each image kept its label
    assert few.test_images is data.test_images and few.classes == data.classes
    assert torch.equal(few_labels(data, 2, seed=1).train_images, few.train_images)
    assert not torch.equal(few_labels(data, 2, seed=2).train_images, few.train_images)
    for bad in (0, 2.0, True):
        with pytest.raises(ValueError, match="per_class must be a positive integer"):
            few_labels(data, bad)
    with pytest.raises(ValueError, match="fewer than per_class"):
        few_labels(data, 11)
    with pytest.raises(ValueError, match="class indices"):
        few_shot_indices([0.5, 1.5], 1)
    with pytest.raises(TypeError, match="ImageData"):
        few_labels(images, 1)


def test_simsiam_without_stop_gradient_trains_both_branches_and_vicreg_trains():
    from contrastive_tutorial.methods.beyond import VICReg

    torch.manual_seed(0)
    x1, x2 = torch.rand(6, 1, 8, 8), torch.rand(6, 1, 8, 8)
    model = BYOL(SmallCNN(1, 16), 16, 8, momentum=0.0, stop_gradient=False)
    detached = BYOL(SmallCNN(1, 16), 16, 8, momentum=0.0)
    detached.load_state_dict(model.state_dict())
    for m in (model, detached):
        m.loss(x1, x2).backward()
    # the same loss value, but the gradient now also flows through the target branch
    assert any(not torch.allclose(a.grad, b.grad) for a, b in zip(model.parameters(), detached.parameters()))
    with pytest.raises(ValueError, match="momentum=0"):
        BYOL(SmallCNN(1, 16), 16, 8, momentum=0.99, stop_gradient=False)
    vicreg = VICReg(SmallCNN(1, 16), 16, 8)
    loss = vicreg.loss(x1, x2)
    loss.backward()
    assert torch.isfinite(loss) and all(p.grad is not None for p in vicreg.encoder.parameters())


def test_effective_rank_and_normalised_std_read_collapse():
    from contrastive_tutorial.evaluate import effective_rank, normalised_std

    g = torch.Generator().manual_seed(0)
    spread = torch.randn(2000, 4, generator=g, dtype=torch.float64)
    line = torch.randn(50, 1, generator=g, dtype=torch.float64) * torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    assert effective_rank(spread) == pytest.approx(4.0, abs=0.1)
    assert effective_rank(line) == pytest.approx(1.0, abs=1e-4)
    # a loop reference for exp(H(sigma / |sigma|_1 + eps))
    sigma = torch.linalg.svdvals(spread[:10])
    p = [float(x) / float(sigma.sum()) + 1e-7 for x in sigma]
    assert effective_rank(spread[:10]) == pytest.approx(math.exp(-sum(x * math.log(x) for x in p)), rel=1e-9)
    offset = spread[:100] * 0.01 + 5.0  # a shared offset: one direction uncentred, four centred
    assert effective_rank(offset) < 1.5 and effective_rank(offset, centre=True) > 3.5
    assert normalised_std(spread) == pytest.approx(0.5, abs=0.02)  # 1/sqrt(4) for directions on the sphere
    assert normalised_std(torch.ones(5, 3)) == pytest.approx(0.0, abs=1e-12)
    for bad in (torch.ones(1, 3), torch.ones(3), torch.tensor([[float("nan"), 1.0], [1.0, 1.0]])):
        with pytest.raises(ValueError):
            effective_rank(bad)
    with pytest.raises(ValueError, match="rows of zeros"):
        normalised_std(torch.zeros(3, 2))
    with pytest.raises(TypeError, match="floating-point"):
        effective_rank(torch.ones(3, 2, dtype=torch.long))


def test_collapse_metrics_are_recorded_during_training():
    from contrastive_tutorial.methods.simclr import collapse_metrics

    g = torch.Generator().manual_seed(0)
    labels = torch.arange(60) % 2
    images = torch.randint(0, 255, (60, 1, 8, 8), generator=g, dtype=torch.uint8)
    data = ImageData(images[:40], labels[:40], images[40:], labels[40:], ["a", "b"])
    model = SimCLR(SmallCNN(1, 8), 8, 4)
    history = train_views(model, data, ImageViews(scale=(0.8, 1.0)), epochs=2, batch_size=20, lr=1e-3,
                          evaluate=lambda: collapse_metrics(model, data, k=5), eval_every=1)
    metrics = collapse_metrics(model, data, k=5)
    assert set(metrics) == {"knn", "uniformity", "rank", "std"}
    assert 0 <= metrics["knn"] <= 1 and 1 <= metrics["rank"] <= 4 and metrics["uniformity"] <= 0
    assert len(history["rank"]) >= 4 and history["step"][0] == 0
