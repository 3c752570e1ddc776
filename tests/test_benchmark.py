"""The benchmark harness: a smoke run on a tiny model (one round), its outputs, the corpus and CLI errors."""

from __future__ import annotations

import json

import pytest

from st_generalized_pooling import cli
from st_generalized_pooling.benchmark import run_benchmark, to_markdown, ui_strings, write_results
from st_generalized_pooling.errors import GeneralizedPoolingError


def test_one_round_on_a_tiny_model_measures_everything_and_writes_json_and_markdown(distil_model, tmp_path):
    texts, source = ui_strings(limit=24)
    result = run_benchmark(
        distil_model, "tiny", texts, source, rounds=1, num_heads=4, encode_batch_sizes=(8,),
        module_shapes=((4, 8), (8, 16)),
    )
    (encode,) = result["encode"]
    assert encode["batch_size"] == 8 and encode["original_sentences_per_s"] > 0 and encode["converted_sentences_per_s"] > 0
    assert 0 <= encode["padding_fraction"] < 1 and encode["time_ratio"]["median"] > 0
    shapes = [(row["batch"], row["tokens"], row["mode"]) for row in result["module"]]
    assert shapes == [(4, 8, "forward"), (4, 8, "forward+backward"), (8, 16, "forward"), (8, 16, "forward+backward")]
    assert all(row[key] > 0 for row in result["module"] for key in ("generalized_ms", "seed_ms", "mean_ms"))
    memory = result["memory"]
    for name in ("original", "converted"):
        assert memory[f"{name}_peak_mib"] >= memory[f"{name}_loaded_mib"] > 0
    assert memory["pooling_weights_mib"] == pytest.approx((32 * 32 + 32 + 2 * 4 * 8 * 32 + 4 * 32 + 32) * 4 / 2**20)
    assert result["machine"]["torch_threads"] == 1 and result["corpus"]["sentences"] == 24

    json_path, markdown_path = write_results(result, tmp_path / "out")
    assert json.loads(json_path.read_text()) == json.loads(json.dumps(result))
    table = markdown_path.read_text()
    assert table == to_markdown(result)
    assert "| batch 8 | float32 |" in table and "| (8, 16) | float32 | forward+backward |" in table
    assert result["date"] in table and result["machine"]["torch"] in table


def test_corpus_file_gives_its_lines_and_a_sample_of_them(tmp_path):
    corpus = tmp_path / "strings.txt"
    corpus.write_text("Open\n\nSave as…\nQuit\n", encoding="utf-8")
    assert ui_strings(corpus) == (["Open", "Save as…", "Quit"], str(corpus))
    sample, _ = ui_strings(corpus, limit=2)
    assert len(sample) == 2 and set(sample) <= {"Open", "Save as…", "Quit"}


def test_default_corpus_is_english_msgids_of_the_system_catalogs():
    texts, source = ui_strings(limit=50)
    assert len(texts) == 50 and len(set(texts)) == 50 and all(text.strip() for text in texts)
    assert "gettext domains under /usr/share/locale" in source


def test_an_empty_corpus_is_an_error_naming_the_file(tmp_path):
    corpus = tmp_path / "empty.txt"
    corpus.write_text("\n\n", encoding="utf-8")
    with pytest.raises(GeneralizedPoolingError, match="empty.txt: no non-empty lines"):
        ui_strings(corpus)


def test_cli_reports_a_bad_corpus_in_one_line_with_exit_2(tmp_path, capsys):
    corpus = tmp_path / "latin1.txt"
    corpus.write_bytes("Öffnen\n".encode("latin-1"))
    assert cli.main(["bench", "--corpus", str(corpus), "--output", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "latin1.txt: not UTF-8 text" in error
    assert cli.main(["bench", "--corpus", str(tmp_path / "missing.txt")]) == 2
    assert "missing.txt" in capsys.readouterr().err
