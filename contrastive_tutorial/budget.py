"""What a chapter costs in each profile, computed from its step counts and measured step costs.

Every training run of a chapter is counted from the profile's settings (epochs, steps, batch
sizes, seeds, sweeps) as a number of source images or tokens, and priced with step costs
measured on this code (``benchmarks/RESULTS.md``, 2026-11-22, one H100 80GB HBM3):

- an image: ResNet-18 (CIFAR stem) SimCLR training, two views made on the GPU, batch 512:
  16,630 source images per second, i.e. 60 microseconds an image;
- a token: BERT-base training (the package's eager step, both dropout views in one pass,
  fused AdamW, bf16), batch 512 of 32 tokens: 85.7 ms per step, 2.6 microseconds a token.
  Other text models scale by their parameter count (RoBERTa-large 3.2 times, the DistilBERT
  of SCCL 0.6 times).

A Colab T4 is taken to be **10.5 times** slower than the H100: the ratio of their memory
bandwidths (320 GB/s against 3.35 TB/s, NVIDIA's data sheets); for steps bound by arithmetic the
ratio of their half-precision tensor rates (65 against 989 TFLOP/s) would make it 15 times.
Small text steps are bound by the host instead (kernel launches from Python): no step is
counted shorter than the measured eager BERT-base step at batch 64, 50.9 ms, scaled by the
model's depth (:data:`STEP_FLOOR`), on either GPU.
Evaluation, data loading and the model's start add 15 % (:data:`OVERHEAD`). These are
estimates, good to a factor of about 1.5; a chapter prints its own before its first long cell,
and the introduction's table lists them all (``python -m contrastive_tutorial budget``).
"""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass

from .chapters import CHAPTERS as RECORDS
from .profiles import CHAPTERS, Profile, profile

__all__ = ["Estimate", "estimate", "table", "T4_OVER_H100", "OVERHEAD", "QUICK_SECONDS"]

H100_IMAGE = 1 / 16_630  # seconds per source image, SimCLR step with batched views (simclr_speed.py)
H100_TOKEN = 85.72e-3 / (512 * 2 * 32)  # seconds per training token, BERT-base (simcse_speed.py, eager, batch 512)
T4_OVER_H100 = 10.5
OVERHEAD = 1.15
STEP_FLOOR = 50.85e-3  # seconds: the eager BERT-base step at batch 64 on the H100, launch-bound
DEPTH = {"roberta-large": 2.0, "sentence-transformers/distilbert-base-nli-stsb-mean-tokens": 0.5}  # layers / 12
MODEL_SIZE = {  # parameters relative to BERT-base (110M)
    "bert-base-uncased": 1.0,
    "roberta-large": 355 / 110,
    "sentence-transformers/distilbert-base-nli-stsb-mean-tokens": 66 / 110,
    "sentence-transformers/all-MiniLM-L6-v2": 22.7 / 110,
    "contrastive-tutorial/raw-roformer-mini-en": 5.3 / 110,  # the book's raw masked LM (RAW_MODEL)
}
DATA_SIZE = {"cifar10": 50_000, "digits": 1_257, "wiki1m": 1_000_000, "nli-for-simcse": 275_601, "sick": 4_500,
             "sst2": 67_349, "agnews": 7_000, "lee_background": 2_000}
SHORT_TEXT_SIZE = {"agnews": 8_000, "searchsnippets": 12_340, "stackoverflow": 20_000, "biomedical": 20_000,
                   "googlenews_ts": 11_109, "googlenews_t": 11_108, "googlenews_s": 11_108, "tweet": 2_472}
CLASSES = {"sst2": 2, "agnews": 4}
IMAGE_CLASSES = {"cifar10": 10, "digits": 10}
PROMPT_TOKENS = 12  # what a template adds to a sentence


# The quick profile is measured, not estimated: seconds of each chapter's one execution
# (tools/book_build.py) in the clean-clone CI on the 2-core CI machine (2026-12-03, commit 8d73ecc,
# the slower of that day's runs; benchmarks/RESULTS.md keeps the history). SimCSE, PromptBERT and SCCL:
# the clean-clone CI of 9a73e86 (2026-12-03), the first after their raw-encoder sections.
QUICK_SECONDS = {"infonce": 82, "simclr": 73, "beyond": 162, "simcse": 148, "promptbert": 94, "scl": 82,
                 "adversarial": 129, "sccl": 117, "scaling": 30}


@dataclass(frozen=True)
class Estimate:
    """A chapter's estimated GPU time in one profile: ``runs`` lists (what, H100 s, T4 s)."""

    chapter: str
    profile: str
    runs: tuple[tuple[str, float, float], ...]

    @property
    def h100_seconds(self) -> float:
        return OVERHEAD * sum(run[1] for run in self.runs)

    @property
    def t4_minutes(self) -> float:
        return OVERHEAD * sum(run[2] for run in self.runs) / 60

    def __str__(self) -> str:
        record = RECORDS[self.chapter]
        aims = textwrap.fill(f"The colab run is expected to show {record.colab}. Only the full profile: "
                             f"{record.only_full}.", 100, break_on_hyphens=False)
        if self.profile == "quick":
            return (f"Chapter '{self.chapter}' in the quick profile: about {QUICK_SECONDS[self.chapter] / 60:.0f} min "
                    "on two CPU cores (measured; benchmarks/RESULTS.md). The colab profile takes about "
                    f"{estimate(profile(self.chapter, 'colab')).t4_minutes:.0f} min on a Colab T4 (estimated).\n"
                    + aims)
        t4 = self.t4_minutes
        when = f"{t4:.0f} min" if t4 < 90 else f"{t4 / 60:.1f} h"
        lines = [f"Estimated GPU time of chapter '{self.chapter}' in the {self.profile} profile: about {when} on a "
                 f"Colab T4, {self.h100_seconds / 60:.0f} min on an H100 (contrastive_tutorial.budget says how)."]
        lines += [f"  {what}: {OVERHEAD * t4 / 60:.1f} min on a T4" for what, _, t4 in self.runs]
        return "\n".join(lines + [aims])


def _text(P: Profile, steps: float, tokens_per_step: float, model: str | None = None) -> tuple[float, float]:
    """(H100 s, T4 s) of ``steps`` training steps of ``tokens_per_step`` tokens each."""
    model = model or P.text_model
    compute = tokens_per_step * H100_TOKEN * MODEL_SIZE.get(model, 1.0)
    floor = STEP_FLOOR * DEPTH.get(model, 1.0)
    return steps * max(floor, compute), steps * max(floor, T4_OVER_H100 * compute)


def _images(n: float) -> tuple[float, float]:
    return n * H100_IMAGE, n * H100_IMAGE * T4_OVER_H100


def _runs(P: Profile) -> list[tuple[str, float, float]]:
    c = P.chapter
    if c in ("infonce", "simclr", "beyond"):
        epoch = DATA_SIZE[P.image_data]
        if c == "infonce":
            n = len(P.temperatures) * len(P.seeds)
            k = 2 * len(P.seeds)  # the debiased and the hard-negative loss
            return [(f"{n} SimCLR runs of {P.epochs} epochs (temperatures x seeds)", *_images(n * P.epochs * epoch)),
                    (f"{k} runs with the corrected negatives", *_images(k * P.epochs * epoch))]
        if c == "simclr":
            seeds = len(P.seeds)
            return [(f"SimCLR and two view ablations, {seeds} seed(s)", *_images(3 * seeds * P.epochs * epoch)),
                    (f"the supervised reference (one view), {seeds} seed(s)", *_images(0.5 * seeds * P.epochs * epoch)),
                    ("the circle and the collapse runs", *_images(3 * P.epochs * epoch)),
                    (f"from scratch on {', '.join(map(str, P.label_shots))} labels per class, {seeds} seed(s)",
                     *_images(seeds * P.scratch_steps * IMAGE_CLASSES[P.image_data] * sum(P.label_shots)))]
        cost = {"simclr": 1.0, "moco": 4 / 3, "byol": 4 / 3, "simsiam": 1.0, "swav": 1.0, "barlow_twins": 1.0,
                "vicreg": 1.0}  # forward passes per image, relative to SimCLR's (MoCo, BYOL: a target network)
        per_seed = sum(cost[m] for m in P.methods) * P.epochs * epoch
        fixed = (cost["simclr"] + cost["moco"] * len(P.fixed_queues)) * P.fixed_epochs * epoch
        return [(f"{len(P.methods)} methods x {len(P.seeds)} seed(s), {P.epochs} epochs", *_images(len(P.seeds) * per_seed)),
                ("three collapse ablations", *_images(3 * P.epochs * epoch)),
                (f"negatives held fixed: SimCLR and MoCo at batch {P.fixed_batch}, {len(P.seeds)} seed(s) "
                 "(small batches use a GPU less well: read as a lower bound)", *_images(len(P.seeds) * fixed))]
    if c == "simcse":
        unsup = P.max_steps or DATA_SIZE[P.unlabelled_text] // P.batch_size
        sup_steps = P.sup_epochs * (DATA_SIZE[P.nli_data] // P.sup_batch_size)
        sup_steps = min(sup_steps, P.sup_max_steps) if P.sup_max_steps else sup_steps
        cached = 4 / 3 if P.sup_chunk_size else 1.0  # gradient caching's second forward pass, where it is on
        sweeps = [(P.sweep_steps, P.batch_size)] * len(P.sweep_temperatures) + [(P.sweep_steps, b) for b in P.sweep_batch_sizes]
        sweep = [sum(x) for x in zip(*(_text(P, steps, b * 2 * 32) for steps, b in sweeps))]
        clustered = sum(min(SHORT_TEXT_SIZE[d], P.clustering_texts or SHORT_TEXT_SIZE[d]) for d in P.clustering_sets)
        return [(f"unsupervised SimCSE, {unsup} steps of {P.batch_size}", *_text(P, unsup, P.batch_size * 2 * 32)),
                (f"the sweep ({len(sweeps)} runs of {P.sweep_steps} steps)", *sweep),
                (f"supervised SimCSE, {sup_steps} steps of {P.sup_batch_size} triples",
                 *_text(P, sup_steps, cached * P.sup_batch_size * 3 * 32)),
                ("DeCLUTR and contrastive tension", *_text(P, 2 * P.variation_steps, 16 * 2 * 32)),
                (f"SimCSE from the book's raw encoder, with and without dropout, {P.raw_steps} steps each",
                 *_text(P, 2 * P.raw_steps, P.raw_batch_size * 2 * 32, "contrastive-tutorial/raw-roformer-mini-en")),
                ("four encoders on the short-text clustering sets (inference, a third of a training step)",
                 *_text(P, 4 * clustered / 64 / 3, 64 * 32))]
    if c == "promptbert":
        steps = P.max_steps or DATA_SIZE[P.unlabelled_text] // P.batch_size
        return [(f"template contrast, {steps} steps of {P.batch_size}",
                 *_text(P, steps, P.batch_size * 2 * (P.max_length + PROMPT_TOKENS)))]
    if c == "scl":
        classes = CLASSES[P.task]

        def run(shots: int, epochs: int, times: int) -> tuple[float, float]:
            steps = epochs * math.ceil(classes * shots / P.batch_size) * times
            return _text(P, steps, P.batch_size * P.max_length, P.classifier_model)

        few = [sum(x) for x in zip(*(run(s, P.epochs, 2 * len(P.seeds)) for s in P.shots))]
        return [(f"CE and CE + SCL at {P.shots} examples per class, {len(P.seeds)} seeds", *few),
                (f"the label-noise runs ({P.noise_shots} per class)",
                 *run(P.noise_shots, P.noise_epochs, 2 * len(P.noise_seeds)))]
    if c == "adversarial":
        n = CLASSES[P.task] * P.shots if P.shots else DATA_SIZE[P.task]
        steps = P.epochs * math.ceil(n / P.batch_size)

        def fine_tune(passes: float) -> tuple[float, float]:
            return _text(P, passes * steps, P.batch_size * P.max_length, P.classifier_model)

        uscal = P.uscal_max_steps or DATA_SIZE[P.unlabelled_text] // P.uscal_batch_size
        # SCAL: the clean pass, the gradient for the perturbation and the perturbed pass (3 passes);
        # USCAL: SimCSE's two views, the perturbation's gradient and the adversarial view (twice SimCSE)
        return [(f"CE, CE + SCL and SCAL, {len(P.seeds)} seeds", *fine_tune(len(P.seeds) * (1 + 1 + 3))),
                (f"SCAL at {len(P.sweep_epsilons)} more training epsilons", *fine_tune(3 * len(P.sweep_epsilons))),
                (f"SimCSE and USCAL, {uscal} steps each", *_text(P, 3 * uscal, P.uscal_batch_size * 2 * 32))]
    if c == "sccl":
        model = P.clustering_model
        tokens = P.batch_size * (3 if P.augmentation != "dropout" else 2) * 32
        texts = sum(min(SHORT_TEXT_SIZE[d], P.max_texts or SHORT_TEXT_SIZE[d]) for d in P.datasets)
        augment = [0.0, 0.0]
        if P.augmentation == "contextual":  # two masked-LM passes over every text, inference (a third of training)
            augment = _text(P, 2 * texts / 64 / 3, 64 * 32, P.mlm_model or "bert-base-uncased")
        return [(f"SCCL on {len(P.datasets)} set(s) x {len(P.seeds)} seed(s), {P.steps} steps of {P.batch_size}",
                 *_text(P, len(P.datasets) * len(P.seeds) * P.steps, tokens, model)),
                ("the ablation (two single-objective runs)", *_text(P, 2 * P.ablation_steps, tokens, model)),
                ("contextual augmentation (masked LM)", *augment)]
    if c == "scaling":  # two views of 64 sentences in chunks of 8, plain and cached; the benchmark's batch
        return [("the gradient-cache check and benchmark", *_text(P, 4 * 8 + 2 * 8, 8 * 32))]
    raise ValueError(f"no budget for chapter {c!r}")


def estimate(P: Profile) -> Estimate:
    """The estimated GPU time of ``P``'s chapter in ``P``'s profile (module docstring)."""
    if not isinstance(P, Profile):
        raise TypeError(f"P must be a chapter's Profile (ct.profile(...)), got {type(P).__name__}")
    return Estimate(P.chapter, P.name, tuple(_runs(P)))


def table() -> str:
    """Markdown: per chapter, the quick profile's measured CPU minutes, the colab profile's
    estimated T4 minutes, the full profile's estimated GPU hours and the chapters to read first."""
    lines = ["| chapter | quick: minutes on 2 CPU cores (measured) | colab: minutes on a T4 (estimated) "
             "| full: hours on a T4 (estimated) | full: hours on an H100 (estimated) | read first |",
             "|---|---|---|---|---|---|"]
    for chapter in CHAPTERS:
        colab, full = estimate(profile(chapter, "colab")), estimate(profile(chapter, "full"))
        before = ", ".join(RECORDS[k].title for k in RECORDS[chapter].prerequisites) or "none"
        colab_minutes = f"{colab.t4_minutes:.0f}" if colab.t4_minutes >= 0.5 else "<1"
        full_hours = [f"{h:.1f}" if h >= 0.05 else "<0.1" for h in (full.t4_minutes / 60, full.h100_seconds / 3600)]
        lines.append(f"| {RECORDS[chapter].title} | {QUICK_SECONDS[chapter] / 60:.1f} | {colab_minutes} "
                     f"| {full_hours[0]} | {full_hours[1]} | {before} |")
    return "\n".join(lines)


def aims() -> str:
    """Markdown: per chapter, what the colab run is expected to show (with sources) and what only full reaches."""
    lines = ["| chapter | the colab run is expected to show | only the full profile |", "|---|---|---|"]
    lines += [f"| {c.title} | {c.colab} | {c.only_full} |" for c in RECORDS.values()]
    return "\n".join(lines)
