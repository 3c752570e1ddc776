"""MultiHeadGeneralizedPooling: the maths, the exact mean start, numerics, gradients, save/load and errors."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from st_generalized_pooling import MultiHeadGeneralizedPooling


def padded_reference(pooling: MultiHeadGeneralizedPooling, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The paper's formula computed head by head on the padded batch, in float64: the specification."""
    d, heads, head_dim = pooling.embedding_dimension, pooling.num_heads, pooling.head_dim
    x = tokens.double()
    weight, bias = pooling.projection.weight.double(), pooling.projection.bias.double()
    outputs = []
    for h in range(heads):
        rows = slice(h * head_dim, (h + 1) * head_dim)
        xh = x @ weight[rows].T + bias[rows]  # (B, T, d/H)
        hidden = torch.relu(xh @ pooling.w1[h].double() + pooling.b1[h].double())
        logits = hidden @ pooling.w2[h].double() + pooling.b2[h].double()
        logits = logits.masked_fill(~mask.bool().unsqueeze(-1), float("-inf"))
        attention = torch.softmax(logits, dim=1).nan_to_num(0.0)  # all-padding rows: 0
        outputs.append((attention * xh).sum(dim=1))
    assert torch.cat(outputs, dim=-1).shape[-1] == d
    return torch.cat(outputs, dim=-1)


def random_batch(batch: int, tokens: int, dim: int, seed: int = 0, empty_rows: tuple[int, ...] = ()):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, tokens, dim, generator=generator)
    lengths = torch.randint(1, tokens + 1, (batch,), generator=generator)
    mask = (torch.arange(tokens).unsqueeze(0) < lengths.unsqueeze(1)).long()
    for row in empty_rows:
        mask[row] = 0
    return x, mask


def pool(pooling, x, mask=None):
    features = {"token_embeddings": x}
    if mask is not None:
        features["attention_mask"] = mask
    return pooling(features)["sentence_embedding"]


@pytest.mark.parametrize("batch,tokens,empty", [(1, 1, ()), (1, 9, ()), (5, 7, (2,)), (32, 16, (0, 31)), (3, 4, (0, 1, 2))])
@pytest.mark.parametrize("initialization", ["mean", "random"])
def test_forward_matches_the_paper_formula(batch, tokens, empty, initialization):
    pooling = MultiHeadGeneralizedPooling(24, num_heads=4, initialization=initialization, seed=3)
    if initialization == "mean":  # leave the exact-mean point so that attention is not uniform
        with torch.no_grad():
            pooling.w2.normal_(generator=torch.Generator().manual_seed(1))
    x, mask = random_batch(batch, tokens, 24, seed=batch + tokens, empty_rows=empty)
    expected = padded_reference(pooling, x, mask)
    assert torch.allclose(pool(pooling, x, mask).double(), expected, atol=1e-6, rtol=0)


def test_mean_initialization_is_exactly_masked_mean_pooling():
    pooling = MultiHeadGeneralizedPooling(32, num_heads=8)
    x, mask = random_batch(6, 11, 32, seed=5)
    x = x * 10  # large activations, as in real encoders
    mean = (x * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True)
    assert (pool(pooling, x, mask) - mean).abs().max() <= 1e-6


def test_mean_initialization_shapes_and_values():
    pooling = MultiHeadGeneralizedPooling(768, num_heads=8)
    assert pooling.hidden_dim == 384 and pooling.head_dim == 96
    assert pooling.w1.shape == (8, 96, 384) and pooling.w2.shape == (8, 384, 96)
    assert torch.equal(pooling.projection.weight, torch.eye(768))
    for name in ("b1", "w2", "b2"):
        assert not getattr(pooling, name).any(), name
    assert not pooling.projection.bias.any()
    # Identical heads would be a stationary point of the diversity penalties: each head has its own W1.
    w1 = pooling.w1.detach()
    assert all(not torch.equal(w1[i], w1[j]) for i in range(8) for j in range(i + 1, 8))


def test_seed_makes_the_initialization_reproducible():
    first, second = (MultiHeadGeneralizedPooling(16, num_heads=2, initialization="random", seed=7) for _ in range(2))
    for a, b in zip(first.state_dict().values(), second.state_dict().values()):
        assert torch.equal(a, b)
    other = MultiHeadGeneralizedPooling(16, num_heads=2, initialization="random", seed=8)
    assert not torch.equal(first.w1, other.w1)


@pytest.mark.parametrize("initialization", ["mean", "random"])
def test_rows_without_valid_tokens_give_zeros_not_nan(initialization):
    pooling = MultiHeadGeneralizedPooling(16, num_heads=4, initialization=initialization)
    x, mask = random_batch(4, 5, 16, empty_rows=(1, 3))
    output = pool(pooling, x, mask)
    assert torch.isfinite(output).all()
    assert not output[1].any() and not output[3].any()
    assert output[0].any()
    all_empty = pool(pooling, x, torch.zeros_like(mask))
    assert torch.equal(all_empty, torch.zeros_like(all_empty))


def test_padding_gets_zero_weight_whatever_its_values():
    pooling = MultiHeadGeneralizedPooling(16, num_heads=2, initialization="random", seed=0)
    x, mask = random_batch(3, 6, 16)
    garbage = x.clone()
    garbage[mask == 0] = 1e4
    assert torch.equal(pool(pooling, x, mask), pool(pooling, garbage, mask))


def test_no_attention_mask_means_every_token_counts():
    pooling = MultiHeadGeneralizedPooling(16, num_heads=2, initialization="random", seed=0)
    x, _ = random_batch(3, 6, 16)
    assert torch.allclose(pool(pooling, x), pool(pooling, x, torch.ones(3, 6, dtype=torch.long)), atol=1e-7)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_works_and_stays_close_to_float32(dtype):
    pooling = MultiHeadGeneralizedPooling(32, num_heads=4, initialization="random", seed=1)
    x, mask = random_batch(4, 9, 32, empty_rows=(2,))
    expected = pool(pooling, x, mask)
    output = pool(pooling.to(dtype), x.to(dtype), mask)
    assert output.dtype == dtype
    assert torch.isfinite(output).all() and not output[2].any()
    assert torch.allclose(output.float(), expected, atol=0.05)


def test_half_precision_softmax_does_not_overflow():
    # Logits of several hundred overflow exp() in fp16: the softmax must run in float32.
    pooling = MultiHeadGeneralizedPooling(8, num_heads=2).half()
    with torch.no_grad():
        pooling.w2.fill_(3.0)
    x, mask = random_batch(2, 5, 8)
    assert torch.isfinite(pool(pooling, (x * 30).half(), mask)).all()


def test_flattened_flash_attention_layout_equals_the_padded_one():
    pooling = MultiHeadGeneralizedPooling(16, num_heads=4, initialization="random", seed=2)
    x, mask = random_batch(4, 7, 16)
    lengths = mask.sum(1)
    flat = x[mask.bool()].unsqueeze(0)
    cu_seq_lens = torch.cat([torch.zeros(1, dtype=torch.long), lengths.cumsum(0)])
    features = {"token_embeddings": flat, "cu_seq_lens_q": cu_seq_lens}
    assert torch.allclose(pooling(features)["sentence_embedding"], pool(pooling, x, mask), atol=1e-6)


def test_prompt_tokens_are_excluded_when_include_prompt_is_false():
    pooling = MultiHeadGeneralizedPooling(8, num_heads=2, include_prompt=False)
    x, _ = random_batch(2, 6, 8)
    mask = torch.tensor([[1, 1, 1, 1, 1, 0], [1, 1, 1, 0, 0, 0]])
    features = {"token_embeddings": x, "attention_mask": mask, "prompt_length": 2}
    expected = torch.stack([x[0, 2:5].mean(0), x[1, 2:3].mean(0)])
    assert torch.allclose(pooling(features)["sentence_embedding"], expected, atol=1e-6)


def test_attention_weights_are_per_dimension_distributions_over_valid_tokens():
    pooling = MultiHeadGeneralizedPooling(16, num_heads=4, initialization="random", seed=4)
    x, mask = random_batch(3, 6, 16, empty_rows=(1,))
    attention, valid = pooling.attention_weights({"token_embeddings": x, "attention_mask": mask})
    assert attention.shape == (3, 6, 4, 4)
    assert torch.equal(valid, mask.bool())
    assert not attention[~valid].any()
    sums = attention.sum(1)
    assert torch.allclose(sums[[0, 2]], torch.ones_like(sums[[0, 2]]), atol=1e-6)
    assert not sums[1].any()


def test_every_parameter_but_the_softmax_bias_learns_within_two_steps():
    torch.manual_seed(0)
    pooling = MultiHeadGeneralizedPooling(16, num_heads=4)
    optimizer = torch.optim.SGD(pooling.parameters(), lr=1e-3)
    x, mask = random_batch(8, 6, 16)
    target = torch.randn(8, 16)
    largest = {name: 0.0 for name, _ in pooling.named_parameters()}
    for _ in range(2):
        optimizer.zero_grad()
        loss = ((pool(pooling, x, mask) - target) ** 2).sum()
        loss.backward()
        for name, parameter in pooling.named_parameters():
            largest[name] = max(largest[name], float(parameter.grad.abs().max()))
        optimizer.step()
    # The softmax over tokens ignores a per-dimension constant: b2's gradient is exactly zero.
    assert largest.pop("b2") == 0.0
    assert all(value > 1e-6 for value in largest.values()), largest


def test_the_first_step_already_moves_w2():
    pooling = MultiHeadGeneralizedPooling(16, num_heads=4)
    x, mask = random_batch(4, 6, 16)
    pool(pooling, x, mask).pow(2).sum().backward()
    assert pooling.w2.grad.abs().sum() > 0


def test_embedding_dimension_must_divide_into_heads():
    with pytest.raises(ValueError, match="768 is not divisible by num_heads 7"):
        MultiHeadGeneralizedPooling(768, num_heads=7)
    with pytest.raises(ValueError, match="initialization"):
        MultiHeadGeneralizedPooling(16, num_heads=2, initialization="zeros")


def test_wrong_input_dimension_is_a_clear_error():
    pooling = MultiHeadGeneralizedPooling(16, num_heads=2)
    with pytest.raises(ValueError, match=r"\(batch, tokens, 16\), got \(2, 3, 8\)"):
        pool(pooling, torch.randn(2, 3, 8))
    with pytest.raises(ValueError, match="attention_mask has shape"):
        pool(pooling, torch.randn(2, 3, 16), torch.ones(2, 4))


def test_save_writes_config_and_safetensors_only(tmp_path):
    pooling = MultiHeadGeneralizedPooling(16, num_heads=2, hidden_dim=12)
    pooling.save(str(tmp_path), safe_serialization=False)  # never pickle, even when asked
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors"]
    config = json.loads((tmp_path / "config.json").read_text())
    assert config == {
        "embedding_dimension": 16, "num_heads": 2, "hidden_dim": 12, "initialization": "mean",
        "include_prompt": True, "training_details": None,
    }
    assert pooling.get_embedding_dimension() == 16


def test_load_restores_every_weight_bit_for_bit(tmp_path):
    pooling = MultiHeadGeneralizedPooling(16, num_heads=2, initialization="random", seed=9)
    pooling.training_details = {"loss": "CoSENTLoss", "steps": 3}
    pooling.save(str(tmp_path))
    loaded = MultiHeadGeneralizedPooling.load(str(tmp_path), trust_remote_code=True, backend="torch")
    assert loaded.training_details == {"loss": "CoSENTLoss", "steps": 3}
    for (name, a), b in zip(pooling.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), name


def test_load_without_weights_names_the_missing_file(tmp_path):
    MultiHeadGeneralizedPooling(16, num_heads=2).save_config(str(tmp_path))
    with pytest.raises(ValueError, match=r"Missing weights file .*model\.safetensors"):
        MultiHeadGeneralizedPooling.load(str(tmp_path))


def test_load_of_a_corrupt_weights_file_names_it(tmp_path):
    MultiHeadGeneralizedPooling(16, num_heads=2).save(str(tmp_path))
    data = (tmp_path / "model.safetensors").read_bytes()
    (tmp_path / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"Corrupt weights file .*model\.safetensors"):
        MultiHeadGeneralizedPooling.load(str(tmp_path))


def test_load_rejects_weights_that_do_not_fit_the_config(tmp_path):
    MultiHeadGeneralizedPooling(16, num_heads=2).save(str(tmp_path))
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "num_heads": 4}))
    with pytest.raises(ValueError, match=r"model\.safetensors: \w+ has shape \(2, .*\), but the config .*num_heads=4.* needs \(4, "):
        MultiHeadGeneralizedPooling.load(str(tmp_path))
    weights = {"projection.weight": torch.eye(16)}
    save_file(weights, str(tmp_path / "model.safetensors"))
    with pytest.raises(ValueError, match="holds tensors"):
        MultiHeadGeneralizedPooling.load(str(tmp_path))
