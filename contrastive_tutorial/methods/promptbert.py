r"""PromptBERT (Jiang et al., 2022): a sentence's vector is what BERT would say at [MASK].

- :class:`Template` splits a template such as ``This sentence : "[X]" means [MASK] .`` into
  the token ids before and after the sentence.
- :class:`PromptEncoder` builds ``[CLS] prefix sentence suffix [SEP]`` from token ids (the
  sentence alone is truncated, so the [MASK] is never cut off), and returns the last hidden
  state at [MASK]. With ``denoise=True`` it subtracts the template's own [MASK] vector: the
  template alone, its tokens after the sentence slot at the positions a sentence of that length
  leaves them, as in the official code (kongds/Prompt-BERT, which shifts the position ids).
- :func:`template_contrast_loss`: unsupervised PromptBERT, SimCSE's loss between the vectors
  of one sentence under two different templates, each denoised by its own template.
- :func:`mlm_topk_representation`: the alternative the paper sets aside, the MLM head's
  top-k tokens averaged by probability; it needs a model with an MLM head.
- :func:`static_token_average`: the average of a sentence's static token embeddings, with
  the biased tokens (subwords, punctuation, frequent tokens) optionally dropped, the paper's
  diagnosis of why raw BERT sentence vectors are poor.

Taught in the chapter "PromptBERT".
"""

from __future__ import annotations

import string
from collections import Counter
from pathlib import Path
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from .. import checks
from ..losses import simcse_loss
from ..scale import gathered
from ..encoders import _usable_positions, map_by_length
from ..train import History, adam, eval_mode, linear_schedule, train
from ..views.text import MASK, SENTENCE, Template  # noqa: F401 (re-exported: the template syntax)

__all__ = [
    "Template",
    "PromptEncoder",
    "end_with_period",
    "template_contrast_loss",
    "TemplateContrast",
    "train_prompt_contrast",
    "mlm_topk_representation",
    "load_mlm",
    "save_prompt_encoder",
    "load_prompt_encoder",
    "token_frequencies",
    "static_token_average",
]


def end_with_period(sentence: str) -> str:
    """``sentence + "."`` unless it is empty or already ends in ``.``, ``?``, ``"`` or ``'``.

    The official PromptBERT evaluation does this to every STS sentence before filling the
    template, so that each reads as a finished sentence inside the quotes.
    """
    return sentence + "." if sentence and sentence[-1] not in ".?\"'" else sentence


class PromptEncoder(nn.Module):
    r"""Sentence vectors from the [MASK] of a prompt: :math:`h = H^{(L)}_{[\mathrm{MASK}]}(\text{template}(x))`.

    With ``denoise=True``, :math:`h - \hat h` where :math:`\hat h` is the [MASK] state of the
    template alone, its tokens at the positions they take around a sentence of length
    :math:`\ell` (:meth:`template_bias`): the part of :math:`h` that the template alone explains.

    Args:
        model: a ``transformers`` encoder (``AutoModel``) or masked LM
            (``AutoModelForMaskedLM``, whose encoder is used).
        tokenizer: its tokenizer (it needs a mask token).
        template: e.g. ``'This sentence : "[X]" means [MASK] .'``.
        max_length: tokens kept of the sentence itself; the template is added around it.
        mlp_only_train: as SimCSE's unsupervised recipe, a Linear+tanh on the vector in
            training only (the official unsupervised PromptBERT does the same).
        denoise: subtract :meth:`template_bias` from the [MASK] state.
        mlp: the Linear+tanh to use (shared between templates by :meth:`with_template`);
            default a freshly initialised one.
        end_period: as the official evaluation (kongds/Prompt-BERT, ``evaluation.py``),
            :meth:`encode` and :meth:`encode_variants` add ``.`` to every sentence that does not
            end in ``.``, ``?``, ``"`` or ``'`` before placing it in the template (see
            :func:`end_with_period`); ``False`` evaluates the sentences as given. Training
            (``forward``) always takes them as given.
    """

    def __init__(
        self,
        model: nn.Module,
        tokenizer,
        template: str,
        denoise: bool = False,
        max_length: int = 32,
        mlp_only_train: bool = True,
        mlp: nn.Module | None = None,
        end_period: bool = True,
        eval_max_length: int | None = None,
    ) -> None:
        super().__init__()
        if max_length < 1:
            raise ValueError(f"max_length must be >= 1, got {max_length}")
        self.model, self.tokenizer = model, tokenizer
        self.encoder = getattr(model, "base_model", model)
        self.template = Template.parse(template, tokenizer)
        self.denoise, self.max_length, self.mlp_only_train = denoise, max_length, mlp_only_train
        self.end_period = end_period
        room = _usable_positions(self.encoder.config, 512) - len(self.template.prefix) - len(self.template.suffix) - 2
        if eval_max_length is not None and not 1 <= eval_max_length <= room:
            raise ValueError(f"eval_max_length must lie in [1, {room}] (the model's positions less the template), "
                             f"got {eval_max_length}")
        self._eval_max_length_given = eval_max_length is not None  # else: all the room this template leaves
        self.eval_max_length = eval_max_length if eval_max_length is not None else room
        hidden = self.encoder.config.hidden_size
        self.mlp = mlp if mlp is not None else nn.Sequential(nn.Linear(hidden, hidden), nn.Tanh()).to(self.device)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def with_template(self, template: str, denoise: bool | None = None,
                      end_period: bool | None = None) -> "PromptEncoder":
        """The same model and MLP (shared weights) under another template (or evaluation rule).

        An ``eval_max_length`` given at construction carries over; the default (all the positions
        the template leaves) is recomputed for the new template, which may be longer."""
        other = PromptEncoder(
            self.model, self.tokenizer, template, self.denoise if denoise is None else denoise,
            self.max_length, self.mlp_only_train, mlp=self.mlp,
            end_period=self.end_period if end_period is None else end_period,
            eval_max_length=self.eval_max_length if self._eval_max_length_given else None,
        )
        return other.train(self.training)

    def tokenize(self, sentences: Sequence[str], max_length: int | None = None) -> dict[str, Tensor]:
        """``input_ids``, ``attention_mask``, ``mask_position`` and ``sentence_length`` of the prompted batch.

        The sentence is tokenised alone and truncated to ``max_length`` tokens (default: the
        training length ``self.max_length``; the evaluation API uses ``self.eval_max_length``,
        the model's positions less the template, so STS sentences are not cut), then placed
        into the template, so the [MASK] is present and located exactly for any length.
        """
        if isinstance(sentences, str) or not all(isinstance(s, str) for s in sentences):
            raise TypeError("sentences must be a sequence of strings")
        if len(sentences) == 0:
            raise ValueError("sentences is empty")
        tok, t = self.tokenizer, self.template
        pieces = tok(list(sentences), add_special_tokens=False, truncation=True,
                     max_length=max_length or self.max_length)["input_ids"]
        rows = [[tok.cls_token_id, *t.prefix, *p, *t.suffix, tok.sep_token_id] for p in pieces]
        width = max(map(len, rows))
        ids = torch.full((len(rows), width), tok.pad_token_id, dtype=torch.long)
        attention = torch.zeros_like(ids)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = torch.tensor(row)
            attention[i, : len(row)] = 1
        lengths = torch.tensor([len(p) for p in pieces])
        positions = torch.tensor([t.mask_offset(len(p)) for p in pieces])
        batch = {"input_ids": ids, "attention_mask": attention, "mask_position": positions, "sentence_length": lengths}
        return {k: v.to(self.device) for k, v in batch.items()}

    def _mask_states(self, batch: dict[str, Tensor]) -> Tensor:
        out = self.encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        rows = torch.arange(len(batch["input_ids"]), device=self.device)
        return out.last_hidden_state[rows, batch["mask_position"]]

    def template_bias(self, lengths: Tensor) -> Tensor:
        r"""``(B, D)`` [MASK] states :math:`\hat h(\ell)` of the template alone, one per sentence length.

        Input ``[CLS] prefix <filler x l> suffix [SEP]`` with the :math:`\ell` filler tokens
        masked out of attention: no sentence token is seen, yet every template token sits at the
        position it takes around a sentence of :math:`\ell` tokens (the official code passes
        position ids shifted by :math:`\ell`). Holding the places works for learnt positions
        (BERT), counted ones (RoBERTa numbers every non-padding token) and rotary ones (RoFormer,
        which takes no position ids at all); ``tests/test_promptbert.py`` checks it against the
        shifted position ids on BERT.
        """
        tok, t = self.tokenizer, self.template
        filler = tok.unk_token_id if tok.unk_token_id is not None else tok.cls_token_id  # any id but padding
        distinct, inverse = torch.unique(lengths.cpu(), return_inverse=True)
        rows = [[tok.cls_token_id, *t.prefix, *[filler] * n, *t.suffix, tok.sep_token_id] for n in distinct.tolist()]
        ids = torch.full((len(rows), max(map(len, rows))), tok.pad_token_id)
        attention = torch.zeros_like(ids)
        for i, (row, n) in enumerate(zip(rows, distinct.tolist())):
            ids[i, : len(row)] = torch.tensor(row)
            attention[i, : len(row)] = 1
            attention[i, 1 + len(t.prefix) : 1 + len(t.prefix) + n] = 0  # the sentence's places, unseen
        out = self.encoder(input_ids=ids.to(self.device), attention_mask=attention.to(self.device))
        at_mask = torch.tensor([t.mask_offset(n) for n in distinct.tolist()], device=self.device)
        return out.last_hidden_state[torch.arange(len(rows), device=self.device), at_mask][inverse.to(self.device)]

    def forward(self, sentences: Sequence[str], max_length: int | None = None) -> Tensor:
        """``(B, D)`` [MASK] vectors (denoised if ``self.denoise``; through the MLP in training);
        sentences truncated to ``max_length`` (default: the training length)."""
        batch = self.tokenize(sentences, max_length)
        vectors = self._mask_states(batch)
        if self.denoise:
            vectors = vectors - self.template_bias(batch["sentence_length"])
        if self.training or not self.mlp_only_train:
            vectors = self.mlp(vectors)
        return vectors

    @torch.inference_mode()
    def encode_variants(self, sentences: Sequence[str], batch_size: int = 128) -> dict[str, Tensor]:
        """Eval-mode ``{"raw": (N, D), "denoised": (N, D)}`` from one pass, on the CPU, in input order.

        (Without the MLP, i.e. with ``mlp_only_train``; what the chapter compares.)
        """
        if not self.mlp_only_train:
            raise ValueError("encode_variants compares vectors without the MLP; use encode with mlp_only_train=False")

        def variants(chunk: list[str]) -> dict[str, Tensor]:
            batch = self.tokenize(chunk, self.eval_max_length)
            vectors = self._mask_states(batch)
            return {"raw": vectors.float().cpu(),
                    "denoised": (vectors - self.template_bias(batch["sentence_length"])).float().cpu()}

        with eval_mode(self):
            return map_by_length(self._evaluated(sentences), batch_size, variants)

    @torch.inference_mode()
    def encode(self, sentences: Sequence[str], batch_size: int = 128) -> Tensor:
        """Eval-mode vectors ``(N, D)`` on the CPU, in input order (what an STS evaluation calls)."""
        with eval_mode(self):
            return map_by_length(self._evaluated(sentences), batch_size,
                                 lambda chunk: self(chunk, self.eval_max_length).float().cpu())

    def _evaluated(self, sentences: Sequence[str]) -> list[str]:
        if isinstance(sentences, str):
            raise TypeError("sentences must be a sequence of strings, not one string")
        return [end_with_period(s) for s in sentences] if self.end_period else list(sentences)


# --------------------------------------------------------------------------- training
def template_contrast_loss(first: PromptEncoder, second: PromptEncoder, sentences: Sequence[str], temperature: float = 0.05) -> Tensor:
    r"""Unsupervised PromptBERT: sentence :math:`i` under template 1 must pick itself under template 2.

    :math:`\ell_i = -\log \frac{e^{\cos(h_i, h'_i)/\tau}}{\sum_j e^{\cos(h_i, h'_j)/\tau}}`, where
    :math:`h` and :math:`h'` are the (denoised) [MASK] vectors of the two templates:
    :func:`~contrastive_tutorial.losses.simcse_loss` with a template change, on top of
    dropout, as the positive view.
    """
    if first.model is not second.model:
        raise ValueError("first and second must share one model (use PromptEncoder.with_template)")
    return simcse_loss(*gathered(first(sentences), second(sentences)), temperature)


class TemplateContrast(nn.Module):
    """Unsupervised PromptBERT as a method: ``encoder``'s template and ``second_template``, both
    denoised in training, sharing one model; the loss of a batch of sentences is
    :func:`template_contrast_loss` at ``temperature``."""

    def __init__(self, encoder: PromptEncoder, second_template: str, temperature: float = 0.05) -> None:
        super().__init__()
        self.first = encoder.with_template(encoder.template.text, denoise=True)
        self.second = encoder.with_template(second_template, denoise=True)
        self.temperature = temperature

    def loss(self, sentences: list[str]) -> Tensor:
        return template_contrast_loss(self.first, self.second, sentences, self.temperature)


def train_prompt_contrast(
    encoder: PromptEncoder,
    second_template: str,
    sentences: Sequence[str],
    *,
    batch_size: int = 256,
    lr: float = 1e-5,
    temperature: float = 0.05,
    max_steps: int | None = None,
    evaluate: Callable[[PromptEncoder], dict[str, float]] | None = None,
    eval_every: int | None = None,
    seed: int = 0,
    amp: bool | str | None = None,
    clip_grad_norm: float | None = None,
    progress: bool | None = None,
    checkpoint: str | None = None,
) -> History:
    """Train with :class:`TemplateContrast` (both templates denoised during training).

    Defaults follow the official unsupervised BERT run: batch 256, lr 1e-5, one epoch,
    :math:`\\tau = 0.05`, linear decay. Evaluation uses ``encoder``'s template as it is set
    (the official run evaluates without denoising). With ``evaluate`` the best
    ``dev_spearman`` checkpoint is kept.
    """
    from .simcse import _text_batches

    sentences = list(sentences)
    method = TemplateContrast(encoder, second_template, temperature)
    if len(sentences) < batch_size:
        raise ValueError(f"batch_size ({batch_size}) must not exceed the number of sentences ({len(sentences)})")
    batches = _text_batches(sentences, batch_size, seed)
    steps = len(batches) if max_steps is None else min(len(batches), max_steps)
    torch.manual_seed(seed)
    optimizer = adam(encoder.parameters(), lr=lr)
    return train(
        method, batches, optimizer, steps=steps, scheduler=linear_schedule(optimizer, steps), amp=amp,
        clip_grad_norm=clip_grad_norm, evaluate=(lambda: evaluate(encoder)) if evaluate is not None else None,
        eval_every=eval_every, keep="best:dev_spearman" if evaluate is not None else "last",
        checkpoint=checkpoint, progress=progress, desc="template contrast",
    )


# --------------------------------------------------------------------------- MLM head
PROMPT_FILE = "prompt_encoder.json"


def save_prompt_encoder(encoder: PromptEncoder, folder) -> Path:
    """Save ``encoder`` so that :func:`load_prompt_encoder` rebuilds it: the transformer and
    tokenizer (any ``transformers`` loader reads them) and ``prompt_encoder.json`` (template,
    denoising, end-period rule, lengths, and the MLP when it is kept at test time).

    A sentence-transformers folder cannot hold PromptBERT's representation (the [MASK] state
    of the sentence placed inside a template), so this is a transformers folder.
    """
    import json

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    encoder.model.save_pretrained(folder)
    encoder.tokenizer.save_pretrained(folder)
    settings = {"template": encoder.template.text, "denoise": encoder.denoise, "max_length": encoder.max_length,
                "mlp_only_train": encoder.mlp_only_train, "end_period": encoder.end_period,
                "eval_max_length": encoder.eval_max_length if encoder._eval_max_length_given else None}
    (folder / PROMPT_FILE).write_text(json.dumps(settings, indent=1) + "\n")
    if not encoder.mlp_only_train:
        torch.save(encoder.mlp.state_dict(), folder / "prompt_mlp.pt")
    return folder


def load_prompt_encoder(folder) -> PromptEncoder:
    """The :class:`PromptEncoder` that :func:`save_prompt_encoder` wrote to ``folder``."""
    import json

    from transformers import AutoModel, AutoTokenizer

    folder = Path(folder)
    if not (folder / PROMPT_FILE).exists():
        raise ValueError(f"{folder} holds no {PROMPT_FILE}: not a folder written by save_prompt_encoder")
    settings = json.loads((folder / PROMPT_FILE).read_text())
    encoder = PromptEncoder(AutoModel.from_pretrained(folder), AutoTokenizer.from_pretrained(folder), **settings)
    if not settings["mlp_only_train"]:
        encoder.mlp.load_state_dict(torch.load(folder / "prompt_mlp.pt", map_location="cpu"))
    return encoder


def load_mlm(model_id: str):
    """Tokenizer and ``AutoModelForMaskedLM`` for ``model_id``, refusing a model whose MLM head would be random.

    ``transformers`` would silently initialise a missing head (e.g. for
    ``sentence-transformers/all-MiniLM-L6-v2``, which ships only the encoder); here that is
    an error.
    """
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    from ..encoders import resolve_model_id

    path = resolve_model_id(model_id)
    model, info = AutoModelForMaskedLM.from_pretrained(path, output_loading_info=True)
    head_missing = sorted(k for k in info["missing_keys"] if not k.startswith(model.base_model_prefix + "."))
    if head_missing:
        raise ValueError(
            f"{model_id!r} has no pretrained MLM head (missing {head_missing[0]!r} and {len(head_missing) - 1} more); "
            "the MLM top-k representation needs one, e.g. bert-base-uncased (full profile)"
        )
    return AutoTokenizer.from_pretrained(path), model


@torch.inference_mode()
def mlm_topk_representation(encoder: PromptEncoder, sentences: Sequence[str], k: int = 10, batch_size: int = 64) -> Tensor:
    r"""The paper's other prompt representation: :math:`v = \sum_{t \in \mathrm{top}k} p(t)\, W_t / \sum_{t} p(t)`.

    :math:`p` is the MLM head's distribution at [MASK] and :math:`W_t` the static
    embedding of token :math:`t`. Raises ``ValueError`` when ``encoder.model`` has no MLM
    head (load it with :func:`load_mlm`). The MLM runs on ``batch_size`` sentences at a time
    (its logits are ``batch x length x vocabulary``), so memory does not grow with the data.
    """
    model = encoder.model
    if not hasattr(model, "get_output_embeddings") or model.get_output_embeddings() is None or model is encoder.encoder:
        raise ValueError(
            "mlm_topk_representation needs a PromptEncoder built on a masked LM (AutoModelForMaskedLM, "
            "see load_mlm); this model has no MLM head"
        )
    k = checks.count(k, "k")
    static = model.get_input_embeddings().weight.float()

    def represent(chunk: list[str]) -> Tensor:
        batch = encoder.tokenize(chunk, encoder.eval_max_length)
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        rows = torch.arange(len(logits), device=logits.device)
        top = logits[rows, batch["mask_position"]].float().softmax(-1).topk(k, dim=-1)
        weights = top.values / top.values.sum(-1, keepdim=True)
        return (weights.unsqueeze(-1) * static[top.indices]).sum(1).cpu()

    with eval_mode(encoder):
        return map_by_length(encoder._evaluated(sentences), batch_size, represent)


# --------------------------------------------------------------------------- static token bias
def token_frequencies(tokenizer, sentences: Sequence[str]) -> Counter:
    """How often each token id occurs in ``sentences`` (a corpus estimate of token frequency)."""
    counts: Counter = Counter()
    for ids in tokenizer(list(sentences), add_special_tokens=False)["input_ids"]:
        counts.update(ids)
    return counts


def _is_punctuation(token: str) -> bool:
    return all(ch in string.punctuation for ch in token)


@torch.no_grad()
def static_token_average(
    model: nn.Module, tokenizer, sentences: Sequence[str], drop: Sequence[str] = (), frequent: set[int] | None = None
) -> Tensor:
    r"""``(N, D)`` averages of the static token embeddings :math:`W_t` of each sentence (no transformer layer).

    ``drop`` removes the token kinds the paper finds biased: ``"subword"`` (``##`` pieces),
    ``"punctuation"``, ``"uppercase"`` (tokens with a capital letter, for cased models) and
    ``"frequent"`` (ids in ``frequent``). A sentence left with no token keeps all of its
    tokens.
    """
    kinds = {"subword", "punctuation", "uppercase", "frequent"}
    if not set(drop) <= kinds:
        raise ValueError(f"drop must be a subset of {sorted(kinds)}, got {sorted(drop)}")
    if "frequent" in drop and frequent is None:
        raise ValueError("drop='frequent' needs the set of frequent token ids")
    table = model.get_input_embeddings().weight.detach().float().cpu()
    out = []
    for ids in tokenizer(list(sentences), add_special_tokens=False)["input_ids"]:
        tokens = tokenizer.convert_ids_to_tokens(ids)

        def biased(i: int, t: str) -> bool:
            return (
                ("subword" in drop and t.startswith("##"))
                or ("punctuation" in drop and _is_punctuation(t))
                or ("uppercase" in drop and any(c.isupper() for c in t))
                or ("frequent" in drop and i in frequent)
            )

        kept = [i for i, t in zip(ids, tokens) if not biased(i, t)] or ids
        out.append(table[kept].mean(0) if kept else torch.zeros(table.shape[1]))
    return torch.stack(out)
