"""Glue for sentence-transformers' own ``SentenceTransformerTrainer``: freeze the encoder, give the generalized
pooling its own learning rate, record the run on the pooling, and train in one call (``train_with_trainer``).

Checkpoints need nothing extra: the pooling writes its weights as safetensors, keeps a repo-code copy of its source
where the loader looks (see pooling.py's ``save``), and the trainer's own reload (``_load_from_checkpoint``, also
used by ``load_best_model_at_end``) maps the checkpoint's module type to the class being trained.
"""

from __future__ import annotations

import os
import re
import tempfile
from typing import Any

import torch
from datasets import Dataset
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.trainer import SentenceTransformerTrainer
from sentence_transformers.sentence_transformer.training_args import SentenceTransformerTrainingArguments
from torch import nn
from transformers import TrainerCallback

from st_generalized_pooling.errors import GeneralizedPoolingError
from st_generalized_pooling.loading import is_generalized_pooling
from st_generalized_pooling.training.data import as_pairs
from st_generalized_pooling.training.record import training_record

DEFAULT_LEARNING_RATE = 2e-5
DEFAULT_POOLING_LEARNING_RATE = 1e-3


def freeze_encoder(model: SentenceTransformer) -> list[str]:
    """Stop gradients into the model's first module (the encoder); returns the names of the frozen parameters."""
    name, encoder = next(iter(model.named_children()))
    for parameter in encoder.parameters():
        parameter.requires_grad_(False)
    return [f"{name}.{parameter_name}" for parameter_name, _ in encoder.named_parameters()]


def pooling_learning_rate_mapping(model: SentenceTransformer, learning_rate: float) -> dict[str, float]:
    """A ``learning_rate_mapping`` for SentenceTransformerTrainingArguments that gives the generalized pooling's
    parameters ``learning_rate``. The trainer matches it against the loss's parameter names, e.g.
    ``model.1.w1`` (or ``loss.model.1.w1`` inside a wrapping loss)."""
    for name, module in model.named_children():
        if is_generalized_pooling(module):
            return {rf"(^|\.)model\.{re.escape(name)}\.": learning_rate}
    raise GeneralizedPoolingError("The model has no MultiHeadGeneralizedPooling module to give a learning rate.")


class TrainingRecordCallback(TrainerCallback):
    """At the end of training, stores the run's record on the model's generalized pooling (for the card)."""

    def __init__(self, loss: nn.Module, num_pairs: int, **details: Any) -> None:
        self.loss = loss
        self.num_pairs = num_pairs
        self.details = details
        self.record: dict[str, Any] | None = None

    def on_train_end(self, args, state, control, model=None, **kwargs) -> None:
        train_losses = [entry["loss"] for entry in state.log_history if "loss" in entry]  # one per logging step
        eval_losses = [entry["eval_loss"] for entry in state.log_history if "eval_loss" in entry]
        runtimes = [entry["train_runtime"] for entry in state.log_history if "train_runtime" in entry]
        frozen = not any(p.requires_grad for p in next(iter(model.children())).parameters())
        details: dict[str, Any] = {
            "method": "SentenceTransformerTrainer",
            "frozen_encoder": frozen,
            "epochs": args.num_train_epochs,
            "batch_size": args.per_device_train_batch_size,
            "learning_rate": args.learning_rate,
            "pooling_learning_rate": next(iter(args.learning_rate_mapping.values()), args.learning_rate),
            "num_pairs": self.num_pairs,
            "seed": args.seed,
            "epoch_losses": train_losses,
            "final_training_loss": train_losses[-1] if train_losses else None,
            "train_seconds": runtimes[-1] if runtimes else None,  # the Trainer's train_runtime
            **self.details,
        }
        if eval_losses:
            details["eval_losses"] = eval_losses
        if state.best_model_checkpoint and args.load_best_model_at_end:
            details["best_step"] = int(state.best_model_checkpoint.rsplit("-", 1)[-1])
        self.record = training_record(model, self.loss, **details)


def train_with_trainer(
    model: SentenceTransformer,
    train_dataset: Dataset | list[dict[str, Any]],
    loss: nn.Module,
    eval_dataset: Dataset | list[dict[str, Any]] | None = None,
    epochs: int = 1,
    batch_size: int = 32,
    learning_rate: float = DEFAULT_LEARNING_RATE,
    pooling_learning_rate: float | None = DEFAULT_POOLING_LEARNING_RATE,
    freeze: bool = False,
    output_dir: str | os.PathLike | None = None,
    seed: int = 0,
    show_progress_bar: bool = True,
    **training_args: Any,
) -> dict[str, Any]:
    """Train ``model`` with SentenceTransformerTrainer on (sentence1, sentence2, score) pairs.

    With ``eval_dataset`` it evaluates and checkpoints every epoch and ends with the checkpoint of the lowest eval
    loss (``load_best_model_at_end``). ``freeze`` freezes the encoder (it stays frozen afterwards);
    ``pooling_learning_rate`` is the generalized pooling's own learning rate (None: ``learning_rate``). Checkpoints
    go to ``output_dir`` (default: a temporary folder, removed at the end). Other keyword arguments go to
    SentenceTransformerTrainingArguments. Returns the training record, also stored on the model's pooling.
    """
    train_pairs = as_pairs(train_dataset, "train_dataset")
    eval_pairs = as_pairs(eval_dataset, "eval_dataset") if eval_dataset is not None else None
    if freeze:
        freeze_encoder(model)
    mapping = pooling_learning_rate_mapping(model, pooling_learning_rate) if pooling_learning_rate is not None else {}
    per_epoch = "epoch" if eval_pairs is not None else "no"
    with tempfile.TemporaryDirectory(prefix="st-gp-train-") as scratch:
        settings = {
            "output_dir": os.fspath(output_dir) if output_dir is not None else scratch,
            "num_train_epochs": epochs,
            "per_device_train_batch_size": batch_size,
            "per_device_eval_batch_size": batch_size,
            "learning_rate": learning_rate,
            "learning_rate_mapping": mapping,
            "seed": seed,
            "eval_strategy": per_epoch,
            "save_strategy": per_epoch,
            "load_best_model_at_end": eval_pairs is not None,
            "metric_for_best_model": "eval_loss",
            "greater_is_better": False,
            "logging_strategy": "epoch",  # the logged loss is then each epoch's mean, as in train_pooling_head
            "report_to": "none",
            "disable_tqdm": not show_progress_bar,
            "dataloader_pin_memory": torch.cuda.is_available(),  # pinning without a GPU only warns
        }
        args = SentenceTransformerTrainingArguments(**{**settings, **training_args})
        sizes = {"num_eval_pairs": len(eval_pairs)} if eval_pairs is not None else {}
        record = TrainingRecordCallback(loss, len(train_pairs), **sizes)
        trainer = SentenceTransformerTrainer(
            model=model, args=args, train_dataset=train_pairs, eval_dataset=eval_pairs, loss=loss, callbacks=[record]
        )
        trainer.train()
    return record.record
