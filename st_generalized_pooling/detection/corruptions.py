"""Wrong translations made from right ones, one kind per realistic error, for evaluating detectors.

Local kinds edit the translation itself (a number changed, a placeholder dropped or swapped, a negation
removed, the second half of the string dropped, the source copied). Catalog kinds put another string in
its place (the translation of the most similar other source string of the same catalog, a random one, or
the same source's translation in another language). A kind that does not apply to a pair gives None.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from st_generalized_pooling.detection.catalogs import Pair
from st_generalized_pooling.detection.rules import BRACE, PRINTF, base_language

LOCAL_KINDS = ("number", "placeholder", "negation", "truncation", "copy")
CATALOG_KINDS = ("similar", "random", "wrong_language")
KINDS = LOCAL_KINDS + CATALOG_KINDS

# Negation words whose removal leaves a grammatical sentence that says the opposite, per language.
# Adding a negation needs the verb's position, which no simple pattern gives, so only removal is made.
_NOT = r"(?i)\b{}\s+"
NEGATIONS: dict[str, list[tuple[str, str]]] = {
    "en": [(r"\bcannot\b", "can"), (r"\bcan't\b", "can"), (r"\bwon't\b", "will"), (r"(?i)\b(\w+)n't\b", r"\1"),
           (_NOT.format("not"), "")],
    "de": [(_NOT.format("nicht"), ""), (r"\b([Kk])(ein(?:e|en|em|er|es)?)\b", r"\2")],
    "nl": [(_NOT.format("niet"), ""), (r"\bgeen\b", "een")],
    "sv": [(_NOT.format("inte"), ""), (_NOT.format("ej"), "")],
    "da": [(_NOT.format("ikke"), "")],
    "nb": [(_NOT.format("ikke"), "")],
    "nn": [(_NOT.format("ikkje"), ""), (_NOT.format("ikke"), "")],
    "es": [(_NOT.format("no"), "")],
    "gl": [(_NOT.format("non"), "")],
    "ca": [(_NOT.format("no"), "")],
    "it": [(_NOT.format("non"), "")],
    "pt": [(_NOT.format("não"), "")],
    "fr": [(r"(?i)\bne\s+(\S+)\s+(?:pas|plus|jamais)\b", r"\1"), (r"(?i)\bn['’](\S+)\s+(?:pas|plus|jamais)\b", r"\1")],
    "ro": [(_NOT.format("nu"), "")],
    "ru": [(_NOT.format("не"), "")],
    "uk": [(_NOT.format("не"), "")],
    "be": [(_NOT.format("не"), "")],
    "bg": [(_NOT.format("не"), "")],
    "mk": [(_NOT.format("не"), "")],
    "sr": [(_NOT.format("не"), ""), (_NOT.format("ne"), "")],
    "hr": [(_NOT.format("ne"), "")],
    "bs": [(_NOT.format("ne"), "")],
    "sl": [(_NOT.format("ne"), "")],
    "pl": [(_NOT.format("nie"), "")],
    "hu": [(_NOT.format("nem"), "")],
    "id": [(_NOT.format("tidak"), "")],
    "ms": [(_NOT.format("tidak"), "")],
    "vi": [(_NOT.format("không"), "")],
    "zh": [(r"不(?=[能可会是])", ""), (r"未(?=[找能])", "")],
}


@dataclass(frozen=True)
class Negative:
    """A wrong translation: ``pair`` is ``original`` with its translation replaced, made by ``kind``."""

    pair: Pair
    original: Pair
    kind: str


def _placeholder_spans(text: str) -> list[tuple[int, int]]:
    spans = [m.span() for m in PRINTF.finditer(text) if not text[max(m.start() - 1, 0):m.start()] == "%"]
    return spans + [m.span() for m in BRACE.finditer(text)]


def _outside(span: tuple[int, int], spans: list[tuple[int, int]]) -> bool:
    return all(span[1] <= start or span[0] >= end for start, end in spans)


def change_number(text: str, rng: random.Random) -> str | None:
    """One ASCII number outside placeholders replaced by a different one of similar size."""
    spans = _placeholder_spans(text)
    found = [m for m in re.finditer(r"(?<![\w.,])\d+(?![\w])", text) if _outside(m.span(), spans)]
    if not found:
        return None
    match = rng.choice(found)
    value = int(match.group())
    new = value + rng.choice([-1, 1]) * rng.randint(1, max(1, value // 2 + 1))
    if new < 0 or new == value:
        new = value + rng.randint(1, 9)
    return text[: match.start()] + str(new) + text[match.end():]


def corrupt_placeholder(text: str, rng: random.Random) -> str | None:
    """Two different placeholders swapped, or (when none can be swapped, or by chance) one dropped."""
    matches = [m for m in list(PRINTF.finditer(text)) + list(BRACE.finditer(text))
               if text[max(m.start() - 1, 0):m.start()] != "%"]
    if not matches:
        return None
    matches.sort(key=lambda m: m.start())
    swappable = [(a, b) for i, a in enumerate(matches) for b in matches[i + 1:] if a.group() != b.group()]
    if swappable and rng.random() < 0.5:
        first, second = rng.choice(swappable)
        return (text[: first.start()] + second.group() + text[first.end(): second.start()] + first.group()
                + text[second.end():])
    match = rng.choice(matches)
    before, after = text[: match.start()], text[match.end():]
    if before.endswith(" ") and (after.startswith(" ") or not after):
        before = before[:-1]
    result = before + after
    return result if result.strip() else None


def remove_negation(text: str, language: str | None, rng: random.Random) -> str | None:
    """One negation of the language removed, so that the string says the opposite; None if it has none."""
    patterns = NEGATIONS.get(base_language(language), [])
    candidates = [(pattern, repl, m) for pattern, repl in patterns for m in re.finditer(pattern, text)]
    if not candidates:
        return None
    pattern, repl, match = rng.choice(candidates)
    result = text[: match.start()] + match.expand(repl) + text[match.end():]
    if match.start() == 0 and text[:1].isupper() and result:
        result = result[:1].upper() + result[1:]
    return result if result.strip() and result != text else None


CLAUSE_BOUNDARY = re.compile(r"(?<=[.;:!?])\s+|(?<=,)\s+|(?<=[。；：！？，、])|\n+| - ")


def truncate(text: str) -> str | None:
    """The first half of a multi-clause string: cut at the clause boundary nearest the middle, each side
    keeping at least a fifth of the text."""
    body = text.rstrip()
    cuts = [m for m in CLAUSE_BOUNDARY.finditer(body) if len(body) / 5 <= m.start() <= len(body) * 4 / 5]
    if not cuts:
        return None
    cut = min(cuts, key=lambda m: abs(m.start() - len(body) / 2))
    head = body[: cut.start()].rstrip(",;:、， ")
    return head if head and len(head) < len(body) else None


def copy_source(pair: Pair) -> str | None:
    """The untranslated source, where that is wrong (not in English variants, not already equal)."""
    if base_language(pair.language) == "en" or pair.source.strip() == pair.translation.strip():
        return None
    return pair.source


def local_corruption(kind: str, pair: Pair, rng: random.Random) -> str | None:
    """The corrupted translation of one local kind, or None when the kind does not apply to the pair."""
    makers: dict[str, Callable[[], str | None]] = {
        "number": lambda: change_number(pair.translation, rng),
        "placeholder": lambda: corrupt_placeholder(pair.translation, rng),
        "negation": lambda: remove_negation(pair.translation, pair.language, rng),
        "truncation": lambda: truncate(pair.translation),
        "copy": lambda: copy_source(pair),
    }
    result = makers[kind]()
    return result if result is not None and result != pair.translation else None


def catalog_key(pair: Pair) -> tuple[str, str | None]:
    """Pairs of one catalog: same text domain and language."""
    return pair.domain, pair.language


def entry_key(pair: Pair) -> tuple[str, str | None, str, int | None]:
    """One entry across languages: same domain, context, source string and plural index."""
    return pair.domain, pair.msgctxt, pair.source, pair.plural_index


def nearest_sources(pairs: Sequence[Pair], embeddings: dict[str, np.ndarray]) -> list[int | None]:
    """For each pair, the index of the pair of the same catalog whose source is most similar to its
    own (cosine of unit ``embeddings``) among those with another source and another translation."""
    result: list[int | None] = [None] * len(pairs)
    by_catalog: dict[tuple, list[int]] = {}
    for i, pair in enumerate(pairs):
        by_catalog.setdefault(catalog_key(pair), []).append(i)
    for members in by_catalog.values():
        if len(members) < 2:
            continue
        vectors = np.stack([embeddings[pairs[i].source] for i in members])
        similarity = vectors @ vectors.T
        sources = np.array([pairs[i].source for i in members], dtype=object)
        translations = np.array([pairs[i].translation for i in members], dtype=object)
        for row, i in enumerate(members):
            invalid = (sources == pairs[i].source) | (translations == pairs[i].translation)
            candidates = np.where(invalid, -np.inf, similarity[row])
            best = int(np.argmax(candidates))
            if np.isfinite(candidates[best]):
                result[i] = members[best]
    return result


def make_negatives(
    pairs: Sequence[Pair],
    kinds: Sequence[str] = KINDS,
    fraction: float = 0.2,
    seed: int = 0,
    embeddings: dict[str, np.ndarray] | None = None,
    other_languages: dict[tuple, list[Pair]] | None = None,
) -> list[Negative]:
    """Up to ``fraction`` * len(pairs) negatives of each kind, from randomly chosen pairs it applies to.

    ``embeddings`` (source string -> unit vector of the base model) is needed for "similar";
    ``other_languages`` (``entry_key`` -> the entry's pairs in all languages read) for "wrong_language".
    """
    unknown = set(kinds) - set(KINDS)
    if unknown:
        raise ValueError(f"unknown corruption kinds {sorted(unknown)}; known: {', '.join(KINDS)}")
    rng = random.Random(seed)
    budget = int(round(fraction * len(pairs)))
    by_catalog: dict[tuple, list[int]] = {}
    for i, pair in enumerate(pairs):
        by_catalog.setdefault(catalog_key(pair), []).append(i)
    nearest = nearest_sources(pairs, embeddings) if "similar" in kinds and embeddings is not None else None

    def random_other(pair: Pair) -> str | None:
        members = by_catalog[catalog_key(pair)]
        for _ in range(8):
            other = pairs[rng.choice(members)]
            if other.source != pair.source and other.translation != pair.translation:
                return other.translation
        return None

    def wrong_language(pair: Pair) -> str | None:
        own = base_language(pair.language)
        options = [other.translation for other in (other_languages or {}).get(entry_key(pair), [])
                   if base_language(other.language) != own and other.translation != pair.translation]
        return rng.choice(options) if options else None

    negatives: list[Negative] = []
    for kind in kinds:
        if kind == "similar" and nearest is None:
            raise ValueError("the 'similar' kind needs the base model's embeddings of the source strings")
        if kind == "wrong_language" and other_languages is None:
            raise ValueError("the 'wrong_language' kind needs the other languages' pairs")
        order = list(range(len(pairs)))
        rng.shuffle(order)
        made = 0
        for i in order:
            if made >= budget:
                break
            pair = pairs[i]
            if kind in LOCAL_KINDS:
                text = local_corruption(kind, pair, rng)
            elif kind == "similar":
                text = pairs[nearest[i]].translation if nearest[i] is not None else None
            elif kind == "random":
                text = random_other(pair)
            else:
                text = wrong_language(pair)
            if text is None or text == pair.translation:
                continue
            negatives.append(Negative(replace(pair, translation=text), pair, kind))
            made += 1
    return negatives
