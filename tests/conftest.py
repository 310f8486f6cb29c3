"""Shared fixtures: the offline data folder, a fast-failing hub, and a tiny offline BERT."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture
def shared_data_dir() -> Path:
    """The real offline data folder ($CT_DATA_DIR). CI always sets it; elsewhere the tests
    that read the real files are skipped when it is absent."""
    value = os.environ.get("CT_DATA_DIR")
    if not value or not Path(value).is_dir():
        if os.environ.get("CI"):
            pytest.fail("CI must set CT_DATA_DIR to the offline data folder")
        pytest.skip("CT_DATA_DIR is not set: the real offline data sets are not available")
    return Path(value)


@pytest.fixture
def offline_hub(monkeypatch):
    """Make every Hugging Face hub call fail at once, as on a machine without network."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    # the libraries read these variables at import time: set their constants too
    import datasets.config
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True, raising=False)


def _tiny_bert_config(tokenizer):
    from transformers import BertConfig

    return BertConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=64,
    )


@pytest.fixture(scope="session")
def minilm_tokenizer():
    """The packaged MiniLM tokenizer (BERT's uncased WordPiece vocabulary), offline."""
    from transformers import AutoTokenizer

    from contrastive_tutorial.encoders import resolve_model_id

    return AutoTokenizer.from_pretrained(resolve_model_id("sentence-transformers/all-MiniLM-L6-v2"))


@pytest.fixture(scope="module")
def tiny_encoder_parts(minilm_tokenizer):
    """``(tokenizer, model)``: a randomly initialised two-layer BERT encoder (no MLM head)."""
    import torch
    from transformers import BertModel

    torch.manual_seed(0)
    return minilm_tokenizer, BertModel(_tiny_bert_config(minilm_tokenizer))


@pytest.fixture(scope="module")
def tiny_mlm_parts(minilm_tokenizer):
    """``(tokenizer, model)``: the same tiny BERT with an MLM head (``BertForMaskedLM``)."""
    import torch
    from transformers import BertForMaskedLM

    torch.manual_seed(0)
    return minilm_tokenizer, BertForMaskedLM(_tiny_bert_config(minilm_tokenizer))
