"""Pretraining step speed: the book's recipe against transformers' Trainer, same model, batch and data.

Both train a fresh copy of the raw encoder's architecture (``--settings quick``'s sizes) on the
same blocks of the corpus, at the same batch size, in bf16 autocast on the CPU:

- **book**: :func:`contrastive_tutorial.train.train` with :class:`contrastive_tutorial.pretrain.MaskedLM`
  (the MLM head on the masked positions only) and :func:`~contrastive_tutorial.pretrain.mask_tokens`;
- **Trainer**: ``transformers.Trainer`` with ``DataCollatorForLanguageModeling`` (15 %, 80/10/10)
  and ``BertForMaskedLM``'s own loss (the head on every position).

The two alternate in one process (``--rounds`` rounds of ``--steps`` steps each, after a warm-up
round), so a slow spell of the machine touches both. Prints seconds per step and the ratio.

    pip install -e ".[bench]"   # the Trainer needs accelerate
    CT_DATA_DIR=../shared/data python benchmarks/mlm_speed.py
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings

import numpy as np
import torch

from contrastive_tutorial import pretrain
from contrastive_tutorial.train import Batches, adam, linear_schedule, train


def _model(s, tokenizer):
    from transformers import BertForMaskedLM

    torch.manual_seed(0)
    return BertForMaskedLM(pretrain._config(s, tokenizer))


def book_seconds(s, tokenizer, blocks: np.ndarray, steps: int) -> float:
    model = _model(s, tokenizer)
    generator = torch.Generator().manual_seed(0)
    mask = pretrain._masker(tokenizer, s.mask_rate)
    data = torch.from_numpy(blocks)
    batches = Batches(len(blocks), s.batch_size, generator=generator, collate=lambda idx: mask(data[idx].long(), generator))
    optimizer = adam(model.parameters(), lr=s.lr, weight_decay=s.weight_decay)
    start = time.perf_counter()
    train(pretrain.MaskedLM(model), batches, optimizer, steps=steps, scheduler=linear_schedule(optimizer, steps, 0),
          amp="bf16", clip_grad_norm=1.0, progress=False)
    return (time.perf_counter() - start) / steps


def trainer_seconds(s, tokenizer, blocks: np.ndarray, steps: int) -> float:
    from datasets import Dataset
    from transformers import DataCollatorForLanguageModeling, Trainer, TrainingArguments

    model = _model(s, tokenizer)
    data = Dataset.from_dict({"input_ids": blocks.tolist()})
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=s.mask_rate)
    with tempfile.TemporaryDirectory() as out:
        arguments = TrainingArguments(out, per_device_train_batch_size=s.batch_size, max_steps=steps,
                                      learning_rate=s.lr, weight_decay=s.weight_decay, max_grad_norm=1.0,
                                      bf16=True, use_cpu=True, report_to=[], save_strategy="no", logging_strategy="no",
                                      disable_tqdm=True, dataloader_num_workers=0, seed=0)
        trainer = Trainer(model=model, args=arguments, train_dataset=data, data_collator=collator)
        start = time.perf_counter()
        trainer.train()
        return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=15)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--words", type=int, default=300_000, help="corpus words to cut into blocks")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    s = pretrain.settings("quick")
    from transformers import AutoTokenizer

    from contrastive_tutorial.encoders import RAW_MODEL, resolve_model_id

    tokenizer = AutoTokenizer.from_pretrained(resolve_model_id(RAW_MODEL))
    blocks = pretrain.token_blocks(tokenizer, pretrain.read_corpus(s.corpus, args.words), s.max_length)
    print(f"{len(blocks)} blocks of {s.max_length} tokens, batch {s.batch_size}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    book_seconds(s, tokenizer, blocks, 3), trainer_seconds(s, tokenizer, blocks, 3)  # warm-up
    times = {"book": [], "Trainer": []}
    for _ in range(args.rounds):
        times["book"].append(book_seconds(s, tokenizer, blocks, args.steps))
        times["Trainer"].append(trainer_seconds(s, tokenizer, blocks, args.steps))
    book, theirs = np.median(times["book"]), np.median(times["Trainer"])
    print(f"book    {book:.3f} s/step  (rounds: {', '.join(f'{t:.3f}' for t in times['book'])})")
    print(f"Trainer {theirs:.3f} s/step  (rounds: {', '.join(f'{t:.3f}' for t in times['Trainer'])})")
    print(f"Trainer / book = {theirs / book:.2f}  (above 1: the book's recipe is faster)")


if __name__ == "__main__":
    main()
