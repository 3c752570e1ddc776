"""Shared fixtures: tiny sentence-transformers models (see tiny_models.py), offline, one torch thread."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import pytest
import torch
from sentence_transformers import SentenceTransformer
from tiny_models import build_model

# One intra-op thread: on the shared 2-core machine, with other jobs running, every small parallel op
# (index_add_, scatter_reduce_) waits for a descheduled second thread, and the tiny-model tests ran 10x slower.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def distil_model(tmp_path_factory) -> SentenceTransformer:
    return build_model(str(tmp_path_factory.mktemp("distil")), "distil")


@pytest.fixture(scope="session")
def bert_model(tmp_path_factory) -> SentenceTransformer:
    return build_model(str(tmp_path_factory.mktemp("bert")), "bert")


@pytest.fixture(params=["distil", "bert"])
def tiny_model(request) -> SentenceTransformer:
    return request.getfixturevalue(f"{request.param}_model")
