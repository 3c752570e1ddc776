"""Score (source, translation) pairs by the cosine similarity of their embeddings.

Each distinct string is encoded once, whatever the number of pairs and languages it appears in (the same
msgid recurs across every language of a catalog). Several models that share one encoder (a base model, its
converted copy, and copies with trained pooling heads) are scored in one pass: the Transformer runs once
per batch and each model's own modules after it run on its output.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from sentence_transformers import SentenceTransformer
from sentence_transformers.util import batch_to_device
from tqdm.auto import tqdm

from st_generalized_pooling.detection.catalogs import Pair
from st_generalized_pooling.errors import GeneralizedPoolingError

# A symmetric task: both sides get the same prompt. e5 was trained with "query: " for symmetric tasks.
PROMPT_NAMES = ("query",)


def prompt_of(model: SentenceTransformer) -> str | None:
    """The prompt text to prepend to every string: the model's "query" prompt, else its default prompt."""
    for name in PROMPT_NAMES:
        if model.prompts.get(name):
            return model.prompts[name]
    if model.default_prompt_name:
        return model.prompts.get(model.default_prompt_name) or None
    return None


def same_encoder(a: SentenceTransformer, b: SentenceTransformer) -> bool:
    """Whether two models' first modules (the Transformer) are the same object or hold equal weights."""
    first, second = a[0], b[0]
    if first is second:
        return True
    if type(first) is not type(second) or getattr(first, "max_seq_length", None) != getattr(second, "max_seq_length", None):
        return False
    left, right = first.state_dict(), second.state_dict()
    return left.keys() == right.keys() and all(torch.equal(left[key], right[key]) for key in left)


def distinct_texts(pairs: Sequence[Pair]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The distinct strings of the pairs, and for each pair the index of its source and of its translation."""
    index: dict[str, int] = {}
    sources = np.array([index.setdefault(pair.source, len(index)) for pair in pairs], dtype=np.int64)
    translations = np.array([index.setdefault(pair.translation, len(index)) for pair in pairs], dtype=np.int64)
    return list(index), sources, translations


@torch.inference_mode()
def embed(
    models: Sequence[SentenceTransformer],
    texts: Sequence[str],
    batch_size: int = 64,
    show_progress_bar: bool = True,
) -> list[np.ndarray]:
    """Unit-length float32 embeddings of ``texts`` under each model, running the shared encoder once.

    All models must share their first module (see ``same_encoder``) and their prompt.
    """
    if not models:
        return []
    base = models[0]
    prompt = prompt_of(base)
    for other in models[1:]:
        if prompt_of(other) != prompt or not same_encoder(base, other):
            raise GeneralizedPoolingError(
                "The models scored together must share their Transformer and prompt; score them separately."
            )
    for model in models:
        model.eval()
    order = np.argsort([-len(text) for text in texts], kind="stable")  # similar lengths batch together
    dimension = [model.get_embedding_dimension() for model in models]
    result = [np.zeros((len(texts), d), dtype=np.float32) for d in dimension]
    batches = range(0, len(texts), batch_size)
    for start in tqdm(batches, desc="Encoding", unit="batch", disable=not show_progress_bar):
        chosen = order[start : start + batch_size]
        features = base.preprocess([texts[i] for i in chosen], prompt=prompt)
        features = batch_to_device(features, base.device)
        encoded = base[0](features)
        for model, out in zip(models, result):
            head = dict(encoded)
            for module in list(model.children())[1:]:
                head = module(head)
            vectors = torch.nn.functional.normalize(head["sentence_embedding"].float(), dim=-1)
            out[chosen] = vectors.cpu().numpy()
    return result


def score_with(
    models: Sequence[SentenceTransformer],
    pairs: Sequence[Pair],
    batch_size: int = 64,
    show_progress_bar: bool = True,
) -> list[np.ndarray]:
    """For each model, the cosine similarity of every pair's source and translation."""
    texts, sources, translations = distinct_texts(pairs)
    embeddings = embed(models, texts, batch_size, show_progress_bar)
    return [np.einsum("ij,ij->i", vectors[sources], vectors[translations]) for vectors in embeddings]


def score_pairs(
    model: SentenceTransformer, pairs: Sequence[Pair], batch_size: int = 64, show_progress_bar: bool = True
) -> np.ndarray:
    """The cosine similarity of every pair's source and translation under one model."""
    return score_with([model], pairs, batch_size, show_progress_bar)[0]
