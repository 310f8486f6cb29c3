"""Shared fixtures: the offline data folder and a fast-failing hub."""

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
