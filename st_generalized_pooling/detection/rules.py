"""Syntactic checks in the style of pofilter: placeholders, numbers, length ratio, untranslated copy, script.

They look at form, never at meaning; they are the baseline the models are compared with, and ``check``
runs them beside the model. Each check returns a short reason, or None when the pair passes.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Callable

from st_generalized_pooling.detection.catalogs import Pair

# printf conversions (with optional %n$ position, flags, width, precision, length) and %(name)s;
# then Python/C#-style {name} / {0} / {0:.2f} fields. "%%" and "{{" are literal.
PRINTF = re.compile(
    r"%(?:(?P<position>\d+)\$)?(?:\((?P<name>[A-Za-z_][\w.-]*)\))?[-+#0']*(?:\d+|\*)?(?:\.(?:\d+|\*))?"
    r"(?:hh|h|ll|l|L|q|j|z|Z|t|I64|I32|I)?(?P<conversion>[diouxXeEfFgGaAcspnm]|<PRI\w+>)"
)
BRACE = re.compile(r"(?<!\{)\{(?P<field>[A-Za-z_]\w*|\d*)(?:![rsa])?(?::[^{}]*)?\}(?!\})")
NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
INTEGER_CONVERSIONS = set("diouxXc")
MIN_LENGTH_FOR_RATIO = 20
LENGTH_RATIO = (0.3, 3.5)
DENSE_SCRIPT_LENGTH_RATIO = (0.12, 3.5)  # Han, kana and Hangul say a lot in few characters
DENSE_SCRIPTS = {"CJK", "HIRAGANA", "KATAKANA", "HANGUL"}

# The script(s) a language is written in, for the languages whose catalogs this machine has most of.
# Languages not listed (and "@latin" variants of Cyrillic ones) are not checked.
_SCRIPTS: dict[str, set[str]] = {
    "CYRILLIC": set("ru uk be bg sr mk kk ky mn tg tt ba cv ab os".split()),
    "GREEK": {"el"},
    "ARABIC": set("ar fa ur ps ug ckb sd ks".split()),
    "HEBREW": {"he", "yi"},
    "DEVANAGARI": set("hi mr ne sa mai kok bho brx doi".split()),
    "BENGALI": {"bn", "as", "mni"},
    "GURMUKHI": {"pa"},
    "GUJARATI": {"gu"},
    "ORIYA": {"or"},
    "TAMIL": {"ta"},
    "TELUGU": {"te"},
    "KANNADA": {"kn"},
    "MALAYALAM": {"ml"},
    "SINHALA": {"si"},
    "THAI": {"th"},
    "LAO": {"lo"},
    "KHMER": {"km"},
    "MYANMAR": {"my"},
    "GEORGIAN": {"ka"},
    "ARMENIAN": {"hy"},
    "ETHIOPIC": {"am", "ti"},
    "TIBETAN": {"bo", "dz"},
    "LATIN": set(
        "af an ast az br bs ca cs cy da de en eo es et eu fi fil fo fr fur fy ga gd gl ha hr hu ia id ig is it "
        "jv ku lb lt lv mg ms mt nb nds nl nn no oc pl pt rm ro rw sc sk sl so sq sv sw tk tl tr vi wa wo xh "
        "yo zu uz".split()
    ),
}
LANGUAGE_SCRIPTS: dict[str, set[str]] = {}
for _script, _codes in _SCRIPTS.items():
    for _code in _codes:
        LANGUAGE_SCRIPTS[_code] = {_script}
LANGUAGE_SCRIPTS.update(
    {"ja": {"CJK", "HIRAGANA", "KATAKANA"}, "zh": {"CJK"}, "ko": {"HANGUL", "CJK"}, "yue": {"CJK"}}
)


def placeholders(text: str) -> Counter[str]:
    """The placeholders of a string, position-free: ``%s``, ``%d``, ``%(name)s``, ``{name}``, ``{}``.

    ``%1$s`` counts as ``%s`` so that reordered translations compare equal; lengths (``%ld``) are dropped.
    """
    found: Counter[str] = Counter()
    stripped = text.replace("%%", "")
    for match in PRINTF.finditer(stripped):
        conversion = match["conversion"]
        found[f"%({match['name']}){conversion}" if match["name"] else f"%{conversion}"] += 1
    for match in BRACE.finditer(stripped.replace("{{", "").replace("}}", "")):
        found["{" + (match["field"] if not match["field"].isdigit() else "") + "}"] += 1
    return found


def strip_placeholders(text: str) -> str:
    return BRACE.sub(" ", PRINTF.sub(" ", text.replace("%%", " ")))


def numbers(text: str) -> Counter[str]:
    """Numbers outside placeholders, with any script's digits read as ASCII and separators dropped."""
    ascii_digits = "".join(str(unicodedata.digit(c)) if c.isdigit() else c for c in strip_placeholders(text))
    return Counter(re.sub(r"[.,]", "", number) for number in NUMBER.findall(ascii_digits))


def base_language(language: str | None) -> str:
    return re.split(r"[_@.-]", language or "", maxsplit=1)[0].lower()


def script_of(char: str) -> str:
    """The first word of a letter's Unicode name: LATIN, CYRILLIC, CJK, HIRAGANA, ..."""
    name = unicodedata.name(char, "")
    return name.split(" ", 1)[0] if name else ""


def _describe(counter: Counter[str]) -> str:
    return " ".join(sorted(counter.elements()))


def check_placeholders(pair: Pair) -> str | None:
    source, translation = placeholders(pair.source), placeholders(pair.translation)
    if source == translation:
        return None
    missing, extra = source - translation, translation - source
    if pair.plural_index is not None:
        # A singular form may say "one file" without its %d; only a lost non-integer placeholder counts.
        missing = Counter({key: n for key, n in missing.items() if key[-1] not in INTEGER_CONVERSIONS})
        if not missing and not extra:
            return None
    parts = ([f"missing {_describe(missing)}"] if missing else []) + ([f"extra {_describe(extra)}"] if extra else [])
    return "placeholders: " + ", ".join(parts)


def check_numbers(pair: Pair) -> str | None:
    """The source's numbers changed; a translation may add numbers the source spells out ("12月")."""
    source, translation = numbers(pair.source), numbers(pair.translation)
    if not source or source == translation:
        return None
    missing, extra = source - translation, translation - source
    parts = ([f"missing {_describe(missing)}"] if missing else []) + ([f"extra {_describe(extra)}"] if extra else [])
    return "numbers: " + ", ".join(parts)


def _letters(text: str) -> str:
    return "".join(c for c in strip_placeholders(text) if c.isalpha())


def check_length(pair: Pair) -> str | None:
    source, translation = _letters(pair.source), _letters(pair.translation)
    if len(source) < MIN_LENGTH_FOR_RATIO:
        return None
    dense = sum(script_of(c) in DENSE_SCRIPTS for c in translation) > len(translation) / 2
    low, high = DENSE_SCRIPT_LENGTH_RATIO if dense else LENGTH_RATIO
    ratio = len(translation) / len(source)
    if low <= ratio <= high:
        return None
    return f"length: translation has {ratio:.2f}x the letters of the source"


def check_copy(pair: Pair) -> str | None:
    """The source copied unchanged; English variants (en_GB, ...) legitimately copy, so they are exempt."""
    if base_language(pair.language) == "en" or pair.translation.strip() != pair.source.strip():
        return None
    words = re.findall(r"[^\W\d_]{2,}", strip_placeholders(pair.source))
    return "untranslated: the source copied" if len(words) >= 2 else None


def check_script(pair: Pair) -> str | None:
    """Most letters of the translation, outside words copied from the source, not in the language's script."""
    language = pair.language or ""
    expected = LANGUAGE_SCRIPTS.get(base_language(language))
    if expected is None or "@" in language:
        return None
    own = strip_placeholders(pair.translation).lower()
    for word in sorted(set(re.findall(r"[^\W\d_]{2,}", pair.source.lower())), key=len, reverse=True):
        own = own.replace(word, " ")  # names and identifiers copied from the source
    letters = [c for c in own if c.isalpha()]
    if len(letters) < 3:
        return None
    foreign = Counter(script for script in map(script_of, letters) if script not in expected)
    if sum(foreign.values()) * 2 <= len(letters):
        return None
    return f"script: mostly {foreign.most_common(1)[0][0].title()}, expected {'/'.join(sorted(s.title() for s in expected))}"


RULES: dict[str, Callable[[Pair], str | None]] = {
    "placeholders": check_placeholders,
    "numbers": check_numbers,
    "length": check_length,
    "untranslated": check_copy,
    "script": check_script,
}


def run_rules(pair: Pair) -> list[str]:
    """The reasons the pair fails, one per failing check; empty when it passes them all."""
    return [reason for check in RULES.values() if (reason := check(pair)) is not None]
