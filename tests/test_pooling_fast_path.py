"""The fast path of MultiHeadGeneralizedPooling (packed tokens, chunked heads' MLP, hand-written backward)
gives what the plain padded computation gives: outputs, attention and every gradient."""

from __future__ import annotations

import pytest
import torch

from st_generalized_pooling import MultiHeadGeneralizedPooling
from st_generalized_pooling import pooling as pooling_module
from st_generalized_pooling.benchmark import SeedReferencePooling


def plain(pooling: MultiHeadGeneralizedPooling, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Embeddings (B, d) and attention (B, T, d) by plain autograd ops on the padded batch, in float64."""
    weight, bias = pooling.projection.weight.double(), pooling.projection.bias.double()
    projected = x.double() @ weight.T + bias  # (B, T, d)
    heads = projected.unflatten(-1, (pooling.num_heads, pooling.head_dim))  # (B, T, H, d/H)
    hidden = torch.relu(torch.einsum("bthk,hkj->bthj", heads, pooling.w1.double()) + pooling.b1.double())
    logits = torch.einsum("bthj,hjk->bthk", hidden, pooling.w2.double()) + pooling.b2.double()
    logits = logits.flatten(2).masked_fill(~mask.bool().unsqueeze(-1), float("-inf"))
    attention = torch.softmax(logits, dim=1).nan_to_num(0.0)  # rows without tokens: 0
    return (attention * projected).sum(1), attention


def random_case(batch: int, tokens: int, dim: int, seed: int, empty_rows: tuple[int, ...] = (), full: bool = False):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, tokens, dim, generator=generator) * 3
    if full:
        mask = torch.ones(batch, tokens, dtype=torch.long)
    else:  # random valid positions, not only right padding
        mask = (torch.rand(batch, tokens, generator=generator) < 0.6).long()
        mask[:, 0] = 1
    for row in empty_rows:
        mask[row] = 0
    return x, mask


def random_pooling(dim: int = 24, heads: int = 4, seed: int = 0) -> MultiHeadGeneralizedPooling:
    return MultiHeadGeneralizedPooling(dim, num_heads=heads, hidden_dim=10, initialization="random", seed=seed)


@pytest.fixture(params=["one chunk", "chunks of 2 tokens"])
def chunking(request, monkeypatch):
    """Run each test with the heads' MLP in one piece and cut into chunks of 2 tokens (4 heads x 10 hidden)."""
    if request.param != "one chunk":
        monkeypatch.setattr(pooling_module, "CHUNK_ACTIVATIONS", 2 * 4 * 10)
    return request.param


CASES = [
    pytest.param(1, 1, (), False, id="batch 1, one token"),
    pytest.param(1, 9, (), False, id="batch 1"),
    pytest.param(6, 7, (1, 4), False, id="all-padding rows"),
    pytest.param(3, 5, (0, 1, 2), False, id="only all-padding rows"),
    pytest.param(5, 8, (), True, id="no padding"),
    pytest.param(16, 13, (3,), False, id="random masks"),
]


@pytest.mark.parametrize("batch,tokens,empty,full", CASES)
def test_forward_equals_the_plain_computation(chunking, batch, tokens, empty, full):
    pooling = random_pooling()
    x, mask = random_case(batch, tokens, 24, seed=batch * tokens, empty_rows=empty, full=full)
    expected, _ = plain(pooling, x, mask)
    features = {"token_embeddings": x, "attention_mask": mask}
    with torch.no_grad():
        inference = pooling(dict(features))["sentence_embedding"]
    training = pooling(dict(features))["sentence_embedding"]
    assert torch.allclose(inference.double(), expected, atol=1e-6, rtol=0)
    assert torch.allclose(inference, training.detach(), atol=1e-6, rtol=0)
    assert not inference[list(empty)].any()


@pytest.mark.parametrize("batch,tokens,empty,full", CASES)
def test_gradients_equal_the_plain_computation(chunking, batch, tokens, empty, full):
    pooling = random_pooling(seed=1)
    x, mask = random_case(batch, tokens, 24, seed=batch + tokens, empty_rows=empty, full=full)
    x.requires_grad_(True)
    cotangent = torch.randn(batch, 24, generator=torch.Generator().manual_seed(2))
    embedding = pooling({"token_embeddings": x, "attention_mask": mask})["sentence_embedding"]
    fast = torch.autograd.grad(embedding, [x, *pooling.parameters()], cotangent)
    expected, _ = plain(pooling, x, mask)
    reference = torch.autograd.grad(expected, [x, *pooling.parameters()], cotangent.double(), allow_unused=True)
    names = ["token_embeddings"] + [name for name, _ in pooling.named_parameters()]
    for name, got, want in zip(names, fast, reference):
        want = torch.zeros_like(got) if want is None else want
        assert torch.allclose(got.double(), want.double(), atol=1e-5, rtol=1e-4), name


@pytest.mark.parametrize("full", [False, True], ids=["padding", "no padding"])
def test_attention_weights_and_their_gradient_equal_the_plain_computation(chunking, full):
    pooling = random_pooling(seed=2)
    x, mask = random_case(4, 6, 24, seed=3, empty_rows=() if full else (2,), full=full)
    attention, valid = pooling.attention_weights({"token_embeddings": x, "attention_mask": mask})
    _, expected = plain(pooling, x, mask)
    assert torch.allclose(attention.flatten(2).double(), expected, atol=1e-6, rtol=0)
    assert torch.equal(valid, mask.bool())
    # A penalty on the attention alone (as the head-diversity loss uses) gets the same gradient.
    weights = torch.randn(expected.shape, generator=torch.Generator().manual_seed(4))
    fast = torch.autograd.grad((attention.flatten(2) * weights).sum(), [pooling.w1, pooling.w2, pooling.projection.weight])
    reference = torch.autograd.grad((expected * weights.double()).sum(), [pooling.w1, pooling.w2, pooling.projection.weight])
    for got, want in zip(fast, reference):
        assert torch.allclose(got.double(), want.double(), atol=1e-5, rtol=1e-4)


def test_half_precision_is_not_chunked_and_matches_float32():
    pooling = random_pooling(seed=3)
    x, mask = random_case(5, 7, 24, seed=5, empty_rows=(1,))
    expected = pooling({"token_embeddings": x, "attention_mask": mask})["sentence_embedding"]
    half = pooling.to(torch.bfloat16)
    x = x.bfloat16().requires_grad_(True)
    output = half({"token_embeddings": x, "attention_mask": mask})["sentence_embedding"]
    output.float().sum().backward()
    assert output.dtype == torch.bfloat16 and torch.allclose(output.float(), expected, atol=0.1)
    assert all(p.grad is not None and p.grad.dtype == torch.bfloat16 for p in half.parameters())
    assert torch.isfinite(x.grad).all()


def test_the_seed_reference_of_the_benchmark_computes_the_same_embeddings():
    pooling = random_pooling(seed=4)
    reference = SeedReferencePooling.from_pooling(pooling)
    x, mask = random_case(6, 9, 24, seed=6)
    features = {"token_embeddings": x, "attention_mask": mask}
    ours = pooling(dict(features))["sentence_embedding"]
    seed = reference(dict(features))["sentence_embedding"]
    assert torch.allclose(ours, seed, atol=1e-5)
