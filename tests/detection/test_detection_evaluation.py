"""The evaluation end to end on a tiny model and small synthetic catalogs (a smoke test of the README run)."""

import json

import numpy as np
import polib
import pytest

from st_generalized_pooling.cli import main
from st_generalized_pooling.detection.catalogs import Pair, read_catalogs
from st_generalized_pooling.detection.check import THRESHOLD_FILE, load_threshold
from st_generalized_pooling.detection.config import EvaluationConfig
from st_generalized_pooling.detection.evaluation import SPLITS, build_labelled_set, sample_positives, split_of

SOURCES = [
    "could not open file %s", "cannot connect to server %s", "disk is full", "print the file",
    "save the file before closing", "delete %d files", "update the package", "the network is down",
    "install the new package", "user password is not valid", "close the window", "printer not found",
    "open 2 new windows", "the system could not be updated", "settings for %(user)s are saved",
    "file {name} not found", "connect to 3 servers, then update the system", "new user",
]
LANGUAGES = {"de": "datei", "fr": "fichier", "es": "archivo"}


def write_catalogs(root, fuzzy=False):
    for language, word in LANGUAGES.items():
        folder = root / language / "LC_MESSAGES"
        folder.mkdir(parents=True)
        po = polib.POFile()
        po.metadata = {"Language": language, "Content-Type": "text/plain; charset=UTF-8"}
        for i, source in enumerate(SOURCES):
            placeholders = " ".join(p for p in ("%s", "%d", "%(user)s", "{name}") if p in source)
            numbers = " ".join(n for n in ("2", "3") if f" {n} " in source)
            negation = {"de": "nicht", "fr": "ne peut pas", "es": "no"}[language] if " not " in source else ""
            translation = f"{word} {i} {negation} {numbers} {placeholders}, {word} {len(source)}".replace("  ", " ")
            entry = polib.POEntry(msgid=source, msgstr=translation)
            if fuzzy and i % 3 == 0:
                entry.flags.append("fuzzy")
            po.append(entry)
        po.save(str(folder / "app.po"))


def test_split_is_by_source_string_and_stable():
    splits = [split_of(f"string {i}", (0.5, 0.25, 0.25), seed=0) for i in range(2000)]
    assert splits == [split_of(f"string {i}", (0.5, 0.25, 0.25), seed=0) for i in range(2000)]
    counts = {s: splits.count(s) / len(splits) for s in SPLITS}
    assert counts["train"] == pytest.approx(0.5, abs=0.05) and counts["test"] == pytest.approx(0.25, abs=0.05)


def test_sampling_dedupes_pairs_excludes_domains_and_fuzzy_and_caps_catalogs():
    def pair(source, domain, fuzzy=False, language="de"):
        return Pair(source, source.upper(), f"{language}/LC_MESSAGES/{domain}.mo", None, None, None, language, fuzzy)

    pairs = ([pair(f"s{i}", "iso_3166") for i in range(5)] + [pair(f"s{i}", "iso_3166-1") for i in range(5)]
             + [pair(f"t{i}", "app") for i in range(50)] + [pair("u", "app", fuzzy=True)])
    config = EvaluationConfig(max_pairs=1000, max_pairs_per_catalog=20)
    chosen = sample_positives(pairs, config)
    assert len(chosen) == 5 + 20  # duplicates of iso_3166-1 dropped, app capped, fuzzy left out
    config = EvaluationConfig(max_pairs=1000, max_pairs_per_catalog=20, exclude_domains=["iso_*"])
    assert {p.domain for p in sample_positives(pairs, config)} == {"app"}


def test_labelled_set_splits_by_source_and_draws_negatives_within_the_split(tmp_path, bert_model):
    write_catalogs(tmp_path)
    pairs = read_catalogs([tmp_path]).pairs
    config = EvaluationConfig(negatives_per_kind=0.5)
    data = build_labelled_set(pairs, pairs, bert_model, config, show_progress_bar=False)
    split_of_source = {}
    for pair, split in zip(data.pairs, data.splits):
        assert split_of_source.setdefault(pair.source, split) == split
    translations = {split: {p.translation for p, label, s in zip(data.pairs, data.labels, data.splits)
                            if label == 0 and s == split} for split in SPLITS}
    for pair, label, kind, split in zip(data.pairs, data.labels, data.kinds, data.splits):
        if kind in ("similar", "random"):
            assert pair.translation in translations[split]
    assert (data.labels == 0).sum() == len(pairs) and set(data.kinds) - {""} <= set(config.kinds)


def test_evaluate_smoke_on_a_tiny_model(tmp_path, tiny_model_path, capsys):
    import shutil

    catalogs, fuzzy = tmp_path / "locale", tmp_path / "fuzzy"
    write_catalogs(catalogs)
    write_catalogs(fuzzy, fuzzy=True)
    model = tmp_path / "model"
    shutil.copytree(tiny_model_path, model)
    output = tmp_path / "results"
    status = main(["evaluate", "--model", str(model), "--output-dir", str(output), "--catalogs", str(catalogs),
                   "--max-pairs", "200", "--negatives-per-kind", "0.3", "--epochs", "1", "--bootstrap", "20",
                   "--num-heads", "4", "--fuzzy", str(fuzzy), "--batch-size", "16"])
    assert status == 0
    out = capsys.readouterr().out
    results = json.loads((output / "results.json").read_text())
    assert results["positives"] == 3 * len(SOURCES) and results["languages"] == 3
    assert results["step0_max_abs_score_diff"] < 1e-5  # (c) equals (b)
    methods = {"rules", "mean", "converted", "generalized", "mean_dense", "combined"}
    assert set(results["table"]["all"]) == methods
    assert {"kind:similar", "kind:random", "kind:wrong_language", "lang:de"} <= set(results["table"])
    row = results["table"]["all"]["generalized"]
    assert row["pairs"] > row["wrong"] > 0 and 0 <= row["ap"] <= 1 and row["ap_low"] <= row["ap"] <= row["ap_high"]
    assert set(results["differences"]["all"]) == {"generalized-mean", "generalized-mean_dense", "mean_dense-mean"}
    assert set(results["pairs_per_second"]) == methods - {"rules", "combined"}
    assert results["fuzzy"]["fuzzy_pairs"] == 3 * 6 and "rules" in results["fuzzy"]["rows"]
    assert results["training"]["generalized"]["trained_parameters"] > 0
    assert "| all |" in out and "Real fuzzy entries" in out
    # Thresholds stored with the models they were chosen for, where check finds them.
    # (A threshold that flags every dev pair is useless and is not stored.)
    for name, folder in [("mean", model), ("generalized", output / "generalized"), ("mean_dense", output / "mean_dense")]:
        if results["saved_thresholds"][name] is None:
            assert not (folder / THRESHOLD_FILE).exists()
        else:
            assert load_threshold(str(folder)) == pytest.approx(results["thresholds"][name])
    assert any(path is not None for path in results["saved_thresholds"].values())
    assert np.isfinite(list(results["thresholds"].values())).all()
    assert main(["check", str(catalogs), "--model", str(output / "generalized"), "--no-rules"]) in (0, 1)
    assert not (output / "token-embeddings").exists()
