"""Evaluation of frozen representations: embedding a data set, linear probe, kNN.

A good self-supervised encoder makes classes linearly separable (linear probe) and
puts same-class examples near each other (kNN), without ever seeing a label in training.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["embed", "linear_probe_accuracy", "knn_accuracy"]


@torch.no_grad()
def embed(
    encoder: nn.Module, inputs: Tensor, batch_size: int = 512, device: torch.device | str | None = None
) -> Tensor:
    """Run ``encoder`` in eval mode over ``inputs`` in batches; return ``(N, D)`` features on the CPU.

    ``uint8`` images are scaled to [0, 1] first.
    """
    device = torch.device(device) if device is not None else next(encoder.parameters()).device
    was_training = encoder.training
    encoder.eval()
    out = []
    for start in range(0, len(inputs), batch_size):
        batch = inputs[start : start + batch_size].to(device)
        if batch.dtype == torch.uint8:
            batch = batch.float() / 255
        out.append(encoder(batch).float().cpu())
    encoder.train(was_training)
    return torch.cat(out)


def _check_split(features: Tensor, labels: Tensor, name: str) -> None:
    if features.dim() != 2:
        raise ValueError(f"{name}_features must have shape (N, D), got {tuple(features.shape)}")
    if labels.shape != (features.shape[0],):
        raise ValueError(
            f"{name}_labels must have shape ({features.shape[0]},) to match {name}_features, got {tuple(labels.shape)}"
        )


def _to_numpy(features: Tensor, labels: Tensor) -> tuple[np.ndarray, np.ndarray]:
    return features.detach().cpu().double().numpy(), labels.detach().cpu().numpy()


def linear_probe_accuracy(
    train_features: Tensor, train_labels: Tensor, test_features: Tensor, test_labels: Tensor, C: float = 1.0
) -> float:
    """Test accuracy of a logistic regression trained on frozen, standardised features."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    _check_split(train_features, train_labels, "train")
    _check_split(test_features, test_labels, "test")
    (x_tr, y_tr), (x_te, y_te) = _to_numpy(train_features, train_labels), _to_numpy(test_features, test_labels)
    probe = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000))
    probe.fit(x_tr, y_tr)
    return float(probe.score(x_te, y_te))


def knn_accuracy(
    train_features: Tensor, train_labels: Tensor, test_features: Tensor, test_labels: Tensor, k: int = 20
) -> float:
    """Test accuracy of a majority vote among the ``k`` most cosine-similar training examples."""
    _check_split(train_features, train_labels, "train")
    _check_split(test_features, test_labels, "test")
    if not 1 <= k <= len(train_features):
        raise ValueError(f"k must lie in [1, {len(train_features)}], got {k}")
    sim = F.normalize(test_features.float(), dim=1) @ F.normalize(train_features.float(), dim=1).T
    neighbours = train_labels[sim.topk(k, dim=1).indices]
    n_classes = int(max(train_labels.max(), test_labels.max())) + 1
    votes = F.one_hot(neighbours.long(), n_classes).sum(1)
    return float((votes.argmax(1) == test_labels.to(votes.device)).float().mean())
