"""Fine-tuning the generalized pooling: head-diversity penalties, pooler-only training on cached token embeddings,
and glue for sentence-transformers' trainer."""

from st_generalized_pooling.loading import is_generalized_pooling
from st_generalized_pooling.training.data import as_pairs, positive_pairs, read_pairs
from st_generalized_pooling.training.losses import HeadDiversityLoss, make_loss
from st_generalized_pooling.training.pooler import train_pooling_head
from st_generalized_pooling.training.trainer import (
    TrainingRecordCallback,
    freeze_encoder,
    pooling_learning_rate_mapping,
    train_with_trainer,
)

__all__ = [
    "HeadDiversityLoss",
    "TrainingRecordCallback",
    "as_pairs",
    "freeze_encoder",
    "is_generalized_pooling",
    "make_loss",
    "pooling_learning_rate_mapping",
    "positive_pairs",
    "read_pairs",
    "train_pooling_head",
    "train_with_trainer",
]
