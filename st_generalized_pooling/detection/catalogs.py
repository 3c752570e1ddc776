"""Read gettext catalogs (.po, .pot + .po, .mo) into (source, translation) pairs, counting what is skipped.

Every translated entry gives one pair; a plural entry gives one pair per ``msgstr[n]`` (``msgstr[0]`` with
``msgid``, the others with ``msgid_plural``). Untranslated, obsolete and header entries give none, and are
counted by reason, so that nothing is skipped silently. Fuzzy entries are kept and marked.
"""

from __future__ import annotations

import os
import struct
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import polib

from st_generalized_pooling.errors import GeneralizedPoolingError

CATALOG_SUFFIXES = (".po", ".mo")
TEMPLATE_SUFFIX = ".pot"
MO_MAGICS = (0x950412DE, 0xDE120495)

# Skip reasons, as they are reported.
UNTRANSLATED = "untranslated"
OBSOLETE = "obsolete"
NOT_IN_TEMPLATE = "not in template"
SYSTEM_DEPENDENT = "system-dependent string in .mo (e.g. %<PRIdMAX>), not read by polib"
EMPTY_PLURAL_FORM = "empty plural form"


class CatalogError(GeneralizedPoolingError):
    """A file that is not a readable gettext catalog; the message names it."""


@dataclass(frozen=True)
class Pair:
    """One source string and its translation, with where it came from."""

    source: str
    translation: str
    file: str
    line: int | None  # line of the entry in a .po; None for .mo
    msgctxt: str | None
    plural_index: int | None  # n of msgstr[n]; None for a singular entry
    language: str | None
    fuzzy: bool = False

    @property
    def location(self) -> str:
        """``file:line`` (or the file alone for a .mo), for messages."""
        return f"{self.file}:{self.line}" if self.line is not None else self.file

    @property
    def domain(self) -> str:
        """The catalog's text domain, e.g. ``apt`` for ``.../de/LC_MESSAGES/apt.mo``."""
        return Path(self.file).stem


@dataclass
class Catalog:
    """The pairs read from one file, its language and the entries skipped, by reason."""

    path: str
    language: str | None
    pairs: list[Pair]
    entries: int  # entries read (header excluded), whether they gave pairs or were skipped
    skipped: Counter[str] = field(default_factory=Counter)


@dataclass
class CatalogSet:
    """Pairs of many files, skip counts summed, and the files that could not be read (one line each)."""

    catalogs: list[Catalog] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def pairs(self) -> list[Pair]:
        return [pair for catalog in self.catalogs for pair in catalog.pairs]

    @property
    def skipped(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for catalog in self.catalogs:
            total.update(catalog.skipped)
        return total

    @property
    def entries(self) -> int:
        return sum(catalog.entries for catalog in self.catalogs)


def language_from_path(path: str | os.PathLike) -> str | None:
    """The language a catalog's path names: ``<lang>/LC_MESSAGES/x.mo`` or ``po/<lang>.po``."""
    path = Path(path)
    if path.parent.name == "LC_MESSAGES" and path.parent.parent.name:
        return path.parent.parent.name
    if path.suffix == ".po" and path.parent.name == "po":
        return path.stem
    return None


def _language(path: str, metadata: dict[str, str], override: str | None) -> str | None:
    if override:
        return override
    return (metadata.get("Language") or "").strip() or language_from_path(path)


def _system_dependent_strings(path: str) -> int:
    """How many system-dependent strings a .mo holds (revision 1 format); polib reads none of them."""
    with open(path, "rb") as file:
        head = file.read(48)
    if len(head) < 8:
        return 0
    for order in ("<", ">"):
        magic, revision = struct.unpack(order + "II", head[:8])
        if magic == 0x950412DE:
            break
    else:
        return 0
    if revision >> 16 != 0 or revision & 0xFFFF < 1 or len(head) < 48:
        return 0
    return struct.unpack(order + "I", head[36:40])[0]


def _open(path: str) -> polib._BaseFile:
    """polib's file object, or CatalogError naming the file and what is wrong with it."""
    try:
        if path.endswith(".mo"):
            with open(path, "rb") as file:
                magic = file.read(4)
            if len(magic) < 4 or struct.unpack("<I", magic)[0] not in MO_MAGICS:
                raise CatalogError(f"{path}: not a gettext .mo file (bad magic number)")
            return polib.mofile(path)
        return polib.pofile(path, wrapwidth=0)
    except CatalogError:
        raise
    except UnicodeDecodeError as error:
        raise CatalogError(f"{path}: not valid in its declared encoding ({error.reason} at byte {error.start})") from None
    except (OSError, ValueError, struct.error) as error:
        raise CatalogError(f"{path}: not a readable gettext catalog: {str(error).strip() or type(error).__name__}") from None


def _key(entry: polib._BaseEntry) -> tuple[str | None, str]:
    return entry.msgctxt, entry.msgid


def read_catalog(
    path: str | os.PathLike, template: str | os.PathLike | None = None, language: str | None = None
) -> Catalog:
    """The pairs of one .po or .mo file. With a .pot ``template``, entries the template no longer has are
    skipped ("not in template") and template entries the catalog lacks count as untranslated."""
    path = os.fspath(path)
    catalog_file = _open(path)
    lang = _language(path, catalog_file.metadata, language)
    is_mo = path.endswith(".mo")
    skipped: Counter[str] = Counter()
    wanted = None
    if template is not None:
        wanted = {_key(entry) for entry in _open(os.fspath(template)) if not entry.obsolete and entry.msgid}
        present = {_key(entry) for entry in catalog_file if not entry.obsolete}
        if missing := len(wanted - present):
            skipped[UNTRANSLATED] += missing
    pairs: list[Pair] = []
    entries = skipped[UNTRANSLATED]  # template entries missing from the catalog
    for entry in catalog_file:
        if entry.msgid == "" and not entry.msgctxt:
            continue  # the header
        entries += 1
        if entry.obsolete:
            skipped[OBSOLETE] += 1
            continue
        if wanted is not None and _key(entry) not in wanted:
            skipped[NOT_IN_TEMPLATE] += 1
            continue
        fuzzy = "fuzzy" in entry.flags
        line = None if is_mo else entry.linenum
        if entry.msgid_plural:
            forms = sorted(entry.msgstr_plural.items())
            if not any(text for _, text in forms):
                skipped[UNTRANSLATED] += 1
                continue
            for index, text in forms:
                if not text:
                    skipped[EMPTY_PLURAL_FORM] += 1
                    continue
                source = entry.msgid if int(index) == 0 else entry.msgid_plural
                pairs.append(Pair(source, text, path, line, entry.msgctxt, int(index), lang, fuzzy))
        elif entry.msgstr:
            pairs.append(Pair(entry.msgid, entry.msgstr, path, line, entry.msgctxt, None, lang, fuzzy))
        else:
            skipped[UNTRANSLATED] += 1
    if is_mo and (dependent := _system_dependent_strings(path)):
        skipped[SYSTEM_DEPENDENT] += dependent
        entries += dependent
    return Catalog(path, lang, pairs, entries, skipped)


def find_catalogs(paths: Iterable[str | os.PathLike]) -> list[tuple[str, str | None]]:
    """``(catalog, template or None)`` for every .po/.mo given or found under given folders, sorted.

    A folder's .po files are paired with the folder's single .pot when there is exactly one. A .pot
    given on its own has no translations: CatalogError.
    """
    found: list[tuple[str, str | None]] = []
    for given in paths:
        given = os.fspath(given)
        if os.path.isdir(given):
            for root, dirs, files in os.walk(given):
                dirs.sort()
                templates = [name for name in files if name.endswith(TEMPLATE_SUFFIX)]
                template = os.path.join(root, templates[0]) if len(templates) == 1 else None
                for name in sorted(files):
                    if name.endswith(CATALOG_SUFFIXES):
                        found.append((os.path.join(root, name), template if name.endswith(".po") else None))
        elif not os.path.exists(given):
            raise CatalogError(f"{given}: no such file or directory")
        elif given.endswith(TEMPLATE_SUFFIX):
            raise CatalogError(f"{given}: a .pot template has no translations; give the .po files (with it)")
        else:
            found.append((given, None))
    return found


def read_catalogs(paths: Sequence[str | os.PathLike], language: str | None = None) -> CatalogSet:
    """All catalogs under ``paths`` (see ``find_catalogs``). A file that cannot be read is reported in
    ``errors``, the others are still read."""
    result = CatalogSet()
    for path, template in find_catalogs(paths):
        try:
            result.catalogs.append(read_catalog(path, template, language))
        except CatalogError as error:
            result.errors.append(str(error))
    return result
