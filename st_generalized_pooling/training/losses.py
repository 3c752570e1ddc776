"""Head-diversity penalties of Chen, Ling & Zhu (2018), as a wrapper around any sentence-transformers loss.

Each penalty is a pairwise hinge over the heads, ``sum_{i<j} max(margin - ||X_i - X_j||^2, 0)``, with X_h the
head's W1 matrix (``"weights"``), its attention matrix over the sentence's tokens (``"attention"``), or its output
vector (``"outputs"``). It keeps heads from learning the same thing; ``weight`` times it is added to the loss.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import Any, Literal

import torch
from sentence_transformers.sentence_transformer.losses import (
    ContrastiveLoss,
    CoSENTLoss,
    MultipleNegativesRankingLoss,
)
from torch import Tensor, nn

from st_generalized_pooling.errors import GeneralizedPoolingError
from st_generalized_pooling.loading import find_generalized_pooling
from st_generalized_pooling.pooling import MultiHeadGeneralizedPooling

Penalty = Literal["weights", "attention", "outputs"]
PENALTIES: tuple[str, ...] = ("weights", "attention", "outputs")
# The losses ``st-gp train --loss`` offers for (sentence1, sentence2, score) pairs.
LOSSES: dict[str, type[nn.Module]] = {
    "cosent": CoSENTLoss,  # ranks the pairs of a batch by score
    "contrastive": ContrastiveLoss,  # pulls pairs with score 1 together, pushes score-0 pairs past a margin
    "mnrl": MultipleNegativesRankingLoss,  # positives only; the other pairs of the batch are the negatives
}


def pairwise_hinge(heads: Tensor, margin: float) -> Tensor:
    """``sum_{i<j} max(margin - ||X_i - X_j||^2, 0)`` for ``heads`` of shape (..., H, F), one value per leading index.

    One head pair at a time, from explicit differences: exact for near-identical heads, and memory stays at one
    (..., F) difference (attention matrices of long sentences are large).
    """
    total = heads.new_zeros(heads.shape[:-2])
    for i, j in itertools.combinations(range(heads.shape[-2]), 2):
        total = total + torch.relu(margin - (heads[..., i, :] - heads[..., j, :]).pow(2).sum(-1))
    return total


class HeadDiversityLoss(nn.Module):
    """``loss + weight * penalty``: the wrapped sentence-transformers loss plus a head-diversity penalty.

    Args:
        model: the SentenceTransformer being trained (with generalized pooling).
        loss: the loss to wrap, built on ``model`` (e.g. CoSENTLoss, ContrastiveLoss, MultipleNegativesRankingLoss).
        penalty: ``"weights"`` (W1 of each head; independent of the batch, the paper's released setting),
            ``"attention"`` (each head's attention matrix over the valid tokens, per sentence) or ``"outputs"``
            (each head's slice of the pooled vector, per sentence). Per-sentence penalties are averaged over all
            sentences the wrapped loss embedded in the step.
        weight: factor of the penalty (the paper uses 0.01).
        margin: the hinge margin (the paper uses 1).

    The attention and output penalties read what the pooling computed inside the wrapped loss's forward pass
    (through a forward hook), so they cost no extra encoder pass. If the wrapped loss returns a dict of loss
    components, the penalty is added as the ``head_diversity`` component, which the trainer then logs.
    """

    def __init__(
        self,
        model: nn.Module,
        loss: nn.Module,
        penalty: Penalty = "weights",
        weight: float = 0.01,
        margin: float = 1.0,
    ) -> None:
        super().__init__()
        if penalty not in PENALTIES:
            raise GeneralizedPoolingError(f"penalty must be one of {', '.join(PENALTIES)}, not {penalty!r}.")
        if weight < 0 or margin <= 0:
            raise GeneralizedPoolingError(
                f"penalty weight must be >= 0 and margin > 0, got weight={weight}, margin={margin}."
            )
        find_generalized_pooling(model)
        self.model = model
        self.loss = loss
        self.penalty = penalty
        self.weight = weight
        self.margin = margin

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor | None) -> Tensor | dict[str, Tensor]:
        pooling = find_generalized_pooling(self.model)
        if self.penalty == "weights":
            value = self.loss(sentence_features, labels)
            penalty = pairwise_hinge(pooling.w1.flatten(1).unsqueeze(0), self.margin)[0]
        else:
            captured: list[Tensor] = []

            def capture(module: MultiHeadGeneralizedPooling, args: tuple, output: dict[str, Any]) -> None:
                captured.append(self.per_sentence_penalty(module, output))

            handle = pooling.register_forward_hook(capture)
            try:
                value = self.loss(sentence_features, labels)
            finally:
                handle.remove()
            if not captured:
                raise GeneralizedPoolingError(
                    f"The {self.penalty} penalty saw no pooling call: {type(self.loss).__name__} did not embed "
                    f"anything through the model."
                )
            penalty = torch.cat(captured).mean()
        if isinstance(value, dict):
            return {**value, "head_diversity": self.weight * penalty}
        return value + self.weight * penalty

    def per_sentence_penalty(self, pooling: MultiHeadGeneralizedPooling, features: dict[str, Any]) -> Tensor:
        """The attention or output penalty of each sentence of one pooling call, shape (batch,)."""
        if self.penalty == "attention":
            attention, _ = pooling.attention_weights(features)  # (B, T, H, d/H), zero at padding
            heads = attention.permute(0, 2, 1, 3).flatten(2)  # (B, H, T * d/H)
        else:
            embedding = features["sentence_embedding"]  # the pooling's own output: later modules replace the key
            heads = embedding.float().view(embedding.shape[0], pooling.num_heads, pooling.head_dim)
        return pairwise_hinge(heads, self.margin)

    def get_config_dict(self) -> dict[str, Any]:
        """What the model card shows about this loss."""
        inner = self.loss.get_config_dict() if hasattr(self.loss, "get_config_dict") else {}
        return {"loss": type(self.loss).__name__, **inner, "penalty": self.penalty, "weight": self.weight,
                "margin": self.margin}

    @property
    def citation(self) -> str:
        return """
@inproceedings{chen-etal-2018-enhancing,
    title = "Enhancing Sentence Embedding with Generalized Pooling",
    author = "Chen, Qian and Ling, Zhen-Hua and Zhu, Xiaodan",
    booktitle = "Proceedings of the 27th International Conference on Computational Linguistics",
    year = "2018",
    pages = "1815--1826",
}
"""


def make_loss(name: str, model: nn.Module, penalty: Penalty | None = None, penalty_weight: float = 0.01) -> nn.Module:
    """The loss called ``name`` in LOSSES, built on ``model``, wrapped in HeadDiversityLoss when ``penalty`` is set."""
    if name not in LOSSES:
        raise GeneralizedPoolingError(f"loss must be one of {', '.join(LOSSES)}, not {name!r}.")
    loss = LOSSES[name](model)
    return HeadDiversityLoss(model, loss, penalty, penalty_weight) if penalty is not None else loss
