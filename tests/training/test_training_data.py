"""Training files: CSV, TSV and JSONL pairs, and errors that name the file and line."""

from __future__ import annotations

import json

import pytest
from datasets import Dataset

from st_generalized_pooling import GeneralizedPoolingError
from st_generalized_pooling.training import as_pairs, positive_pairs, read_pairs


def write(path, text: str):
    path.write_text(text, encoding="utf-8")
    return path


def test_reads_csv_with_quoted_commas_and_newlines_and_drops_other_columns(tmp_path):
    path = write(tmp_path / "pairs.csv", 'id,sentence1,sentence2,score\n7,"Open, now",Öffnen,1\n8,"two\nlines",zwei,0.25\n')
    pairs = read_pairs(path)
    assert pairs.column_names == ["sentence1", "sentence2", "score"]
    assert pairs.to_list() == [
        {"sentence1": "Open, now", "sentence2": "Öffnen", "score": 1.0},
        {"sentence1": "two\nlines", "sentence2": "zwei", "score": 0.25},
    ]


def test_reads_tsv_and_jsonl_skipping_blank_lines(tmp_path):
    tsv = write(tmp_path / "pairs.tsv", "sentence1\tsentence2\tscore\nSave\tSpeichern\t0\n")
    rows = [{"sentence1": "Save", "sentence2": "Speichern", "score": 0}, {"sentence1": "a", "sentence2": "b", "score": 0.5}]
    jsonl = write(tmp_path / "pairs.jsonl", json.dumps(rows[0]) + "\n\n" + json.dumps(rows[1]) + "\n")
    assert read_pairs(tsv).to_list() == [{"sentence1": "Save", "sentence2": "Speichern", "score": 0.0}]
    assert read_pairs(jsonl)["score"] == [0.0, 0.5]


@pytest.mark.parametrize(
    "name, text, message",
    [
        ("empty.csv", "", r"empty\.csv is empty"),
        ("header.csv", "sentence1,sentence2,score\n", r"header\.csv has no pairs"),
        ("cols.csv", "source,sentence2,score\na,b,1\n", r"cols\.csv, line 1: the header lacks column\(s\) sentence1"),
        ("range.csv", "sentence1,sentence2,score\na,b,1\nc,d,1.5\n", r"range\.csv, line 3: score '1\.5' is not a number in \[0, 1\]"),
        ("nan.csv", "sentence1,sentence2,score\na,b,nan\n", r"nan\.csv, line 2: score 'nan'"),
        ("text.csv", "sentence1,sentence2,score\na,b,good\n", r"text\.csv, line 2: score 'good'"),
        ("short.csv", "sentence1,sentence2,score\na,b\n", r"short\.csv, line 2: expected 3 fields"),
        ("long.csv", "sentence1,sentence2,score\na,b,1,extra\n", r"long\.csv, line 2: expected 3 fields"),
        ("bad.jsonl", '{"sentence1": "a", "sentence2": "b", "score": 1}\n{oops\n', r"bad\.jsonl, line 2: not valid JSON"),
        ("list.jsonl", '["a", "b", 1]\n', r"list\.jsonl, line 1: expected an object"),
        ("missing.jsonl", '\n{"sentence1": "a", "score": 1}\n', r"missing\.jsonl, line 2: missing sentence2"),
        ("negative.jsonl", '{"sentence1": "a", "sentence2": "b", "score": -0.1}\n', r"line 1: score -0\.1"),
        ("bool.jsonl", '{"sentence1": "a", "sentence2": "b", "score": true}\n', r"line 1: score True"),
        ("null.jsonl", '{"sentence1": null, "sentence2": "b", "score": 1}\n', r"line 1: sentence1 must be text"),
        ("blank.jsonl", "\n\n", r"blank\.jsonl has no pairs"),
        ("pairs.txt", "a,b,1\n", r"pairs\.txt: unknown training file type '\.txt'"),
    ],
)
def test_bad_files_name_the_line(tmp_path, name, text, message):
    with pytest.raises(GeneralizedPoolingError, match=message):
        read_pairs(write(tmp_path / name, text))


def test_non_utf8_file(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("sentence1,sentence2,score\nÖffnen,open,1\n".encode("latin-1"))
    with pytest.raises(GeneralizedPoolingError, match=r"latin1\.csv: not UTF-8"):
        read_pairs(path)


def test_in_memory_pairs_are_checked_by_row():
    good = [{"sentence1": "a", "sentence2": "b", "score": 1, "extra": 3}]
    assert as_pairs(good).column_names == ["sentence1", "sentence2", "score"]
    assert as_pairs(Dataset.from_list(good)).to_list() == [{"sentence1": "a", "sentence2": "b", "score": 1.0}]
    with pytest.raises(GeneralizedPoolingError, match="train_dataset row 1: score 2"):
        as_pairs(good + [{"sentence1": "a", "sentence2": "b", "score": 2}])
    with pytest.raises(GeneralizedPoolingError, match="lacks column"):
        as_pairs(Dataset.from_dict({"anchor": ["a"], "positive": ["b"]}))
    with pytest.raises(GeneralizedPoolingError, match="has no pairs"):
        as_pairs([])


def test_positive_pairs_keep_scores_of_at_least_one_half():
    pairs = as_pairs([{"sentence1": str(s), "sentence2": "x", "score": s} for s in (0.0, 0.49, 0.5, 1.0)])
    assert positive_pairs(pairs)["score"] == [0.5, 1.0]
    with pytest.raises(GeneralizedPoolingError, match="No pair has score >= 0.5"):
        positive_pairs(pairs.select([0, 1]))
