"""Training pairs: (sentence1, sentence2, score) with score in [0, 1] (1 = a correct translation), read from CSV,
TSV or JSONL files, or checked when given as a ``datasets.Dataset`` or a list of dicts."""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from datasets import Dataset

from st_generalized_pooling.errors import GeneralizedPoolingError

COLUMNS: tuple[str, ...] = ("sentence1", "sentence2", "score")
CSV_SUFFIXES = {".csv": ",", ".tsv": "\t"}
JSONL_SUFFIXES = (".jsonl", ".ndjson")


def read_pairs(path: str | os.PathLike) -> Dataset:
    """A Dataset with columns sentence1, sentence2, score from a ``.csv``/``.tsv`` file (with a header line) or a
    ``.jsonl`` file (one object a line). Other columns are dropped. Every problem raises GeneralizedPoolingError
    naming the file and line: unknown format, missing column, a score that is not a number in [0, 1], no pairs."""
    path = os.fspath(path)
    suffix = os.path.splitext(path)[1].lower()
    try:
        with open(path, encoding="utf-8", newline="") as file:
            if suffix in CSV_SUFFIXES:
                records = list(_csv_records(file, path, CSV_SUFFIXES[suffix]))
            elif suffix in JSONL_SUFFIXES:
                records = list(_jsonl_records(file, path))
            else:
                raise GeneralizedPoolingError(
                    f"{path}: unknown training file type {suffix or '(none)'!r}; use .csv, .tsv or .jsonl."
                )
    except UnicodeDecodeError as error:
        raise GeneralizedPoolingError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start}).") from None
    return _to_dataset(records, path)


def as_pairs(data: Dataset | Iterable[Mapping[str, Any]], source: str = "train_dataset") -> Dataset:
    """Check in-memory pairs like ``read_pairs`` checks a file (problems name the row, counted from 0)."""
    if isinstance(data, Dataset):
        missing = [column for column in COLUMNS if column not in data.column_names]
        if missing:
            raise GeneralizedPoolingError(
                f"{source} lacks column(s) {', '.join(missing)}; it has {', '.join(data.column_names)}."
            )
        data = data.select_columns(list(COLUMNS))
    records = ((f"{source} row {index}", row) for index, row in enumerate(data))
    return _to_dataset(records, source)


def positive_pairs(dataset: Dataset, threshold: float = 0.5) -> Dataset:
    """The pairs with score >= ``threshold``, for losses that take every pair as a positive (in-batch negatives)."""
    positives = dataset.filter(lambda row: row["score"] >= threshold)
    if len(positives) == 0:
        raise GeneralizedPoolingError(f"No pair has score >= {threshold}: an in-batch-negatives loss needs positives.")
    return positives


def _csv_records(file, path: str, delimiter: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    reader = csv.DictReader(file, delimiter=delimiter)
    header = reader.fieldnames
    if header is None:
        raise GeneralizedPoolingError(f"{path} is empty: expected a header line {delimiter.join(COLUMNS)}.")
    missing = [column for column in COLUMNS if column not in header]
    if missing:
        raise GeneralizedPoolingError(
            f"{path}, line 1: the header lacks column(s) {', '.join(missing)} (it has {', '.join(header)})."
        )
    for row in reader:
        where = f"{path}, line {reader.line_num}"
        if None in row or any(row[column] is None for column in COLUMNS):
            raise GeneralizedPoolingError(f"{where}: expected {len(header)} fields, as in the header.")
        yield where, row


def _jsonl_records(file, path: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for number, line in enumerate(file, start=1):
        if not line.strip():
            continue
        where = f"{path}, line {number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise GeneralizedPoolingError(f"{where}: not valid JSON ({error.msg}).") from None
        yield where, record


def _to_dataset(records: Iterable[tuple[str, Any]], source: str) -> Dataset:
    columns: dict[str, list] = {column: [] for column in COLUMNS}
    for where, record in records:
        sentence1, sentence2, score = _check_record(record, where)
        columns["sentence1"].append(sentence1)
        columns["sentence2"].append(sentence2)
        columns["score"].append(score)
    if not columns["score"]:
        raise GeneralizedPoolingError(f"{source} has no pairs.")
    return Dataset.from_dict(columns)


def _check_record(record: Any, where: str) -> tuple[str, str, float]:
    if not isinstance(record, Mapping):
        raise GeneralizedPoolingError(f"{where}: expected an object with {', '.join(COLUMNS)}, got {type(record).__name__}.")
    missing = [column for column in COLUMNS if column not in record]
    if missing:
        raise GeneralizedPoolingError(f"{where}: missing {', '.join(missing)}.")
    for column in ("sentence1", "sentence2"):
        if not isinstance(record[column], str):
            raise GeneralizedPoolingError(f"{where}: {column} must be text, not {record[column]!r}.")
    value = record["score"]
    try:
        score = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        score = math.nan
    if not 0.0 <= score <= 1.0:  # also rejects NaN
        raise GeneralizedPoolingError(f"{where}: score {value!r} is not a number in [0, 1].")
    return record["sentence1"], record["sentence2"], score
