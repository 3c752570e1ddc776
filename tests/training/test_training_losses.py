"""HeadDiversityLoss: the paper's three hinge penalties, against a direct computation, with their gradients."""

from __future__ import annotations

import itertools

import pytest
import torch
from tiny_models import SENTENCES
from sentence_transformers.sentence_transformer.losses import CoSENTLoss, MultipleNegativesRankingLoss

from st_generalized_pooling import GeneralizedPoolingError, convert
from st_generalized_pooling.training import HeadDiversityLoss
from st_generalized_pooling.training.losses import pairwise_hinge

# The squared W1 distances of the fixture's heads lie between 3.4 and 4.9: with this margin some pairs of heads
# are inside it and some outside, so the weights tests see both sides of the hinge.
MARGIN = 4.2


@pytest.fixture
def model(distil_model):
    """Random initialisation, so heads differ in their attention, and some pairs of heads are inside the margin."""
    return convert(distil_model, num_heads=4, hidden_dim=6, initialization="random", seed=3)


def columns(model):
    first, second = SENTENCES[1:5], SENTENCES[4:8]
    return [model.preprocess(first), model.preprocess(second)], torch.tensor([0.9, 0.1, 0.5, 0.3])


def direct_hinge(heads: list[torch.Tensor], margin: float) -> torch.Tensor:
    """sum over pairs i < j of max(margin - ||X_i - X_j||^2, 0), one pair at a time."""
    return sum(torch.clamp(margin - (a - b).pow(2).sum(), min=0) for a, b in itertools.combinations(heads, 2))


def direct_heads(model, features) -> list[tuple[list[torch.Tensor], list[torch.Tensor]]]:
    """Per sentence: each head's attention matrix (valid tokens x d/H) and output vector, from the paper's formula
    with one head and one sentence at a time."""
    pooling = model[1]
    tokens = model[0](dict(features))
    per_sentence = []
    for embeddings, mask in zip(tokens["token_embeddings"], tokens["attention_mask"].bool()):
        projected = pooling.projection(embeddings[mask])
        attentions, outputs = [], []
        for h in range(pooling.num_heads):
            x = projected[:, h * pooling.head_dim : (h + 1) * pooling.head_dim]
            logits = torch.relu(x @ pooling.w1[h] + pooling.b1[h]) @ pooling.w2[h] + pooling.b2[h]
            attention = torch.softmax(logits, dim=0)
            attentions.append(attention)
            outputs.append((attention * x).sum(0))
        per_sentence.append((attentions, outputs))
    return per_sentence


def test_weights_penalty_is_the_hinge_over_the_heads_w1(model):
    features, labels = columns(model)
    inner = CoSENTLoss(model)
    penalised = HeadDiversityLoss(model, inner, penalty="weights", weight=0.5, margin=MARGIN)
    expected_penalty = direct_hinge(list(model[1].w1), MARGIN)
    assert expected_penalty > 0
    torch.testing.assert_close(penalised(features, labels), inner(features, labels) + 0.5 * expected_penalty)


@pytest.mark.parametrize("penalty", ["attention", "outputs"])
def test_attention_and_output_penalties_average_the_per_sentence_hinge_over_all_embedded_sentences(model, penalty):
    features, labels = columns(model)
    inner = CoSENTLoss(model)
    with torch.no_grad():
        heads = [h for column in features for h in direct_heads(model, column)]
        expected = torch.stack([direct_hinge(a if penalty == "attention" else o, 1.0) for a, o in heads]).mean()
        assert expected > 0
        actual = HeadDiversityLoss(model, inner, penalty=penalty, weight=0.25)(features, labels)
        torch.testing.assert_close(actual, inner(features, labels) + 0.25 * expected, rtol=1e-5, atol=1e-6)


def test_the_margin_switches_pairs_off():
    heads = torch.tensor([[0.0, 0.0], [0.5, 0.0], [3.0, 0.0]])
    # ||h0-h1||^2 = 0.25, ||h0-h2||^2 = 9, ||h1-h2||^2 = 6.25: with margin 1 only the first pair counts.
    assert float(pairwise_hinge(heads, 1.0)) == pytest.approx(0.75)
    assert float(pairwise_hinge(heads, 7.0)) == pytest.approx(6.75 + 0.75)
    assert float(pairwise_hinge(heads[:1], 1.0)) == 0.0  # one head: no pairs


def test_the_hinge_gradient_is_exact():
    heads = torch.randn(3, 4, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 0.3
    torch.autograd.gradcheck(lambda x: pairwise_hinge(x, 2.0), (heads.requires_grad_(),))


def test_the_weights_penalty_pushes_w1_of_close_heads_apart(model):
    features, labels = columns(model)
    w1 = model[1].w1
    inner = CoSENTLoss(model)
    (plain,) = torch.autograd.grad(inner(features, labels), w1)
    (penalised,) = torch.autograd.grad(HeadDiversityLoss(model, inner, weight=0.1, margin=MARGIN)(features, labels), w1)
    # d/dW_i of max(m - ||W_i - W_j||^2, 0) is -2 (W_i - W_j) for every active pair.
    expected = torch.zeros_like(w1)
    for i, j in itertools.combinations(range(w1.shape[0]), 2):
        if (w1[i] - w1[j]).pow(2).sum() < MARGIN:
            expected[i] -= 2 * (w1[i] - w1[j]).detach()
            expected[j] += 2 * (w1[i] - w1[j]).detach()
    torch.testing.assert_close(penalised - plain, 0.1 * expected)


def test_attention_penalty_gives_gradient_to_the_attention_weights(model):
    features, labels = columns(model)
    penalised = HeadDiversityLoss(model, CoSENTLoss(model), penalty="attention", weight=0.0)
    weighted = HeadDiversityLoss(model, CoSENTLoss(model), penalty="attention", weight=1.0)
    (without,) = torch.autograd.grad(penalised(features, labels), model[1].w2)
    (with_penalty,) = torch.autograd.grad(weighted(features, labels), model[1].w2)
    assert not torch.allclose(without, with_penalty)


def test_a_dict_of_loss_components_gets_a_head_diversity_component(model):
    class Components(torch.nn.Module):
        def __init__(self, loss):
            super().__init__()
            self.loss = loss

        def forward(self, features, labels):
            return {"cosent": self.loss(features, labels)}

    features, labels = columns(model)
    result = HeadDiversityLoss(model, Components(CoSENTLoss(model)), weight=0.5, margin=MARGIN)(features, labels)
    assert set(result) == {"cosent", "head_diversity"}
    torch.testing.assert_close(result["head_diversity"], 0.5 * direct_hinge(list(model[1].w1), MARGIN))


def test_works_around_an_in_batch_negatives_loss(model):
    features, _ = columns(model)
    value = HeadDiversityLoss(model, MultipleNegativesRankingLoss(model), penalty="outputs")(features, None)
    assert value.dim() == 0 and torch.isfinite(value)


def test_errors(model, distil_model):
    with pytest.raises(GeneralizedPoolingError, match="no MultiHeadGeneralizedPooling"):
        HeadDiversityLoss(distil_model, CoSENTLoss(distil_model))
    with pytest.raises(GeneralizedPoolingError, match="penalty must be one of"):
        HeadDiversityLoss(model, CoSENTLoss(model), penalty="gradients")
    with pytest.raises(GeneralizedPoolingError, match="weight must be >= 0"):
        HeadDiversityLoss(model, CoSENTLoss(model), weight=-1)
