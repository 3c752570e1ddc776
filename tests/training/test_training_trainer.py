"""SentenceTransformerTrainer with generalized pooling: frozen encoder, the pooling's own learning rate, and
checkpoints (including the best one, restored by load_best_model_at_end) that hold the trained pooling."""

from __future__ import annotations

import copy
import json
import os

import pytest
import torch
from pair_factory import make_pairs
from safetensors.torch import load_file
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.losses import CoSENTLoss
from sentence_transformers.sentence_transformer.trainer import SentenceTransformerTrainer
from sentence_transformers.sentence_transformer.training_args import SentenceTransformerTrainingArguments

from st_generalized_pooling import GeneralizedPoolingError, convert, load_model, save_model
from st_generalized_pooling.pooling import SOURCE_FILE_NAME
from st_generalized_pooling.training import (
    HeadDiversityLoss,
    freeze_encoder,
    pooling_learning_rate_mapping,
    train_with_trainer,
)
from st_generalized_pooling.training.data import as_pairs

PAIRS = make_pairs(24)
# Eval pairs scored the other way round: training on PAIRS makes their loss worse, so the best checkpoint is the
# first one, never the last.
INVERTED = [{**pair, "score": 1 - pair["score"]} for pair in PAIRS]
QUIET = {"show_progress_bar": False}


@pytest.fixture
def model(distil_model):
    return convert(distil_model, num_heads=4, seed=0)


def pooling_file(checkpoint) -> dict[str, torch.Tensor]:
    (folder,) = [name for name in os.listdir(checkpoint) if name.endswith("MultiHeadGeneralizedPooling")]
    return load_file(os.path.join(checkpoint, folder, "model.safetensors"))


def checkpoints(output_dir) -> list[str]:
    names = sorted((name for name in os.listdir(output_dir) if name.startswith("checkpoint-")),
                   key=lambda name: int(name.split("-")[1]))
    return [os.path.join(output_dir, name) for name in names]


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return set(a) == set(b) and all(torch.equal(a[name], b[name]) for name in a)


def test_frozen_encoder_stays_bit_identical_and_the_pooling_has_its_own_learning_rate(model):
    encoder = copy.deepcopy(model[0].state_dict())
    details = train_with_trainer(model, PAIRS, CoSENTLoss(model), epochs=2, batch_size=8, learning_rate=1e-4,
                                 pooling_learning_rate=5e-3, freeze=True, **QUIET)
    assert same(encoder, model[0].state_dict())
    assert details["method"] == "SentenceTransformerTrainer" and details["frozen_encoder"] is True
    assert (details["learning_rate"], details["pooling_learning_rate"]) == (1e-4, 5e-3)
    assert len(details["epoch_losses"]) == 2 and details["final_training_loss"] == details["epoch_losses"][-1]
    assert model[1].training_details == details


def test_the_learning_rate_mapping_selects_exactly_the_pooling_parameters(model):
    loss = HeadDiversityLoss(model, CoSENTLoss(model))
    freeze_encoder(model)
    args = SentenceTransformerTrainingArguments(
        output_dir="unused", learning_rate=1e-5, report_to="none",
        learning_rate_mapping=pooling_learning_rate_mapping(model, 3e-3),
    )
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=as_pairs(PAIRS), loss=loss)
    optimizer = trainer.create_optimizer()
    by_rate: dict[float, set[int]] = {}
    for group in optimizer.param_groups:
        by_rate.setdefault(group["lr"], set()).update(id(p) for p in group["params"])
    assert by_rate[3e-3] == {id(p) for p in model[1].parameters()}
    assert by_rate[1e-5] == {id(p) for p in model[2].parameters()}  # the Dense; the frozen encoder in no group
    with pytest.raises(GeneralizedPoolingError, match="no MultiHeadGeneralizedPooling"):
        pooling_learning_rate_mapping(SentenceTransformer(modules=[model[0]]), 1e-3)


def test_checkpoints_reload_with_the_trained_pooling(model, tmp_path):
    untrained = copy.deepcopy(model[1].state_dict())
    train_with_trainer(model, PAIRS, CoSENTLoss(model), epochs=2, batch_size=8, learning_rate=1e-3,
                       output_dir=tmp_path, save_strategy="epoch", **QUIET)
    first, last = checkpoints(tmp_path)
    assert not same(pooling_file(first), untrained)
    assert same(pooling_file(last), model[1].state_dict())
    for loaded in (load_model(last), SentenceTransformer(last, trust_remote_code=True)):
        assert same(loaded.state_dict(), model.state_dict())


def test_load_best_model_at_end_restores_the_best_checkpoint(model, tmp_path):
    details = train_with_trainer(model, PAIRS, CoSENTLoss(model), eval_dataset=INVERTED, epochs=3, batch_size=8,
                                 learning_rate=1e-2, output_dir=tmp_path, **QUIET)
    first, *_, last = checkpoints(tmp_path)
    assert details["eval_losses"][0] < details["eval_losses"][-1]
    assert details["best_step"] == int(first.rsplit("-", 1)[1])
    assert same(model[1].state_dict(), pooling_file(first))
    assert not same(model[1].state_dict(), pooling_file(last))
    assert same(model.state_dict(), load_model(first).state_dict())


def test_a_model_running_its_repo_copy_of_the_pooling_checkpoints_and_restores_too(model, tmp_path):
    """Loaded with trust_remote_code, the pooling class comes from the folder's generalized_pooling.py; the
    trainer's checkpoints must carry that file where the loader looks, or the best-model reload silently fails."""
    save_model(model, tmp_path / "converted", self_contained=True)
    remote = SentenceTransformer(str(tmp_path / "converted"), trust_remote_code=True, device="cpu")
    assert type(remote[1]).__module__.startswith("transformers_modules.")
    train_with_trainer(remote, PAIRS, CoSENTLoss(remote), eval_dataset=INVERTED, epochs=2, batch_size=8,
                       learning_rate=1e-2, output_dir=tmp_path / "run", **QUIET)
    first, last = checkpoints(tmp_path / "run")
    assert os.path.isfile(os.path.join(first, SOURCE_FILE_NAME))
    modules = json.loads(open(os.path.join(first, "modules.json")).read())
    assert modules[1]["type"] == "generalized_pooling.MultiHeadGeneralizedPooling"
    assert same(remote[1].state_dict(), pooling_file(first)) and not same(pooling_file(first), pooling_file(last))
    reloaded = SentenceTransformer(first, trust_remote_code=True, device="cpu")
    assert same(reloaded.state_dict(), remote.state_dict())


def test_a_penalised_loss_trains_through_the_trainer_and_is_recorded(model):
    loss = HeadDiversityLoss(model, CoSENTLoss(model), penalty="outputs", weight=0.5)
    untrained = copy.deepcopy(model[1].state_dict())
    details = train_with_trainer(model, PAIRS, loss, epochs=1, batch_size=8, learning_rate=1e-3, **QUIET)
    assert (details["loss"], details["penalty"], details["penalty_weight"]) == ("CoSENTLoss", "outputs", 0.5)
    assert not same(untrained, model[1].state_dict())
