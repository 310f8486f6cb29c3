"""Ship a finished pretraining run as the package's raw model, with its model card.

    python tools/ship_raw_model.py RUN_DIR [--gate gate.json] [--machine "2-core Xeon, CPU"]

Exports RUN_DIR's final weights in float16 into ``contrastive_tutorial/models/raw-roformer-mini-en``
(:data:`contrastive_tutorial.RAW_MODEL`), recomputes the held-out MLM loss *from the shipped
float16 weights* (what ``tests/test_pretrain.py`` checks again), and writes ``card.json`` and the
model card ``README.md`` with the settings, the wall time, the corpus's licence and
attribution and, given ``--gate``, the go/no-go table of ``benchmarks/raw_encoder_gate.py``.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
FOLDER = ROOT / "contrastive_tutorial" / "models" / "raw-roformer-mini-en"


def gate_table(gate: dict) -> str:
    """The gate's rows as a Markdown table, and its verdicts."""
    lines = ["| model | STS12-14 avg (Spearman x 100) | per seed | anisotropy | alignment | uniformity | SICK trial |",
             "|---|---|---|---|---|---|---|"]
    for name, row in gate["rows"].items():
        seeds = ", ".join(f"{v:.1f}" for v in row["sts_per_seed"])
        lines.append(f"| {name} | {row['sts_avg']:.2f} | {seeds} | {row['anisotropy']:.3f} | {row['alignment']:.3f} "
                     f"| {row['uniformity']:.3f} | {row['dev_spearman']:.1f} |")
    lines.append("")
    for other, v in gate["verdicts"].items():
        lines.append(f"- `{v['text']}`; needed: at least +{v['needed']:.0f}, beyond the noise: "
                     f"**{'passes' if v['passes'] else 'misses'}**")
    lines.append(f"- The gate **{'passes' if gate['passes'] else 'misses'}**.")
    return "\n".join(lines)


def unigram_loss(train: "np.ndarray", heldout: "np.ndarray", special_ids: list[int]) -> float:
    """The masked-token loss of a guess that knows word frequencies only: the cross-entropy, over the
    held-out blocks' ordinary tokens (the ones masking may choose), of the training blocks' token
    frequencies (add-one smoothed). A masked LM below it uses context."""
    import numpy as np

    size = int(max(train.max(), heldout.max())) + 1
    counts = np.bincount(train.ravel(), minlength=size).astype(np.float64) + 1.0
    counts[special_ids] = 0.0
    log_p = np.log(counts / counts.sum(), where=counts > 0, out=np.full(size, -np.inf))
    tokens = heldout.ravel()
    tokens = tokens[~np.isin(tokens, special_ids)]
    return float(-log_p[tokens].mean())


def compare_text(card: dict) -> str:
    """A sentence on the comparison run kept in the card, if any."""
    other = card.get("compare")
    if not other:
        return ""
    last = other["curve"][-1]
    return (f"\n- For comparison, {other['what']}: held-out loss {last['heldout_loss']:.2f} at step {last['step']:,} "
            f"(`card.json`, key `compare`, holds its curve).")


def card_text(card: dict, gate: dict | None, remark: str = "") -> str:
    s = card["settings"]
    minutes = card["training_seconds"] / 60
    gate_part = ("Not measured yet." if gate is None else
                 f"Measured by `benchmarks/raw_encoder_gate.py` ({', '.join(gate['tasks'])}, {gate['pairs']} pairs as the "
                 f"quick profile samples them; dev: SICK trial; SimCSE: {gate['settings']['steps']} steps of "
                 f"{gate['settings']['batch_size']} corpus sentences, lr {gate['settings']['lr']}, temperature "
                 f"{gate['settings'].get('temperature', 0.05)}, dropout {gate['settings'].get('dropout') or card['settings']['dropout']}, seeds "
                 f"{gate['settings']['seeds']}, best SICK-trial checkpoint, pooler: {gate['settings']['pooler']}).\n\n"
                 + gate_table(gate) + (f"\n\n{remark}" if remark else ""))
    return f"""---
language: en
license: cc-by-sa-3.0
library_name: transformers
tags: [fill-mask, roformer, contrastive-tutorial]
---

# raw-roformer-mini-en: the book's own raw masked language model

A small BERT-style encoder with rotary position embeddings (RoFormer), trained with masked language modelling only, by `contrastive_tutorial.pretrain` (the
appendix "A raw encoder of our own"). It is *raw* on purpose: it has never seen a sentence pair or a
contrastive loss, so the book's sentence-embedding chapters can show what SimCSE, PromptBERT and their
relatives do to such a model. It is not a good sentence encoder, and not a substitute for BERT-base.

Load it offline with `contrastive_tutorial.RAW_MODEL` (`{card['model_id']}`):
`TextEncoder.from_pretrained(contrastive_tutorial.RAW_MODEL, pooler="mean")`, or
`transformers.AutoModelForMaskedLM.from_pretrained(path)` / `AutoModel` on this folder.

## Model
- {'RoFormer encoder (BERT with rotary position embeddings)' if s.get('architecture', 'bert') == 'roformer' else 'BERT encoder'}: {s['layers']} layers, hidden size {s['hidden_size']}, {s['heads']} heads, feed-forward
  {s['intermediate_size']}, {s['max_length']} positions, dropout {s['dropout']}; {card['parameters']:,} parameters
  (the output layer shares the input embeddings).
- Tokenizer: uncased WordPiece, {card['vocab_size']:,} entries, trained on the same corpus with the `tokenizers` library.
- Weights stored in float16 (`model.safetensors`, SHA-256 `{card['sha256']}`); they load in float32.

## Training
- Corpus: `corpus/en/train_10M.txt.gz` of the book's shared data folder: 10.0 M words of English
  Wikipedia (2015 and 2018 extracts), English Wikinews and Project Gutenberg books, decontaminated
  against STS12-16, STS-B and SICK. The last {s['heldout_documents']} documents are held out.
- {card['train_blocks']:,} training blocks of {s['max_length']} tokens ([CLS] ... [SEP], documents joined by [SEP]);
  {s['steps']:,} steps of {s['batch_size']} blocks ({card['train_tokens_seen'] / 1e6:.1f} M tokens, about
  {s['steps'] * s['batch_size'] / card['train_blocks']:.1f} passes).
- Masking: {100 * s['mask_rate']:.0f} % of the tokens, 80 % [MASK] / 10 % random / 10 % kept; loss on those positions.
- AdamW, lr {s['lr']}, weight decay {s['weight_decay']}, {s['warmup_steps']} warm-up steps then linear decay to 0,
  gradient clipping at 1.0, bf16 autocast, seed {s['seed']}.
- Wall time: {minutes:.0f} minutes of training on {card['machine']}.
- Held-out MLM loss (the first {card['card_blocks']} held-out blocks, masking seed 1234, computed from the
  float16 weights as shipped): **{card['heldout_loss']:.4f}** (perplexity {math.exp(card['heldout_loss']):.1f}).
  At the first evaluation (step 0) it was {card['curve'][0]['heldout_loss']:.2f}; a guess that knows only the
  words' frequencies scores {card['unigram_loss']:.2f} on the same blocks.{compare_text(card)}
- Reproduce: `python -m contrastive_tutorial pretrain --profile quick --out DIR` with `CT_DATA_DIR` set to
  the shared data folder (the same vocabulary, then the same weights on the same machine), then
  `python tools/ship_raw_model.py DIR`.

## The go/no-go gate
{gate_part}

## Licence and attribution
Trained on text under CC BY-SA 3.0 as a whole (Wikipedia: CC BY-SA 3.0; Wikinews: CC BY 2.5;
Project Gutenberg: public domain in the USA), these weights are shared under **CC BY-SA 3.0**.
Credit: Wikipedia, Wikinews and Project Gutenberg contributors. The list of every source document
(title and URL) is in the shared data folder, `corpus/en/attribution/*.docs.tsv.gz`; the sources and
the cleaning are described in `corpus/en/SOURCES.md`.
"""


def main() -> None:
    from contrastive_tutorial.encoders import RAW_MODEL
    from contrastive_tutorial.pretrain import (CARD_BLOCKS, PretrainSettings, export, fingerprint, heldout_blocks,
                                               heldout_loss)
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--gate", type=Path, default=None)
    parser.add_argument("--remark", default="", help="a paragraph under the gate's table: what the measurements point at")
    parser.add_argument("--compare", type=Path, default=None,
                        help="JSON of another run's curve ({'what', 'settings', 'curve'}) kept in the card beside this one's")
    parser.add_argument("--machine", default=f"2 CPU cores ({platform.processor() or platform.machine()})")
    args = parser.parse_args()

    report = json.loads((args.run / "report.json").read_text())
    settings = PretrainSettings(**report["settings"])
    if not (FOLDER / "model.safetensors").exists() or args.gate is None:
        tokenizer = AutoTokenizer.from_pretrained(args.run / "tokenizer")
        state = torch.load(args.run / "checkpoint.pt", map_location="cpu", weights_only=False)
        if not state["finished"]:
            raise SystemExit(f"{args.run} has not finished training")
        from contrastive_tutorial.pretrain import _config

        model = AutoModelForMaskedLM.from_config(_config(settings, tokenizer))
        model.load_state_dict({k[len("model."):]: v for k, v in state["method"].items()})
        export(model, tokenizer, FOLDER)
    shipped = AutoModelForMaskedLM.from_pretrained(FOLDER)
    tokenizer = AutoTokenizer.from_pretrained(FOLDER)
    loss = heldout_loss(shipped, tokenizer, heldout_blocks(tokenizer, settings), settings.mask_rate)
    card = {"model_id": RAW_MODEL, "settings": report["settings"], "parameters": report["parameters"],
            "vocab_size": len(tokenizer), "train_blocks": report["train_blocks"],
            "train_tokens_seen": report["train_tokens_seen"], "training_seconds": report["training_seconds"],
            "machine": args.machine, "card_blocks": CARD_BLOCKS, "heldout_loss": loss,
            "sha256": fingerprint(FOLDER), "curve": report["curve"]}
    import numpy as np

    card["unigram_loss"] = unigram_loss(np.load(args.run / "blocks.npz")["train"],
                                        heldout_blocks(tokenizer, settings), tokenizer.all_special_ids)
    if args.compare is not None:
        card["compare"] = json.loads(args.compare.read_text())
    gate = json.loads(args.gate.read_text()) if args.gate else None
    if gate is not None:
        card["gate"] = {k: gate[k] for k in ("tasks", "pairs", "settings", "rows", "best_raw", "verdicts", "passes")}
    (FOLDER / "card.json").write_text(json.dumps(card, indent=1) + "\n")
    (FOLDER / "README.md").write_text(card_text(card, gate, args.remark))
    print(f"shipped {FOLDER}: held-out loss {loss:.4f}, {(FOLDER / 'model.safetensors').stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
