"""train_pooling_head: pooler-only training on cached token embeddings."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from pair_factory import make_pairs
from sentence_transformers.base.modules import Dense
from sentence_transformers.sentence_transformer.losses import ContrastiveLoss, CoSENTLoss

from st_generalized_pooling import GeneralizedPoolingError, convert, save_model
from st_generalized_pooling.loading import package_version
from st_generalized_pooling.training import HeadDiversityLoss, train_pooling_head, train_with_trainer
from st_generalized_pooling.training.cache import INDEX_NAME, RANKS_NAME, TokenEmbeddingCache

PAIRS = make_pairs(24)
QUIET = {"show_progress_bar": False}


@pytest.fixture
def model(distil_model):
    return convert(distil_model, num_heads=4, seed=0)


def state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: tensor.clone() for name, tensor in module.state_dict().items()}


def training_loss(model, pairs=PAIRS, batch_size: int = len(PAIRS)) -> float:
    """Mean CoSENT over batches of the pairs in order, computed through the whole model (tokenized text)."""
    values = []
    for start in range(0, len(pairs), batch_size):
        batch = pairs[start : start + batch_size]
        features = [model.preprocess([p["sentence1"] for p in batch]), model.preprocess([p["sentence2"] for p in batch])]
        with torch.no_grad():
            values.append(float(CoSENTLoss(model)(features, torch.tensor([p["score"] for p in batch]))))
    return sum(values) / len(values)


def embed(model, texts=("open the file", "datei öffnen fehler", "cannot connect")):
    return model.encode(list(texts), convert_to_tensor=True, show_progress_bar=False)


def test_same_weights_as_the_trainer_through_the_full_model_with_the_encoder_frozen(model):
    """One batch per step (the trainer shuffles differently), 4 steps; the trainer's AdamW, linear decay, clipping."""
    reference = copy.deepcopy(model)
    untrained = state(model)
    train_pooling_head(model, PAIRS, CoSENTLoss(model), epochs=4, batch_size=64, learning_rate=1e-2, **QUIET)
    train_with_trainer(reference, PAIRS, CoSENTLoss(reference), epochs=4, batch_size=64, learning_rate=1e-2,
                       pooling_learning_rate=None, freeze=True, optim="adamw_torch", **QUIET)
    assert_same_head(model, reference, untrained)


def assert_same_head(model, reference, untrained) -> None:
    """Equal within 1e-5 in every weight and in the embeddings, and the head did move in training."""
    ours, theirs = state(model), state(reference)
    for name in ours:
        torch.testing.assert_close(ours[name], theirs[name], atol=1e-5, rtol=0, msg=name)
    assert torch.equal(ours["1.b2"], untrained["1.b2"])  # its gradient is exactly zero: b2 never moves
    assert (ours["1.w2"] - untrained["1.w2"]).abs().max() > 1e-3
    assert (ours["2.linear.weight"] - untrained["2.linear.weight"]).abs().max() > 1e-3
    torch.testing.assert_close(embed(model), embed(reference.eval()), atol=1e-5, rtol=0)


def test_several_batches_per_epoch_equal_the_same_loop_through_the_full_model(model):
    """Same shuffling, same optimizer: the only difference is cached vs. freshly computed token embeddings."""
    reference = copy.deepcopy(model)
    untrained = state(model)
    epochs, batch_size, rate = 2, 8, 5e-3
    train_pooling_head(model, PAIRS, CoSENTLoss(model), epochs=epochs, batch_size=batch_size, learning_rate=rate,
                       seed=7, **QUIET)

    for parameter in reference[0].parameters():
        parameter.requires_grad_(False)
    head = [p for p in reference.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(head, lr=rate, weight_decay=0.0)
    total = epochs * 3
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: (total - step) / total)
    generator = torch.Generator().manual_seed(7)
    loss = CoSENTLoss(reference)
    reference.train()
    for _ in range(epochs):
        order = torch.randperm(len(PAIRS), generator=generator)
        for start in range(0, len(PAIRS), batch_size):
            batch = [PAIRS[i] for i in order[start : start + batch_size]]
            features = [reference.preprocess([p["sentence1"] for p in batch]),
                        reference.preprocess([p["sentence2"] for p in batch])]
            loss(features, torch.tensor([p["score"] for p in batch])).backward()
            torch.nn.utils.clip_grad_norm_(head, 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
    assert_same_head(model, reference, untrained)


def test_training_improves_the_loss_and_leaves_the_encoder_bit_identical(model):
    encoder = state(model[0])
    requires_grad = [p.requires_grad for p in model.parameters()]
    before = training_loss(model)
    details = train_pooling_head(model, PAIRS, CoSENTLoss(model), epochs=5, batch_size=8, learning_rate=5e-3, **QUIET)
    assert training_loss(model) < before - 0.1
    assert details["epoch_losses"][-1] < details["epoch_losses"][0]
    after = state(model[0])
    assert all(torch.equal(encoder[name], after[name]) for name in encoder)
    assert [p.requires_grad for p in model.parameters()] == requires_grad


def test_the_record_is_returned_stored_on_the_pooling_and_saved(model, tmp_path):
    loss = HeadDiversityLoss(model, CoSENTLoss(model), penalty="weights", weight=0.01)
    details = train_pooling_head(model, PAIRS, loss, epochs=2, batch_size=16, learning_rate=1e-3,
                                 pooling_learning_rate=2e-3, **QUIET)
    assert details["loss"] == "CoSENTLoss" and details["penalty"] == "weights" and details["penalty_weight"] == 0.01
    assert details["frozen_encoder"] is True and details["num_pairs"] == 24
    assert (details["epochs"], details["batch_size"]) == (2, 16)
    assert (details["learning_rate"], details["pooling_learning_rate"]) == (1e-3, 2e-3)
    assert details["trained_modules"] == ["MultiHeadGeneralizedPooling", "Dense"]
    assert details["final_training_loss"] == details["epoch_losses"][-1]
    assert details["package_version"] == package_version() and details["date"].endswith("Z")
    assert model[1].training_details == details
    save_model(model, tmp_path / "trained")
    config = json.loads((tmp_path / "trained" / "1_MultiHeadGeneralizedPooling" / "config.json").read_text())
    assert config["training_details"] == json.loads(json.dumps(details))


def test_the_record_survives_switching_between_train_and_eval(model):
    details = train_pooling_head(model, PAIRS[:4], CoSENTLoss(model), **QUIET)
    model.train()
    embed(model)  # encode() switches to eval mode
    assert model[1].training_details == details


def test_only_the_pooling_trains_with_modules_pooling(model):
    dense = state(model[2])
    pooling = state(model[1])
    details = train_pooling_head(model, PAIRS, CoSENTLoss(model), modules="pooling", epochs=2, batch_size=8, **QUIET)
    assert details["trained_modules"] == ["MultiHeadGeneralizedPooling"]
    assert all(torch.equal(dense[name], tensor) for name, tensor in model[2].state_dict().items())
    assert not torch.equal(pooling["w2"], model[1].w2)


def test_mean_pooling_followed_by_a_dense_trains_the_dense(distil_model):
    """The 'same budget on mean pooling' baseline."""
    baseline = copy.deepcopy(distil_model)
    before = training_loss(baseline)
    dense = state(baseline[2])
    binary = [{**p, "score": round(p["score"])} for p in PAIRS]
    details = train_pooling_head(baseline, binary, ContrastiveLoss(baseline), epochs=3, batch_size=8,
                                 learning_rate=1e-2, **QUIET)
    assert details["trained_modules"] == ["Dense"] and isinstance(baseline[2], Dense)
    assert not torch.equal(dense["linear.weight"], baseline[2].linear.weight)
    assert training_loss(baseline) != before
    with pytest.raises(GeneralizedPoolingError, match="no MultiHeadGeneralizedPooling after its encoder"):
        train_pooling_head(baseline, PAIRS, CoSENTLoss(baseline), modules="pooling", **QUIET)


def test_a_disk_cache_gives_the_same_result_and_is_reused(model, tmp_path):
    in_memory = copy.deepcopy(model)
    arguments = {"epochs": 2, "batch_size": 8, "learning_rate": 5e-3, **QUIET}
    train_pooling_head(in_memory, PAIRS, CoSENTLoss(in_memory), **arguments)
    train_pooling_head(model, PAIRS, CoSENTLoss(model), cache_dir=tmp_path / "cache", **arguments)
    assert all(torch.equal(a, b) for a, b in zip(state(model).values(), state(in_memory).values()))
    files = sorted(path.name for path in (tmp_path / "cache").iterdir())
    assert files == ["token_embeddings-00000.safetensors", RANKS_NAME, INDEX_NAME]

    shard = tmp_path / "small" / "token_embeddings-00000.safetensors"
    cache = TokenEmbeddingCache.build(model, TEXTS, cache_dir=tmp_path / "small", show_progress_bar=False)
    stamp = shard.stat().st_mtime_ns
    again = TokenEmbeddingCache.build(model, TEXTS, cache_dir=tmp_path / "small", show_progress_bar=False)
    assert shard.stat().st_mtime_ns == stamp  # reused, not encoded again
    indices = torch.tensor([1, 0, 2])
    assert torch.equal(cache.batch(indices)["token_embeddings"], again.batch(indices)["token_embeddings"])
    model[0].max_seq_length = 3  # other encoder input: the cache must not be reused
    shorter = TokenEmbeddingCache.build(model, TEXTS, cache_dir=tmp_path / "small", show_progress_bar=False)
    assert shard.stat().st_mtime_ns != stamp and shorter.batch(indices)["token_embeddings"].shape[1] == 3


TEXTS = ["the file could not be saved", "open", "cannot connect to the server", "open the file", "a"]


@pytest.mark.parametrize("on_disk", [False, True])
def test_the_cache_holds_exactly_the_encoder_output_without_padding_across_shards(model, tmp_path, monkeypatch,
                                                                                  on_disk):
    monkeypatch.setattr("st_generalized_pooling.training.cache.SHARD_TEXTS", 2)  # 5 texts: 3 shards
    cache = TokenEmbeddingCache.build(model, TEXTS, batch_size=2, cache_dir=tmp_path if on_disk else None,
                                      show_progress_bar=False)
    assert len(cache.shards) == 3
    indices = torch.tensor([4, 0, 2, 1, 3])
    batch = cache.batch(indices)
    with torch.no_grad():
        direct = model[0](model.preprocess([TEXTS[i] for i in indices]))
    assert torch.equal(batch["attention_mask"], direct["attention_mask"])
    mask = direct["attention_mask"].bool()
    torch.testing.assert_close(batch["token_embeddings"][mask], direct["token_embeddings"][mask], atol=1e-6, rtol=0)
    assert torch.all(batch["token_embeddings"][~mask] == 0)


def test_an_eval_set_keeps_the_best_epoch(model, tmp_path):
    """Eval pairs with the training scores inverted: training makes them worse, so the best epoch is the first."""
    inverted = [{**p, "score": 1 - p["score"]} for p in PAIRS]
    details = train_pooling_head(model, PAIRS, CoSENTLoss(model), epochs=4, batch_size=8, learning_rate=1e-2,
                                 eval_dataset=inverted, **QUIET)
    assert details["eval_losses"][0] < details["eval_losses"][-1]
    assert details["best_epoch"] == 1 + details["eval_losses"].index(min(details["eval_losses"]))
    assert training_loss(model, inverted, batch_size=8) == pytest.approx(min(details["eval_losses"]), abs=1e-4)


def test_errors(model):
    with pytest.raises(GeneralizedPoolingError, match="row 0: score 3"):
        train_pooling_head(model, [{"sentence1": "a", "sentence2": "b", "score": 3}], CoSENTLoss(model), **QUIET)
    with pytest.raises(GeneralizedPoolingError, match="epochs"):
        train_pooling_head(model, PAIRS, CoSENTLoss(model), epochs=0, **QUIET)
    with pytest.raises(GeneralizedPoolingError, match="modules must be"):
        train_pooling_head(model, PAIRS, CoSENTLoss(model), modules="everything", **QUIET)
    with pytest.raises(GeneralizedPoolingError, match="built on another model"):
        train_pooling_head(model, PAIRS, CoSENTLoss(copy.deepcopy(model)), **QUIET)
