"""How fast 2 CPU cores train small BERT-style masked language models: sizing the book's raw encoder.

    python benchmarks/mlm_step_speed.py [--seconds 20] [--batch 64] [--length 64]

For each candidate shape (layers x hidden size, intermediate 4 x hidden, heads hidden / 64) a
randomly initialised ``BertForMaskedLM`` with a 12k vocabulary trains on random token ids with
15 % of the positions masked (``transformers``' ``DataCollatorForLanguageModeling``, the 80/10/10
rule), fused AdamW, float32, for about ``--seconds`` after two warm-up steps. It prints the step
time, tokens per second and how many steps and corpus passes 90 minutes would buy on the
mirrored 10 M-word corpus (about 13 M WordPiece tokens, taken as 1.3 tokens a word). Ratios are
against the smallest shape, measured in the same run.
"""

from __future__ import annotations

import argparse
import time

import torch

SHAPES = [(2, 128), (4, 128), (4, 192), (4, 256), (6, 256)]
CORPUS_TOKENS = 13e6
BUDGET_SECONDS = 90 * 60


def _model(layers: int, hidden: int, vocab: int, length: int):
    from transformers import BertConfig, BertForMaskedLM

    config = BertConfig(vocab_size=vocab, hidden_size=hidden, num_hidden_layers=layers,
                        num_attention_heads=max(1, hidden // 64), intermediate_size=4 * hidden,
                        max_position_embeddings=max(128, length))
    return BertForMaskedLM(config)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--length", type=int, default=64)
    parser.add_argument("--vocab", type=int, default=12_000)
    parser.add_argument("--shapes", default=",".join(f"{l}x{h}" for l, h in SHAPES),
                        help="layers x hidden, comma-separated (default: %(default)s)")
    args = parser.parse_args()
    shapes = [tuple(int(v) for v in shape.split("x")) for shape in args.shapes.split(",")]
    from transformers import BertTokenizerFast, DataCollatorForLanguageModeling

    torch.manual_seed(0)
    words = [f"w{i}" for i in range(args.vocab - 5)]
    vocab_file = "/tmp/mlm_speed_vocab.txt"
    with open(vocab_file, "w") as f:
        f.write("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n")
    tokenizer = BertTokenizerFast(vocab_file)
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15, return_tensors="pt")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; batch {args.batch} x {args.length} tokens")
    print("| layers x hidden | parameters (M, embeddings included) | ms / step | tokens / s | steps in 90 min | corpus passes in 90 min | tokens/s vs smallest |")
    print("|---|---|---|---|---|---|---|")
    base = None
    for layers, hidden in shapes:
        model = _model(layers, hidden, len(tokenizer), args.length)
        optimizer = torch.optim.AdamW(model.parameters(), lr=5e-4, fused=True)
        params = sum(p.numel() for p in model.parameters()) / 1e6
        ids = torch.randint(5, len(tokenizer), (args.batch, args.length))
        steps, start = 0, None
        while True:
            batch = collator([{"input_ids": row} for row in ids])
            loss = model(**batch).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            steps += 1
            if steps == 2:
                start, steps = time.perf_counter(), 0
            elif start is not None and time.perf_counter() - start > args.seconds:
                break
        seconds = (time.perf_counter() - start) / steps
        tokens = args.batch * args.length / seconds
        base = base or tokens
        in_budget = BUDGET_SECONDS / seconds
        print(f"| {layers} x {hidden} | {params:.1f} | {1000 * seconds:.0f} | {tokens:,.0f} | {in_budget:,.0f} | "
              f"{in_budget * args.batch * args.length / CORPUS_TOKENS:.1f} | {tokens / base:.2f}x |")


if __name__ == "__main__":
    main()
