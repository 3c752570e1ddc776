"""Reading catalogs: pairs with their location and language, plural forms, fuzzy marks, counted skips."""

import shutil
from pathlib import Path

import polib
import pytest

from st_generalized_pooling.detection.catalogs import (
    NOT_IN_TEMPLATE,
    OBSOLETE,
    SYSTEM_DEPENDENT,
    UNTRANSLATED,
    CatalogError,
    language_from_path,
    read_catalog,
    read_catalogs,
)

DATA = Path(__file__).parent / "data"

EXCERPT = DATA / "apt-de-excerpt.po"


def test_po_pairs_carry_file_line_language_and_fuzzy_flag():
    catalog = read_catalog(EXCERPT)
    assert catalog.language == "de"
    pair = next(p for p in catalog.pairs if p.source == "Size mismatch")
    assert pair.translation == "Größe stimmt nicht überein"
    # the line the entry starts on (its first comment), as polib counts
    assert pair.file == str(EXCERPT) and EXCERPT.read_text().splitlines()[pair.line] == 'msgid "Size mismatch"'
    assert not pair.fuzzy and pair.plural_index is None and pair.msgctxt is None
    assert next(p for p in catalog.pairs if p.source.startswith("Internal Error")).fuzzy


def test_plural_forms_pair_msgstr0_with_msgid_and_the_others_with_msgid_plural():
    plural = [p for p in read_catalog(EXCERPT).pairs if p.plural_index is not None]
    assert [p.plural_index for p in plural] == [0, 1]
    assert plural[0].source.startswith("%lu package was") and plural[0].translation.startswith("%lu Paket wurde")
    assert plural[1].source.startswith("%lu packages were") and plural[1].translation.startswith("%lu Pakete wurden")


def test_untranslated_and_obsolete_entries_are_counted_not_paired():
    catalog = read_catalog(EXCERPT)
    assert catalog.skipped == {UNTRANSLATED: 1, OBSOLETE: 1}
    assert catalog.entries == 17 and len(catalog.pairs) == 16  # 15 singular + 1 plural entry (2 pairs), + 2 skipped
    assert all(p.translation for p in catalog.pairs)


def test_mo_files_read_with_msgctxt_and_language_from_the_lc_messages_path(tmp_path):
    po = polib.POFile()
    po.metadata = {"Content-Type": "text/plain; charset=UTF-8"}  # no Language header
    po.append(polib.POEntry(msgid="Open", msgstr="Ouvrir", msgctxt="menu"))
    po.append(polib.POEntry(msgid="Close", msgstr=""))
    folder = tmp_path / "fr" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    po.save_as_mofile(str(folder / "app.mo"))
    catalog = read_catalog(folder / "app.mo")
    assert catalog.language == "fr"
    (pair,) = catalog.pairs
    assert (pair.msgctxt, pair.translation, pair.line, pair.domain) == ("menu", "Ouvrir", None, "app")
    assert read_catalog(folder / "app.mo", language="fr_CA").language == "fr_CA"
    assert language_from_path("po/pt_BR.po") == "pt_BR"


def test_template_marks_stale_entries_and_counts_missing_ones(tmp_path):
    template = polib.POFile()
    for msgid in ("Open", "Save", "Quit"):
        template.append(polib.POEntry(msgid=msgid, msgstr=""))
    template.save(str(tmp_path / "app.pot"))
    po = polib.POFile()
    po.metadata = {"Language": "de", "Content-Type": "text/plain; charset=UTF-8"}
    po.append(polib.POEntry(msgid="Open", msgstr="Öffnen"))
    po.append(polib.POEntry(msgid="Removed long ago", msgstr="Längst entfernt"))
    po.save(str(tmp_path / "de.po"))
    (catalog,) = read_catalogs([tmp_path]).catalogs
    assert [p.source for p in catalog.pairs] == ["Open"]
    assert catalog.skipped == {UNTRANSLATED: 2, NOT_IN_TEMPLATE: 1}


def test_unreadable_files_are_reported_by_name_and_the_rest_still_read(tmp_path):
    shutil.copy(EXCERPT, tmp_path / "de.po")
    (tmp_path / "broken.po").write_text('msgid "a"\nfoo bar\n', encoding="utf-8")
    (tmp_path / "latin1.po").write_bytes(
        b'msgid ""\nmsgstr "Content-Type: text/plain; charset=UTF-8\\n"\n\nmsgid "a"\nmsgstr "\xe9t\xe9"\n'
    )
    (tmp_path / "text.mo").write_text("not a catalog", encoding="utf-8")
    result = read_catalogs([tmp_path])
    assert [c.path for c in result.catalogs] == [str(tmp_path / "de.po")]
    assert len(result.errors) == 3
    for name, why in [("broken.po", "line 2"), ("latin1.po", "encoding"), ("text.mo", "not a gettext")]:
        (error,) = [error for error in result.errors if str(tmp_path / name) in error]
        assert why in error and "\n" not in error
    with pytest.raises(CatalogError, match="no such file"):
        read_catalogs([tmp_path / "missing.po"])


def test_system_dependent_strings_of_a_mo_are_counted_as_skipped(tmp_path):
    """A revision-1 .mo (as msgfmt writes for coreutils' %<PRIdMAX> strings) whose two system-dependent
    strings polib cannot read: they are counted, not silently lost."""
    import struct

    strings = [(b"", b"Content-Type: text/plain; charset=UTF-8\n"), (b"Open", b"Ouvrir")]
    count, header = len(strings), 48
    data = header + 16 * count
    blob, tables = b"", []
    for side in (0, 1):
        for entry in strings:
            tables.append(struct.pack("<2I", len(entry[side]), data + len(blob)))
            blob += entry[side] + b"\0"
    # magic, revision 1, N, original table, translation table, hash size/offset, 0 segments, 2 sysdep strings
    head = struct.pack("<12I", 0x950412DE, 1, count, header, header + 8 * count, 0, 0, 0, 0, 2, 0, 0)
    path = tmp_path / "de" / "LC_MESSAGES" / "app.mo"
    path.parent.mkdir(parents=True)
    path.write_bytes(head + b"".join(tables) + blob)
    catalog = read_catalog(path)
    assert [(p.source, p.translation) for p in catalog.pairs] == [("Open", "Ouvrir")]
    assert catalog.skipped == {SYSTEM_DEPENDENT: 2} and catalog.entries == 3
