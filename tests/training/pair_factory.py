"""Training pairs for the training tests: random word strings from the tiny tokenizer's vocabulary."""

from __future__ import annotations

import random

from tiny_models import WORDS


def make_pairs(count: int, seed: int = 0) -> list[dict]:
    """``count`` (sentence1, sentence2, score) rows; sentences of 1 to 7 words, so padding varies in a batch."""
    rng = random.Random(seed)
    return [
        {
            "sentence1": " ".join(rng.choices(WORDS, k=rng.randint(1, 7))),
            "sentence2": " ".join(rng.choices(WORDS, k=rng.randint(1, 7))),
            "score": round(rng.random(), 3),
        }
        for _ in range(count)
    ]
