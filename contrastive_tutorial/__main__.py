"""Command line: ``python -m contrastive_tutorial list``, ``... train RECIPE [options]`` and ``... pretrain [options]``.

Runs a chapter's main recipe outside a notebook (:mod:`contrastive_tutorial.recipes`), also
under ``torchrun --nproc_per_node N -m contrastive_tutorial train ...`` on several GPUs.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import sys
from pathlib import Path


def _value(text: str):
    """``--set key=value``: a Python literal (number, tuple, None, ...) or else a string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m contrastive_tutorial", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="the recipes and what each trains")
    commands.add_parser("budget", help="each chapter's time per profile (the introduction's table, Markdown)")
    train = commands.add_parser("train", help="train one recipe and write its run store entry")
    train.add_argument("recipe")
    train.add_argument("--profile", choices=("quick", "colab", "full"), default=None,
                       help="default: CT_PROFILE, else colab on a CUDA GPU and quick elsewhere")
    train.add_argument("--out", type=Path, required=True,
                       help="the run store folder (checkpoints and results); a text recipe also saves its trained "
                            "encoder there as a sentence-transformers folder, beside its JSON "
                            "(PromptBERT: a transformers folder with its template)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override a profile setting, e.g. --set max_steps=100 or --set "
                            "text_model=contrastive-tutorial/raw-roformer-mini-en (repeatable)")
    pre = commands.add_parser(
        "pretrain", help="pretrain the book's raw masked language model (what contrastive_tutorial.RAW_MODEL ships)",
        description="Pretrain a small BERT-style encoder (rotary positions: RoFormer) with masked language "
                    "modelling on the book's corpus ($CT_DATA_DIR/corpus/en) and export it in float16. --profile "
                    "quick reproduces the shipped model (about an hour on two CPU cores); a stopped run resumes "
                    "from DIR/checkpoint.pt.")
    pre.add_argument("--profile", choices=("quick", "colab", "full"), default="quick")
    pre.add_argument("--out", type=Path, required=True,
                     help="the run folder: tokenizer, token blocks, checkpoint, report.json, and the model in DIR/model")
    pre.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="override a setting of contrastive_tutorial.pretrain.PretrainSettings, e.g. --set steps=100")
    return parser


def _overrides(items: list[str]) -> dict:
    overrides = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"--set takes KEY=VALUE, got {item!r}")
        overrides[key] = _value(value)
    return overrides


def _init_distributed() -> tuple[int, int]:
    """Under torchrun: join the process group (NCCL on GPUs, gloo on CPUs); return (rank, world)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return 0, 1
    import torch
    import torch.distributed as dist

    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), dist.get_world_size()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from .recipes import RECIPES, run_recipe

    if args.command == "budget":
        from .budget import table

        print(table())
        return 0
    if args.command == "list":
        for name, recipe in RECIPES.items():
            print(f"{name:14s} chapter {recipe.chapter:12s} {recipe.summary}")
        print(f"{'pretrain':14s} appendix {'raw_encoder':11s} the book's raw masked LM (python -m contrastive_tutorial pretrain)")
        return 0
    overrides = _overrides(args.overrides)
    if args.command == "pretrain":
        from .pretrain import export, pretrain, settings

        try:
            chosen = settings(args.profile, **overrides)
        except (TypeError, ValueError) as error:
            raise SystemExit(f"pretrain: {error}") from error
        model, tokenizer, report = pretrain(chosen, args.out)
        folder = export(model, tokenizer, args.out / "model")
        print(json.dumps({k: report[k] for k in ("heldout_loss", "heldout_perplexity", "training_seconds")}))
        print(f"wrote {folder}")
        return 0
    os.environ["CT_RUNS_DIR"] = str(args.out)  # the run store: checkpoints, and results beside them
    rank, world = _init_distributed()
    P, history, scores, save = run_recipe(args.recipe, args.profile, args.seed, overrides)
    if rank == 0:
        out = args.out / P.chapter / P.name / f"{args.recipe}-seed{args.seed}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        if save is not None:
            print(f"saved the trained encoder in {save(out.with_suffix(''))}")
        out.write_text(json.dumps({"recipe": args.recipe, "profile": P.name, "seed": args.seed, "processes": world,
                                   "settings": dict(P.settings), "scores": scores, "history": list(history)},
                                  indent=1, default=repr) + "\n")
        print(json.dumps({"recipe": args.recipe, "profile": P.name, "scores": scores}, default=repr))
        print(f"wrote {out}")
    if world > 1:
        import torch.distributed as dist

        dist.barrier()
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
