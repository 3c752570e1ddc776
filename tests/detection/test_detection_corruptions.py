"""Each kind of wrong translation: what it changes, and when it does not apply."""

import random

import numpy as np
import pytest

from st_generalized_pooling.detection.catalogs import Pair
from st_generalized_pooling.detection.corruptions import (
    KINDS,
    change_number,
    corrupt_placeholder,
    entry_key,
    make_negatives,
    nearest_sources,
    remove_negation,
    truncate,
)


def rng():
    return random.Random(0)


def test_change_number_changes_one_number_outside_placeholders():
    changed = change_number("Debian 5 Disk %2$s", rng())
    assert changed != "Debian 5 Disk %2$s" and changed.endswith(" Disk %2$s")
    assert change_number("Kopiere %5d Dateien", rng()) is None


def test_placeholder_corruption_swaps_two_different_ones_or_drops_one():
    results = {corrupt_placeholder("Verschiebe %s nach %d", random.Random(seed)) for seed in range(20)}
    assert results == {"Verschiebe %d nach %s", "Verschiebe nach %d", "Verschiebe %s nach"}
    assert corrupt_placeholder("100%% fertig", rng()) is None


@pytest.mark.parametrize(
    ("text", "language", "expected"),
    [
        ("Das Depot ist nicht signiert.", "de", "Das Depot ist signiert."),
        ("Keine Datei gefunden", "de", "Eine Datei gefunden"),
        ("Не удалось открыть файл", "ru", "Удалось открыть файл"),
        ("Le fichier n'est pas signé", "fr", "Le fichier est signé"),
        ("No se pudo abrir", "es", "Se pudo abrir"),
        ("The file cannot be read", "en_GB", "The file can be read"),
    ],
)
def test_remove_negation_makes_the_string_say_the_opposite(text, language, expected):
    assert remove_negation(text, language, rng()) == expected


def test_remove_negation_needs_a_negation_and_a_known_language():
    assert remove_negation("Das Depot ist signiert.", "de", rng()) is None
    assert remove_negation("Dosya açılamadı", "tr", rng()) is None


def test_truncate_keeps_the_first_clause_near_the_middle():
    assert truncate("Es gibt eine weitere Version. Verwenden Sie -a, um sie anzuzeigen.") == "Es gibt eine weitere Version."
    assert truncate("执行 dpkg 失败。您是 root 吗？") == "执行 dpkg 失败。"
    assert truncate("Eine einzige Aussage ohne Grenze") is None


def pairs():
    catalog = [("Open file", "Datei öffnen"), ("Open folder", "Ordner öffnen"), ("Quit", "Beenden"),
               ("Save 2 files", "2 Dateien speichern"), ("Is not signed", "Ist nicht signiert")]
    german = [Pair(s, t, "de/LC_MESSAGES/app.mo", None, None, None, "de") for s, t in catalog]
    french = [Pair(s, t, "fr/LC_MESSAGES/app.mo", None, None, None, "fr")
              for s, t in [("Open file", "Ouvrir le fichier"), ("Quit", "Quitter")]]
    return german, french


def test_similar_takes_the_translation_of_the_nearest_other_source_of_the_same_catalog():
    german, french = pairs()
    vectors = {"Open file": [1, 0, 0], "Open folder": [0.9, 0.43, 0], "Quit": [0, 0, 1],
               "Save 2 files": [0, 1, 0], "Is not signed": [0, 0.7, 0.7]}
    embeddings = {key: np.array(value) / np.linalg.norm(value) for key, value in vectors.items()}
    nearest = nearest_sources(german + french, embeddings)
    assert nearest[0] == 1 and nearest[1] == 0
    assert nearest[5] == 6 and nearest[6] == 5  # French pairs only among French ones


def test_make_negatives_keeps_the_source_and_location_and_changes_the_translation():
    german, french = pairs()
    others = {}
    for pair in german + french:
        others.setdefault(entry_key(pair), []).append(pair)
    embeddings = {p.source: np.eye(5)[i] for i, p in enumerate(german)}
    negatives = make_negatives(german, KINDS, fraction=1.0, seed=0, embeddings=embeddings, other_languages=others)
    kinds = {n.kind for n in negatives}
    assert kinds == {"number", "negation", "copy", "similar", "random", "wrong_language"}  # no placeholder, no clause
    for negative in negatives:
        assert negative.pair.source == negative.original.source and negative.pair.file == negative.original.file
        assert negative.pair.translation != negative.original.translation
    (wrong,) = [n for n in negatives if n.kind == "wrong_language" and n.original.source == "Quit"]
    assert wrong.pair.translation == "Quitter"
    assert len([n for n in negatives if n.kind == "random"]) == len(german)
    with pytest.raises(ValueError, match="unknown corruption kinds"):
        make_negatives(german, ["typo"])
