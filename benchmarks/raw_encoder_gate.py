"""The raw encoder's go/no-go gate: does contrastive learning show its effect on the book's own MLM?

On the quick STS suite (test: STS12-14, 400 pairs each as the quick profile samples them;
dev: SICK trial), over three seeds:

- the raw model (``contrastive_tutorial.RAW_MODEL`` or ``--model FOLDER``), every pooler; its
  anisotropy (average cosine of distinct sentence pairs) and alignment/uniformity on SICK trial;
- unsupervised SimCSE from it at a quick budget (``--steps`` steps of ``--batch-size``
  sentences of the pretraining corpus, best SICK-trial checkpoint);
- unsupervised SimCSE from the same architecture with random weights (what pretraining buys);
- all-MiniLM-L6-v2 as shipped (mean pooling: the ceiling a reader already knows).

The gate passes when SimCSE from the raw model beats the raw model's best pooler by at least 8
Spearman points on the STS12-14 average and SimCSE from random weights by at least 5, both
beyond the noise by ``stats.compare``. Writes ``--out`` (JSON) and prints a Markdown table.

    CT_DATA_DIR=../shared/data python benchmarks/raw_encoder_gate.py --out gate.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from contrastive_tutorial import RAW_MODEL, stats
from contrastive_tutorial.data import load_sts, load_unlabelled_sentences
from contrastive_tutorial.encoders import TextEncoder, load_text_model, no_pooler, resolve_model_id, set_dropout
from contrastive_tutorial.evaluate import mean_cosine, sts_pairs, sts_tasks
from contrastive_tutorial.methods.simcse import sts_dev_evaluator, train_simcse

TASKS = ("sts12", "sts13", "sts14")
MINILM = "sentence-transformers/all-MiniLM-L6-v2"


def _random_copy(model_id: str, seed: int):
    """The architecture of ``model_id`` with freshly initialised weights, and its tokenizer."""
    from transformers import AutoConfig, AutoModel

    tokenizer, _ = load_text_model(model_id)
    torch.manual_seed(seed)
    config = AutoConfig.from_pretrained(resolve_model_id(model_id))
    return tokenizer, AutoModel.from_config(config, **no_pooler(config))


def _describe(encoder: TextEncoder, pooler: str, tasks, dev, probe: list[str]) -> dict:
    """STS per-pair cosines and the geometry of ``pooler``'s vectors."""
    cosines, _ = sts_pairs(lambda s: encoder.encode(s, pooler=pooler), tasks)
    geometry = dev(encoder)
    return {"cosines": cosines, "anisotropy": mean_cosine(encoder.encode(probe, pooler=pooler)),
            "alignment": geometry["alignment"], "uniformity": geometry["uniformity"],
            "dev_spearman": geometry["dev_spearman"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=RAW_MODEL, help="the raw model: RAW_MODEL (default) or a folder")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--pooler", choices=("cls", "mean"), default="mean",
                        help="SimCSE's pooler: the paper's [CLS] (with the MLP in training only) or the mean")
    parser.add_argument("--max-length", type=int, default=32)
    parser.add_argument("--temperature", type=float, default=0.05)
    parser.add_argument("--dropout", type=float, default=None,
                        help="SimCSE's dropout rate (its augmentation); default: the model's own (0.1)")
    parser.add_argument("--sentences", type=int, default=20000, help="training sentences from the corpus")
    parser.add_argument("--eval-every", type=int, default=50)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    tasks = sts_tasks(TASKS, max_pairs=400)
    _, labels = sts_pairs(lambda s: torch.zeros(len(s), 1) + 1, tasks)  # the gold scores and task ids only
    sick = load_sts("sickr", split="validation")
    test_pooler = "cls_before_pooler" if args.pooler == "cls" else "mean"
    dev = sts_dev_evaluator(sick["sentence1"], sick["sentence2"], sick["score"], pooler=test_pooler)
    probe = list(dict.fromkeys(s for ds in tasks.values() for s in ds["sentence1"]))[:1000]
    sentences = list(load_unlabelled_sentences("corpus_en", limit=args.sentences)["text"])
    report: dict = {"settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                    "tasks": TASKS, "pairs": int(len(labels)), "rows": {}}
    runs: dict[str, list[np.ndarray]] = {}

    def row(name: str, per_seed: list[dict], seconds: float = 0.0) -> None:
        runs[name] = [r["cosines"] for r in per_seed]
        scores = [stats.sts_average(r["cosines"], labels) for r in per_seed]
        report["rows"][name] = {"sts_avg": float(np.mean(scores)), "sts_per_seed": scores,
                                **{k: float(np.mean([r[k] for r in per_seed])) for k in
                                   ("anisotropy", "alignment", "uniformity", "dev_spearman")},
                                "seconds": seconds}
        print(f"{name:34s} STS12-14 avg {np.mean(scores):6.2f}  ({time.strftime('%H:%M:%S')})", flush=True)

    raw = TextEncoder.from_pretrained(args.model, pooler="cls", mlp_only_train=True)
    for pooler in ("mean", "cls_before_pooler", "first_last_avg"):
        dev_pooled = sts_dev_evaluator(sick["sentence1"], sick["sentence2"], sick["score"], pooler=pooler)
        row(f"raw, {pooler}", [_describe(raw, pooler, tasks, dev_pooled, probe)])
    for start in ("raw", "random"):
        per_seed, seconds = [], 0.0
        for seed in args.seeds:
            torch.manual_seed(seed)
            if start == "raw":
                encoder = TextEncoder.from_pretrained(args.model, pooler=args.pooler, mlp_only_train=True,
                                                      max_length=args.max_length)
            else:
                tokenizer, model = _random_copy(args.model, seed)
                encoder = TextEncoder(model, tokenizer, pooler=args.pooler, mlp_only_train=True,
                                      max_length=args.max_length)
            if args.dropout is not None:
                set_dropout(encoder, args.dropout)
            begin = time.perf_counter()
            train_simcse(encoder, sentences, batch_size=args.batch_size, lr=args.lr, max_steps=args.steps,
                         temperature=args.temperature,
                         evaluate=dev, eval_every=args.eval_every, seed=seed, progress=False)
            seconds += time.perf_counter() - begin
            per_seed.append(_describe(encoder, test_pooler, tasks, dev, probe))
        row(f"SimCSE from {start}", per_seed, seconds / len(args.seeds))
    minilm = TextEncoder.from_pretrained(MINILM, pooler="mean")
    dev_mean = sts_dev_evaluator(sick["sentence1"], sick["sentence2"], sick["score"], pooler="mean")
    row("all-MiniLM-L6-v2 (shipped), mean", [_describe(minilm, "mean", tasks, dev_mean, probe)])

    raw_names = [n for n in report["rows"] if n.startswith("raw, ")]
    best_raw = max(raw_names, key=lambda n: report["rows"][n]["sts_avg"])
    verdicts = {}
    for other, need in ((best_raw, 8.0), ("SimCSE from random", 5.0)):
        c = stats.compare(runs["SimCSE from raw"], runs[other], labels, metric=stats.sts_average,
                          names=("SimCSE from raw", other))
        verdicts[other] = {"text": str(c), "difference": c.difference, "low": c.low,
                           "high": c.high, "real": c.real, "needed": need,
                           "passes": bool(c.real and c.difference >= need)}
        print(c)
    report["best_raw"] = best_raw
    report["verdicts"] = verdicts
    report["passes"] = all(v["passes"] for v in verdicts.values())
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"gate {'PASSES' if report['passes'] else 'MISSES'}; wrote {args.out}")


if __name__ == "__main__":
    main()
