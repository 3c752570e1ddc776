"""How much faster is a pooler-only epoch on cached token embeddings than a full-forward epoch?

Both train the same distiluse-shaped model (DistilBERT 768-d, 6 layers, random weights, all-MiniLM-L6-v2's
tokenizer; generalized pooling, 8 heads; Dense 768->512 tanh) with the encoder frozen, on real UI strings (msgid,
msgstr of a gettext catalog, half of them mismatched): ``train_with_trainer(freeze=True)`` (SentenceTransformerTrainer,
which tokenizes and runs the encoder at every step; its own train_runtime) against ``train_pooling_head`` (its
per-epoch seconds, after the one-off caching pass, reported separately). Interleaved rounds in one process, the
order alternating between rounds; the figure is the median of the per-round ratios.

    python scripts/benchmark_training.py [--pairs 256] [--rounds 5] [--threads N] [--catalog FILE.mo]
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import random
import statistics
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import polib
import torch
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.losses import CoSENTLoss

from st_generalized_pooling import convert
from st_generalized_pooling.benchmark import distiluse_shaped_model
from st_generalized_pooling.training import train_pooling_head, train_with_trainer


def distiluse_shaped(folder: str) -> SentenceTransformer:
    """The benchmark's random distiluse-shaped model, without dropout, converted to 8 heads."""
    return convert(distiluse_shaped_model(folder, dropout=0.0), num_heads=8, seed=0)


def catalog_pairs(path: str, count: int) -> list[dict]:
    """``count`` (msgid, msgstr) pairs of a catalog: the first half right (score 1), the second half mismatched."""
    entries = [(e.msgid, e.msgstr) for e in polib.mofile(path) if e.msgid and e.msgstr and not e.msgid_plural]
    if len(entries) < count:
        raise SystemExit(f"{path} has only {len(entries)} usable entries, fewer than --pairs {count}.")
    rng = random.Random(0)
    chosen = rng.sample(entries, count)
    half = count // 2
    wrong = [target for _, target in chosen[half:]]
    rng.shuffle(wrong)
    pairs = [{"sentence1": s, "sentence2": t, "score": 1.0} for s, t in chosen[:half]]
    return pairs + [{"sentence1": s, "sentence2": t, "score": 0.0} for (s, _), t in zip(chosen[half:], wrong)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=256, help="training pairs per epoch (default 256)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved measurement rounds (default 5)")
    parser.add_argument("--batch-size", type=int, default=32, help="pairs per step (default 32)")
    parser.add_argument("--catalog", default="/usr/share/locale/de/LC_MESSAGES/apt.mo", help="a .mo catalog")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as folder:
        model = distiluse_shaped(folder)
        pairs = catalog_pairs(args.catalog, args.pairs)
        tokens = [len(model.tokenizer(p[c])["input_ids"]) for p in pairs for c in ("sentence1", "sentence2")]
        common = {"epochs": 1, "batch_size": args.batch_size, "learning_rate": 1e-3, "show_progress_bar": False}

        def fresh() -> tuple[SentenceTransformer, CoSENTLoss]:
            trained = copy.deepcopy(model)
            return trained, CoSENTLoss(trained)

        def full_epoch(data: list[dict]) -> float:
            trained, loss = fresh()
            return train_with_trainer(trained, data, loss, freeze=True, pooling_learning_rate=None,
                                      **common)["train_seconds"]

        def cached_epochs(data: list[dict]) -> tuple[float, list[float]]:
            trained, loss = fresh()
            details = train_pooling_head(trained, data, loss, **{**common, "epochs": 3})
            return details["cache_seconds"], details["epoch_seconds"]

        warm = pairs[: args.batch_size]  # first calls pay one-off costs (thread pools, kernels): not measured
        full_epoch(warm)
        cached_epochs(warm)

        fulls, epochs, caches, ratios = [], [], [], []
        for number in range(args.rounds):
            if number % 2:
                cache, cached = cached_epochs(pairs)
                full = full_epoch(pairs)
            else:
                full = full_epoch(pairs)
                cache, cached = cached_epochs(pairs)
            fulls.append(full)
            epochs.extend(cached)
            caches.append(cache)
            ratios.append(full / statistics.median(cached))
            print(f"round {number + 1}: full-forward epoch {full:.2f} s, cached epochs "
                  f"{', '.join(f'{s:.3f}' for s in cached)} s, caching {cache:.2f} s, ratio {ratios[-1]:.1f}x",
                  flush=True)

    print()
    print(f"date {time.strftime('%Y-%m-%d')}, {platform.machine()}, {os.cpu_count()} CPU cores, "
          f"torch {torch.__version__} ({torch.get_num_threads()} threads)")
    print(f"{args.pairs} pairs, batch {args.batch_size}, {statistics.mean(tokens):.1f} tokens per text on average")
    print(f"full-forward epoch (SentenceTransformerTrainer, encoder frozen): median {statistics.median(fulls):.2f} s")
    print(f"pooler-only epoch on cached token embeddings:                   median {statistics.median(epochs):.3f} s")
    print(f"one-off caching of the token embeddings:                        median {statistics.median(caches):.2f} s")
    print(f"speed-up per epoch: median {statistics.median(ratios):.1f}x "
          f"(rounds: {', '.join(f'{r:.1f}' for r in ratios)})")


if __name__ == "__main__":
    main()
