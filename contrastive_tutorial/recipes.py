"""Each chapter's main training run as a named recipe, for the command line and ``torchrun``.

``python -m contrastive_tutorial train RECIPE --profile quick|full --out DIR`` runs one recipe
with the chapter's profile settings (``--set key=value`` overrides one), keeps its checkpoint in
the run store ``DIR`` (:mod:`~contrastive_tutorial.runs`: a rerun loads the finished run, an
interrupted one resumes) and writes ``<recipe>.json`` beside it: the settings, the history and
the chapter's headline scores. Under ``torchrun --nproc_per_node N`` every process trains on
its slice of each global batch with negatives gathered across processes
(:func:`~contrastive_tutorial.train.train`); on GPUs, batch norm becomes ``SyncBatchNorm``.

A recipe is ``fn(P, seed) -> (history, scores)``, or ``(history, scores, save)`` for a text
recipe, where ``save(folder)`` writes the trained text encoder as a sentence-transformers folder
(PromptBERT: a transformers folder with its template, see
:func:`~contrastive_tutorial.methods.promptbert.save_prompt_encoder`); ``P`` is the chapter's
:class:`~contrastive_tutorial.profiles.Profile`. Chapter "Appendix: large batches across GPUs
and beyond memory" shows the command.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .profiles import Profile
from .runs import checkpoint
from .train import History

__all__ = ["Recipe", "RECIPES"]


@dataclass(frozen=True)
class Recipe:
    chapter: str
    run: Callable[[Profile, int], tuple]  # (history, scores) or (history, scores, save)
    summary: str


def _sync_batch_norm(model: nn.Module) -> nn.Module:
    """Batch norm over the global batch under torchrun on GPUs (SyncBatchNorm needs CUDA)."""
    from .scale import world

    if world()[1] > 1 and next(model.parameters()).is_cuda:
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return model


# --------------------------------------------------------------------------- images
def _image_setup(P: Profile):
    from .data import colourise, load_images
    from .views import ImageViews

    data = load_images(P.image_data)
    if P.colourise:
        data = colourise(data, seed=0)

    def views(seed: int) -> ImageViews:
        return ImageViews.simclr(strength=P.strength, blur=P.blur, scale=P.crop_scale, flip=P.flip,
                                 generator=torch.Generator().manual_seed(seed))

    return data, views


def _image_method(name: str):
    def run(P: Profile, seed: int) -> tuple[History, dict[str, float]]:
        from .encoders import image_encoder
        from .methods import beyond
        from .methods.simclr import SimCLR, evaluate_encoder, train_views
        from .profiles import seed_everything

        data, views = _image_setup(P)
        seed_everything(seed)
        encoder = image_encoder(P.encoder, data.train_images.shape[1], P.feature_dim)
        head = dict(feature_dim=P.feature_dim, projection_dim=P.projection_dim, hidden_dim=P.hidden_dim)
        made = {
            "simclr": lambda: SimCLR(encoder, temperature=P.temperature, **head),
            "moco": lambda: beyond.MoCo(encoder, queue_size=P.moco_queue, temperature=P.temperature,
                                        momentum=P.moco_momentum, **head),
            "byol": lambda: beyond.BYOL(encoder, momentum=P.byol_momentum, **head),
            "simsiam": lambda: beyond.BYOL(encoder, momentum=0.0, **head),
            "swav": lambda: beyond.SwAV(encoder, n_prototypes=P.swav_prototypes, temperature=P.swav_temperature,
                                        epsilon=P.swav_epsilon, **head),
            "barlow_twins": lambda: beyond.BarlowTwins(encoder, lambd=P.barlow_lambda, **head),
        }
        model = _sync_batch_norm(made[name]().to(P.device))
        history = train_views(model, data, views(seed), epochs=P.epochs, batch_size=P.batch_size, lr=P.lr,
                              weight_decay=P.weight_decay, seed=seed, device=P.device,
                              checkpoint=checkpoint(P, name, {"seed": seed}))
        scores = evaluate_encoder(model, data, views(100 + seed), seed=seed, space="representation")
        return history, {"linear_probe": scores.linear_probe, "knn": scores.knn}

    return run


# --------------------------------------------------------------------------- sentences
def _sts_average(P: Profile, encode: Callable) -> float:
    from .evaluate import evaluate_sts, sts_tasks

    table = evaluate_sts(encode, sts_tasks(P.sts_tasks, max_pairs=P.sts_max_pairs))
    return float(table.loc["avg", "spearman"])


def _simcse_encoder(P: Profile, seed: int):
    """The chapter's text model with SimCSE's MLP in training only, and how its STS is scored."""
    from .encoders import TextEncoder

    torch.manual_seed(seed)
    encoder = TextEncoder.from_pretrained(P.text_model, pooler="cls", mlp_only_train=True).to(P.device)
    return encoder, lambda: _sts_average(P, lambda s: encoder.encode(s, pooler="cls_before_pooler"))


def _saver(encoder, pooler: str) -> Callable[[Any], Any]:
    """``save(folder)``: ``encoder`` as a sentence-transformers folder with the pooler the chapter evaluates."""
    return lambda folder: encoder.save(folder, pooler=pooler)


def _dev(P: Profile, pooler: str | None):
    from .data import load_sts
    from .methods.simcse import sts_dev_evaluator

    dev = load_sts(P.dev[0], split=P.dev[1])
    return sts_dev_evaluator(dev["sentence1"], dev["sentence2"], dev["score"], pooler=pooler)


def _simcse(supervised: bool):
    def run(P: Profile, seed: int) -> tuple[History, dict[str, float]]:
        from .data import load_nli_triples, load_unlabelled_sentences
        from .methods.simcse import train_simcse

        encoder, sts = _simcse_encoder(P, seed)
        common = dict(evaluate=_dev(P, "cls_before_pooler"), eval_every=P.eval_every, seed=seed,
                      clip_grad_norm=P.clip_grad_norm)
        if supervised:
            data = load_nli_triples(P.nli_data).to_dict()
            history = train_simcse(encoder, data, batch_size=P.sup_batch_size, lr=P.sup_lr, epochs=P.sup_epochs,
                                   chunk_size=P.sup_chunk_size, checkpoint=checkpoint(P, "simcse_sup", {"seed": seed}),
                                   **common)
        else:
            data = load_unlabelled_sentences(P.unlabelled_text)["text"]
            history = train_simcse(encoder, data, batch_size=P.batch_size, lr=P.lr, max_steps=P.max_steps,
                                   checkpoint=checkpoint(P, "simcse", {"seed": seed}), **common)
        return history, {"sts_avg": sts()}, _saver(encoder, "cls_before_pooler")

    return run


def _promptbert(P: Profile, seed: int) -> tuple[History, dict[str, float]]:
    from .data import load_unlabelled_sentences
    from .encoders import load_text_model
    from .methods import promptbert as pb

    tokenizer, model = load_text_model(P.text_model)
    torch.manual_seed(seed)
    student = pb.PromptEncoder(model.to(P.device), tokenizer, 'This sentence of "[X]" means [MASK] .',
                               max_length=P.max_length)
    history = pb.train_prompt_contrast(
        student, 'This sentence : "[X]" means [MASK] .', load_unlabelled_sentences(P.unlabelled_text)["text"],
        batch_size=P.batch_size, lr=P.lr, max_steps=P.max_steps, evaluate=_dev(P, None), eval_every=P.eval_every,
        seed=seed, clip_grad_norm=P.clip_grad_norm, checkpoint=checkpoint(P, "promptbert", {"seed": seed}))
    return history, {"sts_avg": _sts_average(P, student.encode)}, lambda folder: pb.save_prompt_encoder(student, folder)


def _classifier(adversarial: bool):
    def run(P: Profile, seed: int) -> tuple[History, dict[str, float]]:
        from .data import load_classification
        from .encoders import TextEncoder
        from .methods import scl
        from .methods.adversarial import train_scal

        task = load_classification(P.task)
        n_test = P.test_texts or len(task.test_texts)
        base = TextEncoder.from_pretrained(P.classifier_model, pooler="cls_before_pooler", max_length=P.max_length)
        base.to(P.device)
        if adversarial:
            shots, trainer, kwargs = P.shots, train_scal, dict(epsilon=P.epsilon, temperature=P.temperature)
        else:
            shots, trainer, kwargs = P.shots[0], scl.train_classifier, dict(lambd=P.lambd, temperature=P.temperature)
        histories: list[History] = []

        def recorded(*args, **train_kwargs) -> History:  # fine_tune returns the classifier; keep the history
            histories.append(trainer(*args, **train_kwargs))
            return histories[-1]

        classifier = scl.fine_tune(base, task, shots, seed, trainer=recorded, epochs=P.epochs, batch_size=P.batch_size,
                                   lr=P.lr, device=P.device, **kwargs)
        accuracy = scl.accuracy(classifier, task.test_texts[:n_test], task.test_labels[:n_test])
        return histories[0], {"accuracy": 100 * accuracy}

    return run


def _uscal(P: Profile, seed: int) -> tuple[History, dict[str, float]]:
    from .data import load_unlabelled_sentences
    from .methods.adversarial import train_uscal

    encoder, sts = _simcse_encoder(P, seed)
    history = train_uscal(encoder, load_unlabelled_sentences(P.unlabelled_text)["text"], epsilon=P.epsilon,
                          alpha=P.alpha, temperature=P.temperature, batch_size=P.uscal_batch_size, lr=P.uscal_lr,
                          max_steps=P.uscal_max_steps, seed=seed, checkpoint=checkpoint(P, "uscal", {"seed": seed}))
    return history, {"sts_avg": sts()}, _saver(encoder, "cls_before_pooler")


def _sccl(P: Profile, seed: int) -> tuple[History, dict[str, float]]:
    import numpy as np

    from .data import load_short_text_clustering
    from .encoders import TextEncoder
    from .methods import sccl

    ds = load_short_text_clustering(P.picture_dataset)
    if P.max_texts is not None and P.max_texts < len(ds):
        ds = ds.shuffle(seed=0).select(range(P.max_texts))
    texts, labels = ds["text"], np.array(ds["label"])
    torch.manual_seed(seed)
    encoder = TextEncoder.from_pretrained(P.clustering_model, pooler="mean", max_length=32, eval_max_length=32).to(P.device)
    model = sccl.SCCL.from_kmeans(encoder, texts, len(set(labels.tolist())), seed=seed)
    views = None
    if P.augmentation == "deletion":
        views = sccl.word_deletion(texts, 0.2, seed=seed + 1), sccl.word_deletion(texts, 0.2, seed=seed + 2)
    elif P.augmentation == "contextual":
        from .methods.promptbert import load_mlm

        tokenizer, mlm = load_mlm(P.mlm_model)
        mlm.to(P.device)
        views = tuple(sccl.contextual_substitution(texts, mlm, tokenizer, 0.2, seed=seed + s) for s in (1, 2))
    history = sccl.train_sccl(model, texts, views=views, steps=P.steps, batch_size=P.batch_size, lr=P.lr, seed=seed,
                              checkpoint=checkpoint(P, "sccl", {"seed": seed}))
    scores = sccl.evaluate_clustering(model, texts, labels, seed=seed)
    return history, {k: 100 * v for k, v in scores.items()}, _saver(model.encoder, "mean")


RECIPES: dict[str, Recipe] = {
    "simclr": Recipe("simclr", _image_method("simclr"), "SimCLR on the chapter's images; linear probe and kNN"),
    **{name: Recipe("beyond", _image_method(name), f"{name} with chapter 'Beyond negatives' settings")
       for name in ("moco", "byol", "simsiam", "swav", "barlow_twins")},
    "simcse": Recipe("simcse", _simcse(False), "unsupervised SimCSE; average STS Spearman"),
    "simcse_sup": Recipe("simcse", _simcse(True), "supervised SimCSE on NLI triples; average STS Spearman"),
    "promptbert": Recipe("promptbert", _promptbert, "PromptBERT's template contrast; average STS Spearman"),
    "scl": Recipe("scl", _classifier(False), "CE + SCL few-shot fine-tuning; test accuracy"),
    "scal": Recipe("adversarial", _classifier(True), "SCAL fine-tuning; test accuracy"),
    "uscal": Recipe("adversarial", _uscal, "USCAL; average STS Spearman"),
    "sccl": Recipe("sccl", _sccl, "SCCL on the chapter's short-text set; clustering accuracy and NMI"),
}


def run_recipe(name: str, profile_name: str | None = None, seed: int = 0,
               overrides: dict[str, Any] | None = None) -> tuple[Profile, History, dict[str, float], Callable | None]:
    """Run recipe ``name`` in ``profile_name`` (default: the active profile) with ``overrides``.

    Returns the profile, the history, the scores and, for a text recipe, ``save(folder)`` that
    writes the trained encoder (``None`` for the others)."""
    from types import MappingProxyType

    from . import profile

    if name not in RECIPES:
        raise ValueError(f"recipe must be one of {sorted(RECIPES)}, got {name!r}")
    recipe = RECIPES[name]
    P = profile(recipe.chapter, profile_name)
    unknown = set(overrides or {}) - set(P.settings)
    if unknown:
        raise ValueError(f"unknown settings for chapter {recipe.chapter!r}: {sorted(unknown)} "
                         f"(known: {sorted(P.settings)})")
    if overrides:
        P = Profile(P.name, P.chapter, P.reason, P.device, MappingProxyType({**P.settings, **overrides}))
    history, scores, *save = recipe.run(P, seed)
    return P, history, scores, (save[0] if save else None)
