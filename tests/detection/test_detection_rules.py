"""The pofilter-style checks: what each one flags, and the legitimate differences it lets pass."""

from dataclasses import replace

from st_generalized_pooling.detection.catalogs import Pair
from st_generalized_pooling.detection.rules import numbers, placeholders, run_rules

PAIR = Pair("Open %s", "Öffne %s", "de.po", 3, None, None, "de")


def pair(source: str, translation: str, language: str = "de", plural_index=None) -> Pair:
    return replace(PAIR, source=source, translation=translation, language=language, plural_index=plural_index)


def test_placeholders_are_compared_as_multisets_ignoring_position_and_literal_percent():
    assert placeholders("%1$s of %2$d, 100%% {name} %(user)s {0}") == {"%s": 1, "%d": 1, "{name}": 1,
                                                                    "%(user)s": 1, "{}": 1}
    assert run_rules(pair("Move %s to %s (%d)", "%2$s: %1$s verschieben (%d)")) == []
    assert run_rules(pair("99% of the time", "99 % der Zeit")) == []
    assert run_rules(pair("Copy %s to %s", "Kopiere %s")) == ["placeholders: missing %s"]
    assert run_rules(pair("Hello {name}", "Hallo {user}")) == ["placeholders: missing {name}, extra {user}"]


def test_a_singular_plural_form_may_spell_out_its_count():
    assert run_rules(pair("%d file", "Ein Datei-Eintrag", plural_index=0)) == []
    assert run_rules(pair("%d files in %s", "%d Dateien", plural_index=1)) == ["placeholders: missing %s"]


def test_numbers_must_survive_but_may_be_added_or_written_in_other_digits():
    assert numbers("apt-secure(8), version 2.6.1, %5d") == {"8": 1, "261": 1}
    assert run_rules(pair("See apt-secure(8)", "Siehe apt-secure(5)")) == ["numbers: missing 8, extra 5"]
    assert run_rules(pair("Page 12", "صفحة ١٢", language="ar")) == []
    assert run_rules(pair("December", "12月", language="ja")) == []


def test_length_ratio_is_checked_on_long_sources_with_room_for_dense_scripts():
    source = "The repository could not be updated because the signature is invalid"
    assert run_rules(pair(source, "Fehler")) == ["length: translation has 0.10x the letters of the source"]
    assert run_rules(pair(source, "署名が無効なためリポジトリを更新できません", language="ja")) == []
    assert run_rules(pair("Short", "Ein sehr, sehr viel längerer Text")) == []  # source too short to judge


def test_an_untranslated_copy_is_flagged_except_in_english_variants_and_for_single_words():
    assert run_rules(pair("Save the file", "Save the file")) == ["untranslated: the source copied"]
    assert run_rules(pair("Save the file", "Save the file", language="en_GB")) == []
    assert run_rules(pair("GNOME", "GNOME")) == []


def test_script_of_the_translation_must_match_the_language_names_copied_from_the_source_aside():
    assert run_rules(pair("Signature error", "Ошибка подписи")) == ["script: mostly Cyrillic, expected Latin"]
    assert run_rules(pair("Signature error", "Signaturfehler", language="ru")) == [
        "script: mostly Latin, expected Cyrillic"]
    assert run_rules(pair("oops: ksba_cert_hash failed", "おっと: ksba_cert_hashが失敗しました", language="ja")) == []
    assert run_rules(pair("Signature error", "Greška potpisa", language="sr@latin")) == []
    assert run_rules(pair("Signature error", "Signatur", language="xx")) == []  # unknown language: not checked
