"""st-gp train, end to end on small generated files: both training paths, the saved record, one-line errors."""

from __future__ import annotations

import csv
import json

import pytest
import torch
from pair_factory import make_pairs

from st_generalized_pooling import MultiHeadGeneralizedPooling, convert, load_model
from st_generalized_pooling.cli import main


@pytest.fixture(scope="module")
def base_dir(distil_model, tmp_path_factory):
    """A mean-pooling model: st-gp train converts it first."""
    path = tmp_path_factory.mktemp("train-cli") / "base"
    distil_model.save(str(path))
    return path


@pytest.fixture
def files(tmp_path):
    train, evaluation = tmp_path / "train.csv", tmp_path / "eval.jsonl"
    with open(train, "w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=["sentence1", "sentence2", "score"])
        writer.writeheader()
        writer.writerows(make_pairs(20, seed=1))
    evaluation.write_text("".join(json.dumps(row) + "\n" for row in make_pairs(8, seed=2)), encoding="utf-8")
    return train, evaluation


def pooling_config(folder) -> dict:
    return json.loads((folder / "1_MultiHeadGeneralizedPooling" / "config.json").read_text())


def test_pooler_only_training_with_eval_and_penalty(base_dir, distil_model, files, tmp_path, capsys):
    train, evaluation = files
    output = tmp_path / "trained"
    argv = ["train", "--model", str(base_dir), "--train", str(train), "--eval", str(evaluation), "--output",
            str(output), "--freeze-encoder", "--penalty", "attention", "--penalty-weight", "0.1", "--epochs", "3",
            "--batch-size", "8", "--lr", "5e-3", "--num-heads", "4", "--cache-dir", str(tmp_path / "cache")]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "CoSENTLoss, attention penalty x 0.1, 3 epoch(s) of 20 pairs" in out
    assert "encoder frozen" in out and "eval loss:" in out and f"saved to {output}" in out

    trained = load_model(str(output))
    untrained = convert(distil_model, num_heads=4, seed=0)
    assert isinstance(trained[1], MultiHeadGeneralizedPooling) and trained[1].num_heads == 4
    assert not torch.equal(trained[1].w2, untrained[1].w2)
    assert all(torch.equal(a, b) for a, b in zip(trained[0].state_dict().values(), untrained[0].state_dict().values()))
    record = pooling_config(output)["training_details"]
    assert record["loss"] == "CoSENTLoss" and record["penalty"] == "attention" and record["penalty_weight"] == 0.1
    assert (record["epochs"], record["batch_size"], record["num_pairs"], record["num_eval_pairs"]) == (3, 8, 20, 8)
    assert record["frozen_encoder"] is True and record["learning_rate"] == 5e-3
    assert (tmp_path / "cache" / "token_embeddings.json").is_file()


def test_full_training_with_the_trainer(base_dir, files, tmp_path, capsys):
    train, _ = files
    output = tmp_path / "full"
    argv = ["train", "--model", str(base_dir), "--train", str(train), "--output", str(output), "--loss", "mnrl",
            "--batch-size", "4", "--num-heads", "2", "--pooling-lr", "2e-3"]
    assert main(argv) == 0
    assert "MultipleNegativesRankingLoss, 1 epoch(s) of" in capsys.readouterr().out
    record = pooling_config(output)["training_details"]
    assert record["method"] == "SentenceTransformerTrainer" and record["frozen_encoder"] is False
    assert (record["learning_rate"], record["pooling_learning_rate"]) == (2e-5, 2e-3)
    positives = sum(row["score"] >= 0.5 for row in make_pairs(20, seed=1))
    assert record["num_pairs"] == positives
    assert load_model(str(output))[1].num_heads == 2


@pytest.mark.parametrize(
    "content, message",
    [
        ("sentence1,sentence2\na,b\n", "train.csv, line 1: the header lacks column(s) score"),
        ("sentence1,sentence2,score\na,b,0.5\nc,d,7\n", "train.csv, line 3: score '7' is not a number in [0, 1]"),
        ("", "train.csv is empty"),
    ],
)
def test_bad_training_files_exit_2_with_one_line_naming_the_line(base_dir, tmp_path, capsys, content, message):
    train = tmp_path / "train.csv"
    train.write_text(content, encoding="utf-8")
    code = main(["train", "--model", str(base_dir), "--train", str(train), "--output", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and message in err and err.startswith("st-gp train: error:")
    assert not (tmp_path / "out").exists()


def test_an_existing_output_is_not_overwritten(base_dir, files, tmp_path, capsys):
    train, _ = files
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep.txt").write_text("mine")
    argv = ["train", "--model", str(base_dir), "--train", str(train), "--output", str(tmp_path / "taken"),
            "--freeze-encoder", "--num-heads", "4"]
    assert main(argv) == 2
    assert "already exists" in capsys.readouterr().err
    assert (tmp_path / "taken" / "keep.txt").read_text() == "mine"
