"""One full training step of three recipes, run by tests/test_scale.py under ``torchrun
--nproc_per_node 2`` and, for the reference, in one process: unsupervised SimCSE (a batch is a
list), supervised SimCSE (a dict of columns), SCL fine-tuning (a tuple with labels), and three
steps of the loop itself with SGD on a tensor batch. Dropout is off, so that the two runs may differ only
through how the batch is split. (Batch norm is left out: its statistics are per process, unless
converted to SyncBatchNorm on GPUs.) ``run()`` returns every model's weights and the untrained BERT's."""

import copy
import os
import sys

import torch
from torch import nn


def run() -> dict[str, dict[str, torch.Tensor]]:
    from transformers import AutoTokenizer, BertConfig, BertModel

    from contrastive_tutorial.encoders import TextEncoder, resolve_model_id
    from contrastive_tutorial.methods import scl, simcse

    torch.set_num_threads(1)
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_id("sentence-transformers/all-MiniLM-L6-v2"))
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=64, hidden_dropout_prob=0.0,
                        attention_probs_dropout_prob=0.0)
    torch.manual_seed(0)
    bert = BertModel(config)
    words = ["cat", "dog", "rain", "sun", "tree", "car", "sea", "bird", "road", "lamp", "milk", "song"]
    sentences = [f"the {w} is here today" for w in words]
    out = {"start": bert.state_dict()}

    def encoder():
        torch.manual_seed(1)
        return TextEncoder(copy.deepcopy(bert), tokenizer, pooler="cls", max_length=12)

    e = encoder()
    simcse.train_simcse(e, sentences, batch_size=8, lr=1e-2, max_steps=1, progress=False)
    out["simcse"] = e.state_dict()
    e = encoder()
    triples = {"anchor": sentences, "positive": [s.upper() for s in sentences], "negative": sentences[::-1]}
    simcse.train_simcse(e, triples, batch_size=8, lr=1e-2, max_steps=1, progress=False)
    out["simcse_sup"] = e.state_dict()
    torch.manual_seed(2)
    classifier = scl.TextClassifier(encoder(), 2, dropout=0.0)
    scl.train_classifier(classifier, sentences[:8], [0, 1] * 4, lambd=0.5, epochs=1, batch_size=8, lr=1e-2,
                         progress=False)
    out["scl"] = classifier.state_dict()
    # the loop itself with plain SGD (Adam's first step hides the gradient's scale) and clipping
    from contrastive_tutorial.losses import nt_xent
    from contrastive_tutorial.scale import gathered
    from contrastive_tutorial.train import Batches, train

    class Contrast(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 4))

        def loss(self, x):
            return nt_xent(*gathered(self.net(x), self.net(x.flip(1))), 0.5)

    g = torch.Generator().manual_seed(3)
    points = torch.randn(16, 6, generator=g)
    torch.manual_seed(4)
    method = Contrast()
    train(method, Batches(16, 8, seed=5, collate=lambda idx: points[idx]), torch.optim.SGD(method.parameters(), lr=0.5),
          steps=3, clip_grad_norm=10.0, progress=False)
    out["loop"] = method.state_dict()
    return out


if __name__ == "__main__":
    import torch.distributed as dist

    dist.init_process_group("gloo")
    result = run()
    if dist.get_rank() == 0:
        torch.save(result, sys.argv[1])
    dist.barrier()  # see distributed_worker.py for why the teardown is done this way
    dist.destroy_process_group()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
