"""Pooler-only training: with the encoder frozen its token embeddings never change, so they are computed once and
only the modules after it (the generalized pooling, a following Dense) are trained on them, epoch after epoch.

The optimisation is the Hugging Face Trainer's default (AdamW, linear decay to 0 without warmup, gradient norm
clipped at 1), so that it gives the same weights as ``SentenceTransformerTrainer`` with the encoder frozen.
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Literal

import torch
from datasets import Dataset
from sentence_transformers import SentenceTransformer
from sentence_transformers.base.modules import InputModule
from torch import Tensor, nn
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup

from st_generalized_pooling.errors import GeneralizedPoolingError
from st_generalized_pooling.loading import is_generalized_pooling
from st_generalized_pooling.training.cache import TokenEmbeddingCache
from st_generalized_pooling.training.data import as_pairs
from st_generalized_pooling.training.record import training_record

HeadModules = Literal["after_encoder", "pooling"]
DEFAULT_HEAD_LEARNING_RATE = 1e-3
MAX_GRAD_NORM = 1.0  # the Hugging Face Trainer's default


class _CachedEncoder(nn.Module):
    """Stands in for the encoder during pooler-only training: turns ``{"text_index": ...}`` into the cached
    token embeddings and mask, so that losses call the model exactly as they would on tokenized text."""

    def __init__(self, cache: TokenEmbeddingCache, device: torch.device) -> None:
        super().__init__()
        self.cache = cache
        self.device = device

    def forward(self, features: dict[str, Any], **kwargs) -> dict[str, Any]:
        return self.cache.batch(features["text_index"], self.device)


@contextlib.contextmanager
def _encoder_replaced(model: SentenceTransformer, stand_in: nn.Module) -> Iterator[None]:
    name = next(iter(model._modules))
    encoder = model._modules[name]
    model._modules[name] = stand_in
    try:
        yield
    finally:
        model._modules[name] = encoder


def head_modules(model: SentenceTransformer, modules: HeadModules = "after_encoder") -> dict[str, nn.Module]:
    """The modules trained by the pooler-only path, by name: every module after the encoder that has weights
    (``"after_encoder"``), or only the generalized pooling (``"pooling"``)."""
    if modules not in ("after_encoder", "pooling"):
        raise GeneralizedPoolingError(f"modules must be 'after_encoder' or 'pooling', not {modules!r}.")
    children = list(model.named_children())
    if not children or not isinstance(children[0][1], InputModule):
        raise GeneralizedPoolingError("Pooler-only training needs a model whose first module is its encoder.")
    chosen = {
        name: module
        for name, module in children[1:]
        if any(True for _ in module.parameters())
        and (modules == "after_encoder" or is_generalized_pooling(module))
    }
    if not chosen:
        what = "MultiHeadGeneralizedPooling" if modules == "pooling" else "module with weights"
        kinds = ", ".join(type(module).__name__ for _, module in children)
        raise GeneralizedPoolingError(f"Nothing to train: the model ({kinds}) has no {what} after its encoder.")
    return chosen


def _optimizer_groups(chosen: Mapping[str, nn.Module], learning_rate: float, pooling_learning_rate: float | None):
    groups: dict[float, list[nn.Parameter]] = {}
    for module in chosen.values():
        rate = learning_rate
        if pooling_learning_rate is not None and is_generalized_pooling(module):
            rate = pooling_learning_rate
        groups.setdefault(rate, []).extend(module.parameters())
    return [{"params": params, "lr": rate} for rate, params in groups.items()]


def _text_indices(datasets: Iterable[Dataset]) -> tuple[list[str], list[tuple[Tensor, Tensor, Tensor]]]:
    """The distinct texts of all datasets, and per dataset the index of each pair's two texts and the scores."""
    position: dict[str, int] = {}
    encoded = []
    for dataset in datasets:
        columns = [torch.tensor([position.setdefault(text, len(position)) for text in dataset[column]])
                   for column in ("sentence1", "sentence2")]
        encoded.append((*columns, torch.tensor(dataset["score"], dtype=torch.float32)))
    return list(position), encoded


def train_pooling_head(
    model: SentenceTransformer,
    train_dataset: Dataset | Iterable[Mapping[str, Any]],
    loss: nn.Module,
    epochs: int = 1,
    batch_size: int = 32,
    learning_rate: float = DEFAULT_HEAD_LEARNING_RATE,
    modules: HeadModules = "after_encoder",
    cache_dir: str | os.PathLike | None = None,
    seed: int = 0,
    show_progress_bar: bool = True,
    pooling_learning_rate: float | None = None,
    eval_dataset: Dataset | Iterable[Mapping[str, Any]] | None = None,
    encode_batch_size: int = 64,
) -> dict[str, Any]:
    """Train only the head of ``model`` (the modules after its frozen encoder) on cached token embeddings.

    Args:
        model: a SentenceTransformer whose first module is the encoder, e.g. converted to generalized pooling,
            or plain mean pooling followed by a Dense.
        train_dataset: pairs with columns sentence1, sentence2, score (a Dataset or a list of dicts).
        loss: a sentence-transformers loss built on ``model`` (CoSENTLoss, ContrastiveLoss,
            MultipleNegativesRankingLoss, ...), possibly wrapped in HeadDiversityLoss.
        epochs, batch_size, seed: pairs are shuffled each epoch by a generator seeded with ``seed``.
        learning_rate: AdamW learning rate of the trained modules (linear decay to 0).
        modules: ``"after_encoder"`` trains every module after the encoder that has weights (the pooling and a
            following Dense); ``"pooling"`` only the generalized pooling (a Dense still runs, frozen).
        cache_dir: keep the token embeddings in safetensors files there rather than in memory (reused when the
            folder already holds those of the same texts and encoder).
        pooling_learning_rate: a separate learning rate for the generalized pooling (default: ``learning_rate``).
        eval_dataset: pairs to compute the loss on after every epoch; the head of the epoch with the lowest
            eval loss is kept at the end.
        encode_batch_size: batch size of the one pass of the encoder over the distinct texts.

    Returns the training record (also stored on the model's generalized pooling, see ``training_record``), with
    the seconds spent caching the token embeddings and training each epoch.
    The encoder's weights are never touched; every parameter's ``requires_grad`` is restored at the end.
    """
    if epochs < 1 or batch_size < 1:
        raise GeneralizedPoolingError(f"epochs ({epochs}) and batch_size ({batch_size}) must be at least 1.")
    if getattr(loss, "model", model) is not model:
        raise GeneralizedPoolingError("The loss was built on another model: build it on the model being trained.")
    train_pairs = as_pairs(train_dataset, "train_dataset")
    eval_pairs = as_pairs(eval_dataset, "eval_dataset") if eval_dataset is not None else None
    chosen = head_modules(model, modules)
    texts, encoded = _text_indices([train_pairs] + ([eval_pairs] if eval_pairs is not None else []))
    started = time.perf_counter()
    cache = TokenEmbeddingCache.build(model, texts, encode_batch_size, cache_dir, show_progress_bar)
    cache_seconds = time.perf_counter() - started

    trained = {id(p) for module in chosen.values() for p in module.parameters()}
    flags = {parameter: parameter.requires_grad for parameter in model.parameters()}
    for parameter in model.parameters():
        parameter.requires_grad_(id(parameter) in trained)
    optimizer = torch.optim.AdamW(_optimizer_groups(chosen, learning_rate, pooling_learning_rate), weight_decay=0.0)
    steps_per_epoch = math.ceil(len(train_pairs) / batch_size)
    scheduler = get_linear_schedule_with_warmup(optimizer, 0, steps_per_epoch * epochs)
    generator = torch.Generator().manual_seed(seed)
    parameters = [p for module in chosen.values() for p in module.parameters()]
    device = model.device

    def step_losses(pairs: tuple[Tensor, Tensor, Tensor], order: Tensor, train: bool) -> Iterator[float]:
        first, second, scores = pairs
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            features = [{"text_index": first[batch]}, {"text_index": second[batch]}]
            value = loss(features, scores[batch].to(device))
            if isinstance(value, dict):
                value = torch.stack(list(value.values())).sum()
            if train:
                value.backward()
                torch.nn.utils.clip_grad_norm_(parameters, MAX_GRAD_NORM)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
            yield float(value.detach())

    epoch_losses: list[float] = []
    epoch_seconds: list[float] = []
    eval_losses: list[float] = []
    best: tuple[float, int, dict[str, dict[str, Tensor]]] | None = None
    progress = tqdm(total=steps_per_epoch * epochs, desc="Training pooling head", disable=not show_progress_bar,
                    unit="step")
    try:
        with _encoder_replaced(model, _CachedEncoder(cache, device)):
            for epoch in range(epochs):
                model.train()
                started = time.perf_counter()
                losses = []
                for value in step_losses(encoded[0], torch.randperm(len(train_pairs), generator=generator), True):
                    losses.append(value)
                    progress.update()
                    progress.set_postfix(loss=f"{value:.4f}")
                epoch_seconds.append(time.perf_counter() - started)
                epoch_losses.append(sum(losses) / len(losses))
                if eval_pairs is not None:
                    model.eval()
                    with torch.no_grad():
                        values = list(step_losses(encoded[1], torch.arange(len(eval_pairs)), False))
                    eval_losses.append(sum(values) / len(values))
                    if best is None or eval_losses[-1] < best[0]:
                        state = {name: copy.deepcopy(module.state_dict()) for name, module in chosen.items()}
                        best = (eval_losses[-1], epoch + 1, state)
    finally:
        progress.close()
        model.eval()
        for parameter, flag in flags.items():
            parameter.requires_grad_(flag)
    if best is not None:
        for name, module in chosen.items():
            module.load_state_dict(best[2][name])

    details: dict[str, Any] = {
        "method": "pooler-only (cached token embeddings)",
        "frozen_encoder": True,
        "trained_modules": [type(module).__name__ for module in chosen.values()],
        "epochs": epochs,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "pooling_learning_rate": pooling_learning_rate if pooling_learning_rate is not None else learning_rate,
        "num_pairs": len(train_pairs),
        "seed": seed,
        "epoch_losses": epoch_losses,
        "final_training_loss": epoch_losses[-1],
        "cache_seconds": round(cache_seconds, 3),
        "epoch_seconds": [round(seconds, 3) for seconds in epoch_seconds],
    }
    if best is not None:
        details.update(num_eval_pairs=len(eval_pairs), eval_losses=eval_losses, best_epoch=best[1])
    return training_record(model, loss, **details)
