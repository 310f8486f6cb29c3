"""SCL fine-tuning and adversarial contrastive learning, against loop references from the papers' equations."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from contrastive_tutorial.encoders import TextEncoder
from contrastive_tutorial.methods.adversarial import (
    adversarial_accuracy,
    adversarial_delta,
    encode_embeddings,
    normalise_per_example,
    scal_loss,
    uscal_loss,
)
from contrastive_tutorial.methods.scl import (
    TextClassifier,
    accuracy,
    few_shot_indices,
    flip_labels,
    scl_objective,
    train_classifier,
)
from contrastive_tutorial.losses import simcse_loss

SENTENCES = ["a cat sat on the mat", "stocks fell sharply today", "the weather is fine", "he plays chess well",
             "rain is expected tomorrow", "the market rallied"]


def _scl_reference(logits, h, labels, lambd, tau, reduction="mean") -> float:
    """Gunel et al.'s (1 - lambda) CE + lambda SCL, with loops in float64: the SCL term summed over the
    anchors with a positive (the paper's equation) or their mean (the package's default)."""
    logits, h = logits.double(), h.double()
    n = len(labels)
    ce = sum(-(logits[i, labels[i]] - torch.logsumexp(logits[i], 0)) for i in range(n)) / n
    phi = [h[i] / h[i].norm() for i in range(n)]
    terms = []
    for i in range(n):
        same = [j for j in range(n) if j != i and labels[j] == labels[i]]
        if not same:
            continue
        denominator = sum(math.exp(float(phi[i] @ phi[k]) / tau) for k in range(n) if k != i)
        terms.append(-sum(math.log(math.exp(float(phi[i] @ phi[j]) / tau) / denominator) for j in same) / len(same))
    scl = sum(terms) if reduction == "sum" else (sum(terms) / len(terms) if terms else 0.0)
    return (1 - lambd) * float(ce) + lambd * scl


@pytest.mark.parametrize("lambd,tau", [(0.0, 0.3), (0.5, 0.3), (0.9, 0.1), (1.0, 0.7)])
def test_scl_objective_matches_loop_reference(lambd, tau):
    g = torch.Generator().manual_seed(0)
    logits, h = torch.randn(7, 3, generator=g), torch.randn(7, 5, generator=g)
    labels = torch.tensor([0, 1, 2, 0, 1, 0, 2])
    got = scl_objective(logits, h, labels, lambd, tau).item()
    assert got == pytest.approx(_scl_reference(logits, h, labels.tolist(), lambd, tau), rel=1e-5)
    summed = scl_objective(logits, h, labels, lambd, tau, reduction="sum").item()
    assert summed == pytest.approx(_scl_reference(logits, h, labels.tolist(), lambd, tau, "sum"), rel=1e-5)
    with pytest.raises(ValueError, match="reduction must be 'mean' or 'sum'"):
        scl_objective(logits, h, labels, lambd, tau, reduction="total")


def test_scl_objective_edge_cases_and_errors():
    logits, h = torch.randn(3, 3), torch.randn(3, 4)
    unique = torch.tensor([0, 1, 2])  # no class twice: the contrastive term has no anchor
    ce = F.cross_entropy(logits, unique)
    torch.testing.assert_close(scl_objective(logits, h, unique, 0.5), 0.5 * ce)
    with pytest.raises(ValueError, match="lambd"):
        scl_objective(logits, h, unique, 1.5)
    with pytest.raises(ValueError, match="labels"):
        scl_objective(logits, h, torch.tensor([0, 1]), 0.5)
    with pytest.raises(ValueError, match="logits"):
        scl_objective(torch.randn(2, 3), h, unique, 0.5)
    with pytest.raises(ValueError, match="temperature"):
        scl_objective(logits, h, torch.tensor([0, 0, 1]), 0.5, temperature=0.0)


def test_scl_objective_gradient_flows_to_embeddings():
    logits, h = torch.randn(4, 2, requires_grad=True), torch.randn(4, 3, requires_grad=True)
    scl_objective(logits, h, torch.tensor([0, 0, 1, 1]), 0.9).backward()
    assert torch.isfinite(h.grad).all() and h.grad.abs().sum() > 0


def test_flip_labels_changes_exactly_the_fraction_to_other_classes():
    labels = [i % 4 for i in range(40)]
    noisy = flip_labels(labels, 0.25, 4, seed=1)
    changed = [i for i in range(40) if noisy[i] != labels[i]]
    assert len(changed) == 10 and all(0 <= y < 4 for y in noisy)
    assert flip_labels(labels, 0.0, 4) == labels
    with pytest.raises(ValueError, match="fraction"):
        flip_labels(labels, 1.2, 4)


def test_few_shot_indices_takes_per_class_examples():
    labels = [0] * 10 + [1] * 5
    idx = few_shot_indices(labels, 3, seed=0)
    assert len(idx) == 6 and sorted(labels[i] for i in idx) == [0, 0, 0, 1, 1, 1]
    with pytest.raises(ValueError, match="fewer than per_class"):
        few_shot_indices(labels, 6)


def test_fgm_on_a_linear_loss_is_the_normalised_gradient_and_pgd_agrees():
    g = torch.Generator().manual_seed(0)
    x, w = torch.randn(3, 4, 5, generator=g), torch.randn(3, 4, 5, generator=g)

    def loss_of(e):
        return (w * e).sum()

    expected = 0.3 * w / w.flatten(1).norm(dim=1).view(-1, 1, 1)
    torch.testing.assert_close(adversarial_delta(loss_of, x, 0.3), expected)
    torch.testing.assert_close(adversarial_delta(loss_of, x, 0.3, steps=5), expected, rtol=1e-5, atol=1e-6)
    assert adversarial_delta(loss_of, x, 0.0).abs().sum() == 0


def test_pgd_stays_in_the_ball_and_increases_the_loss():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    x = torch.randn(4, 3, 5)

    def loss_of(e):
        return net(e).pow(2).sum()

    for steps in (1, 3):
        delta = adversarial_delta(loss_of, x, 0.5, steps=steps)
        assert (delta.flatten(1).norm(dim=1) <= 0.5 + 1e-5).all()
        assert loss_of(x + delta) > loss_of(x)
    assert not any(p.grad is not None for p in net.parameters())  # no gradient left on the model
    with pytest.raises(ValueError, match="epsilon"):
        adversarial_delta(loss_of, x, -1.0)
    with pytest.raises(ValueError, match="steps"):
        adversarial_delta(loss_of, x, 0.1, steps=0)
    with pytest.raises(ValueError, match="B, T, D"):
        adversarial_delta(loss_of, x[0], 0.1)
    n = normalise_per_example(torch.randn(2, 3, 4))
    torch.testing.assert_close(n.flatten(1).norm(dim=1), torch.ones(2))


@pytest.fixture
def classifier(tiny_encoder_parts):
    tokenizer, model = tiny_encoder_parts
    torch.manual_seed(0)
    return TextClassifier(TextEncoder(copy.deepcopy(model), tokenizer, pooler="cls_before_pooler"), n_classes=2).eval()


def test_encode_embeddings_equals_the_encoder_on_token_ids(classifier):
    encoder = classifier.encoder
    batch = encoder.tokenize(SENTENCES)
    words = encoder.model.get_input_embeddings()(batch["input_ids"])
    with torch.no_grad():
        torch.testing.assert_close(encode_embeddings(encoder, words, batch["attention_mask"]), encoder(batch))


def test_scal_and_uscal_at_epsilon_zero_reduce_to_their_clean_terms(classifier):
    labels = torch.tensor([0, 1, 0, 1, 0, 1])
    with torch.no_grad():
        h = classifier.encoder(SENTENCES)
        ce = F.cross_entropy(classifier.head(h), labels)
        con = simcse_loss(h, h, 0.05)
    got = scal_loss(classifier, SENTENCES, labels, epsilon=0.0)
    assert got.item() == pytest.approx((2 * ce + con).item(), rel=1e-5)
    got.backward()
    assert all(torch.isfinite(p.grad).all() for p in classifier.parameters() if p.grad is not None)
    from contrastive_tutorial.methods.adversarial import SCAL, adversarial_training_loss

    plain = adversarial_training_loss(classifier, SENTENCES, labels, epsilon=0.0)
    assert plain.item() == pytest.approx(2 * ce.item(), rel=1e-5)  # CE(x) + CE(x + 0)
    at = SCAL(classifier, 0.5, contrastive=False).loss(SENTENCES, labels)
    assert at.item() == pytest.approx(adversarial_training_loss(classifier, SENTENCES, labels, 0.5).item(), rel=1e-5)
    assert at.item() > plain.item()  # the perturbation raises the label loss
    encoder = classifier.encoder
    assert uscal_loss(encoder, SENTENCES, epsilon=0.0, alpha=0.5).item() == pytest.approx(2 * con.item(), rel=1e-5)
    with pytest.raises(ValueError, match="alpha"):
        uscal_loss(encoder, SENTENCES, 0.1, alpha=1.0)


def test_perturbation_raises_the_label_loss_and_lowers_adversarial_accuracy(classifier):
    labels = [0, 1, 0, 1, 0, 1]
    clean = accuracy(classifier, SENTENCES, labels)
    assert adversarial_accuracy(classifier, SENTENCES, labels, 0.0) == clean
    from contrastive_tutorial.methods.adversarial import adversarial_predictions
    from contrastive_tutorial.methods.scl import predict

    predicted = predict(classifier, SENTENCES, batch_size=4)
    assert predicted.shape == (6,) and np.mean(predicted == np.array(labels)) == pytest.approx(clean)
    assert (adversarial_predictions(classifier, SENTENCES, labels, 0.0, batch_size=4) == predicted).all()
    with pytest.raises(TypeError, match="one string"):
        predict(classifier, "a cat sat")
    with pytest.raises(ValueError, match="of one length"):
        adversarial_predictions(classifier, SENTENCES, labels[:3], 0.1)
    assert adversarial_accuracy(classifier, SENTENCES, labels, 5.0, steps=3) <= clean
    labels_t = torch.tensor(labels)
    assert scal_loss(classifier, SENTENCES, labels_t, 1.0).item() > scal_loss(classifier, SENTENCES, labels_t, 0.0).item()


def test_train_classifier_runs_and_checks_its_labels(classifier):
    history = train_classifier(classifier, SENTENCES, [0, 1, 0, 1, 0, 1], lambd=0.9, epochs=2, batch_size=3, lr=1e-3)
    assert len(history) == 2 and all(math.isfinite(loss) for loss in history["loss"])
    with pytest.raises(ValueError, match="labels must lie"):
        train_classifier(classifier, SENTENCES, [0, 1, 2, 0, 1, 0], lambd=0.5, epochs=1)
    with pytest.raises(ValueError, match="same length"):
        train_classifier(classifier, SENTENCES, [0, 1], lambd=0.5, epochs=1)
    with pytest.raises(ValueError, match="n_classes"):
        TextClassifier(classifier.encoder, 1)


def test_fine_tune_draws_the_shots_flips_labels_and_leaves_the_base_alone(classifier):
    from contrastive_tutorial.data import LabelledText
    from contrastive_tutorial.methods.scl import fine_tune

    task = LabelledText(SENTENCES * 2, [0, 1] * 6, SENTENCES[:2], [0, 1], ["even", "odd"])
    seen = {}

    def trainer(model, texts, labels, **kwargs):
        seen.update(model=model, texts=texts, labels=labels, kwargs=kwargs)

    base = classifier.encoder
    model = fine_tune(base, task, 3, seed=1, noise=1 / 3, trainer=trainer, epochs=7)
    assert model is seen["model"] and model.encoder is not base and model.n_classes == 2
    assert len(seen["texts"]) == 6 and seen["kwargs"] == {"seed": 1, "epochs": 7}
    truth = dict(zip(task.train_texts, task.train_labels))
    assert sum(label != truth[t] for t, label in zip(seen["texts"], seen["labels"])) == 2  # a third flipped
    fine_tune(base, task, None, seed=0, trainer=trainer)
    assert len(seen["texts"]) == 12
    before = [p.clone() for p in base.parameters()]
    fine_tune(base, task, 2, seed=0, epochs=1, batch_size=4, lr=1e-2)  # the real train_classifier
    assert all(torch.equal(a, b) for a, b in zip(before, base.parameters()))


def test_train_scal_and_uscal_run_and_check_arguments(classifier):
    from contrastive_tutorial.methods.adversarial import SCAL, USCAL, train_scal, train_uscal
    from contrastive_tutorial.methods.simcse import train_simcse

    history = train_scal(classifier, SENTENCES, [0, 1, 0, 1, 0, 1], epsilon=0.5, epochs=2, batch_size=3, lr=1e-3)
    assert len(history) == 2 and all(math.isfinite(loss) for loss in history["loss"])
    with pytest.raises(ValueError, match="lambd"):
        train_classifier(classifier, SENTENCES, [0, 1] * 3, lambd=0.5, epochs=1, method=SCAL(classifier, 0.5))
    encoder = classifier.encoder
    history = train_uscal(encoder, SENTENCES * 2, epsilon=0.5, alpha=0.5, batch_size=4, max_steps=2, progress=False)
    assert all(math.isfinite(loss) for loss in history["loss"])
    with pytest.raises(ValueError, match="alpha"):
        train_uscal(encoder, SENTENCES, epsilon=0.1, alpha=1.5, max_steps=1)
    with pytest.raises(ValueError, match="list of sentences"):
        train_simcse(encoder, {"anchor": SENTENCES, "positive": SENTENCES}, method=USCAL(encoder, 0.5))
    with pytest.raises(TypeError, match="sets the method"):
        train_uscal(encoder, SENTENCES, epsilon=0.1, method=USCAL(encoder, 0.5))


def test_adversarial_positives_are_harder_and_the_mode_is_restored(classifier):
    from contrastive_tutorial.methods.adversarial import positive_cosines

    from contrastive_tutorial.encoders import set_dropout

    encoder = copy.deepcopy(classifier.encoder).eval()
    set_dropout(encoder, 0.0)  # without dropout the views of SimCSE coincide: cosine 1
    at_zero = positive_cosines(encoder, SENTENCES, 0.0)
    assert at_zero == pytest.approx({"dropout": 1.0, "adversarial": 1.0})
    assert positive_cosines(encoder, SENTENCES, 1.0)["adversarial"] < 0.99
    assert not encoder.training
