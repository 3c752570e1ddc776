"""The training record: what was trained how, kept in the pooling module's config for the model card."""

from __future__ import annotations

import datetime
from typing import Any

from torch import nn

from st_generalized_pooling.loading import is_generalized_pooling, package_version
from st_generalized_pooling.training.losses import HeadDiversityLoss


def describe_loss(loss: nn.Module) -> dict[str, Any]:
    """Loss name and head-diversity penalty (None without one) of a possibly wrapped loss."""
    if isinstance(loss, HeadDiversityLoss):
        return {
            "loss": type(loss.loss).__name__,
            "penalty": loss.penalty,
            "penalty_weight": loss.weight,
            "penalty_margin": loss.margin,
        }
    return {"loss": type(loss).__name__, "penalty": None}


def training_record(model: nn.Module, loss: nn.Module, **details: Any) -> dict[str, Any]:
    """The record of one training run: the loss, the given details, the date and this package's version;
    also stored on the model's generalized pooling (if it has one), so every later save carries it."""
    record = {
        **describe_loss(loss),
        **details,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "package_version": package_version(),
    }
    for module in model.modules():
        if is_generalized_pooling(module):
            module.training_details = record
    return record
