"""``st-gp check`` end to end: it flags the entries of a real catalog excerpt that were corrupted by hand."""

import csv
import io
import json
import shutil
from pathlib import Path

import polib
import pytest

from st_generalized_pooling.cli import main
from st_generalized_pooling.detection.check import THRESHOLD_FILE, load_threshold, save_threshold

EXCERPT = Path(__file__).parent / "data" / "apt-de-excerpt.po"


def corrupted_lines() -> dict[int, str]:
    """Line -> the hand-made corruption, from the fixture's "CORRUPTED:" comments."""
    return {e.linenum: e.comment for e in polib.pofile(str(EXCERPT)) if e.comment.startswith("CORRUPTED")}


def run(capsys, *argv):
    status = main(["check", *map(str, argv)])
    out, err = capsys.readouterr()
    return status, out, err


def test_check_flags_exactly_the_hand_corrupted_entries_and_says_why(capsys, e5_model_path):
    status, out, _ = run(capsys, EXCERPT, "--model", e5_model_path, "--top", 2, "--format", "json")
    assert status == 1
    flagged = json.loads(out)
    assert {row["line"] for row in flagged} == set(corrupted_lines())
    reasons = {row["source"]: row["reasons"] for row in flagged}
    # The two translations of other strings are the least similar pairs: only the model sees them.
    assert [row["source"] for row in flagged[:2]] == [
        "Note: This is done automatically and on purpose by dpkg.", "Hash Sum mismatch"]
    assert all(r[0].startswith("similarity") for r in list(reasons.values())[:2])
    assert reasons["Signature error"] == ["script: mostly Cyrillic, expected Latin"]
    assert reasons["The repository '%s' does not have a Release file."] == ["placeholders: missing %s"]
    assert any(r.startswith("numbers: missing 8") for r in reasons[next(s for s in reasons if "apt-secure" in s)])


def test_check_without_rules_flags_by_similarity_only_and_prints_a_summary(capsys, e5_model_path):
    status, out, _ = run(capsys, EXCERPT, "--model", e5_model_path, "--top", 2, "--no-rules")
    assert status == 1
    assert out.count("why:  similarity") == 2
    assert "17 entries read, 16 pairs scored; skipped: 1 obsolete, 1 untranslated" in out
    assert "flagged 2 (2 by similarity" in out


def test_clean_catalog_exits_0_and_csv_has_a_header(capsys, tiny_model_path, tmp_path):
    po = polib.POFile()
    po.metadata = {"Language": "de", "Content-Type": "text/plain; charset=UTF-8"}
    po.append(polib.POEntry(msgid="Open the file", msgstr="Datei öffnen"))
    po.save(str(tmp_path / "de.po"))
    status, out, err = run(capsys, tmp_path, "--model", tiny_model_path, "--threshold", -1.1, "--format", "csv")
    assert status == 0
    assert next(csv.reader(io.StringIO(out)))[:3] == ["score", "file", "line"]
    assert "flagged 0" in err


def test_check_uses_the_threshold_stored_with_the_model_and_asks_for_one_otherwise(capsys, tiny_model_path, tmp_path):
    status, _, err = run(capsys, EXCERPT, "--model", tiny_model_path)
    assert status == 2 and "no stored detection threshold" in err and "--threshold" in err
    model = tmp_path / "model"
    shutil.copytree(tiny_model_path, model)
    save_threshold(model, 1.5, chosen_on="dev")  # cosine < 1.5 always: everything flagged
    assert load_threshold(str(model)) == 1.5 and (model / THRESHOLD_FILE).exists()
    status, out, _ = run(capsys, EXCERPT, "--model", model, "--no-rules")
    assert status == 1 and "flagged 16 (16 by similarity, threshold 1.5000" in out


def test_unreadable_file_gets_one_line_and_exit_2_while_the_others_are_checked(capsys, tiny_model_path, tmp_path):
    shutil.copy(EXCERPT, tmp_path / "de.po")
    (tmp_path / "fr.po").write_text("this is not gettext\n", encoding="utf-8")
    status, out, err = run(capsys, tmp_path, "--model", tiny_model_path, "--top", 1)
    assert status == 2
    (line,) = [line for line in err.splitlines() if "error" in line]
    assert str(tmp_path / "fr.po") in line
    assert "16 pairs scored" in out and "1 unreadable file;" in out


def test_bad_options_are_refused(capsys, tiny_model_path):
    status, _, err = run(capsys, EXCERPT, "--model", tiny_model_path, "--top", -1)
    assert status == 2 and "top must be >= 0" in err
    with pytest.raises(SystemExit):  # argparse: --threshold and --top exclude each other
        run(capsys, EXCERPT, "--model", tiny_model_path, "--threshold", 0.5, "--top", 3)
