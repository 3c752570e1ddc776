"""Flag translations that do not say what their source says: low cosine similarity, or a failed rule.

The threshold is model-specific (cosine scales differ between models), so ``evaluate`` stores the one
it chose on dev next to the model, in ``detection_threshold.json``, and ``check`` reads it from there.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sentence_transformers import SentenceTransformer
from sentence_transformers.util import load_file_path

from st_generalized_pooling.detection.catalogs import CatalogSet, Pair, read_catalogs
from st_generalized_pooling.detection.rules import run_rules
from st_generalized_pooling.detection.scoring import score_pairs
from st_generalized_pooling.errors import GeneralizedPoolingError

THRESHOLD_FILE = "detection_threshold.json"


@dataclass(frozen=True)
class ScoredPair:
    """A pair with its cosine similarity and, when flagged, why."""

    pair: Pair
    score: float
    reasons: tuple[str, ...] = ()

    @property
    def flagged(self) -> bool:
        return bool(self.reasons)


@dataclass
class CheckResult:
    """Everything a run of ``check`` read, skipped, scored and flagged."""

    scored: list[ScoredPair]
    catalogs: CatalogSet
    threshold: float | None
    top: int | None

    @property
    def flagged(self) -> list[ScoredPair]:
        """The flagged pairs, least similar first."""
        return sorted((s for s in self.scored if s.flagged), key=lambda s: s.score)


def save_threshold(model_path: str | os.PathLike, threshold: float, **details: Any) -> Path:
    """Store the threshold chosen for a model in its folder (with how it was chosen, for the record)."""
    path = Path(model_path) / THRESHOLD_FILE
    path.write_text(json.dumps({"threshold": threshold, **details}, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def load_threshold(model_name_or_path: str) -> float | None:
    """The threshold ``evaluate`` stored for this model, or None when it has none."""
    try:
        path = load_file_path(model_name_or_path, THRESHOLD_FILE, local_files_only=not os.path.isdir(model_name_or_path))
    except Exception:  # noqa: BLE001 - any failure to find the file means "no stored threshold"
        path = None
    if path is None:
        return None
    try:
        return float(json.loads(Path(path).read_text(encoding="utf-8"))["threshold"])
    except (ValueError, KeyError, TypeError) as error:
        raise GeneralizedPoolingError(f"{path}: unreadable threshold file ({error})") from None


def check(
    paths: Sequence[str | os.PathLike],
    model: SentenceTransformer,
    threshold: float | None = None,
    top: int | None = None,
    rules: bool = True,
    language: str | None = None,
    batch_size: int = 64,
    show_progress_bar: bool = True,
) -> CheckResult:
    """Read the catalogs under ``paths``, score every pair, and flag those below ``threshold`` (or the
    ``top`` least similar) and, with ``rules``, those failing a rule check."""
    if (threshold is None) == (top is None):
        raise GeneralizedPoolingError("give exactly one of a threshold and a number of pairs to flag (top)")
    if top is not None and top < 0:
        raise GeneralizedPoolingError(f"top must be >= 0, not {top}")
    catalogs = read_catalogs(paths, language=language)
    pairs = catalogs.pairs
    scores = score_pairs(model, pairs, batch_size=batch_size, show_progress_bar=show_progress_bar) if pairs else np.zeros(0)
    if top is not None:
        low = set(np.argsort(scores, kind="stable")[:top].tolist())
        by_score = [i in low for i in range(len(pairs))]
    else:
        by_score = [score < threshold for score in scores]
    scored = []
    for pair, score, low_score in zip(pairs, scores, by_score):
        reasons = (f"similarity {score:.3f}",) if low_score else ()
        if rules:
            reasons += tuple(run_rules(pair))
        scored.append(ScoredPair(pair, float(score), reasons))
    return CheckResult(scored, catalogs, threshold, top)



FORMATS = ("table", "json", "csv")
TABLE_WIDTH = 60
COLUMNS = ["score", "file", "line", "msgctxt", "plural_index", "language", "fuzzy", "reasons", "source", "translation"]


def _clip(text: str, width: int) -> str:
    text = text.replace("\n", "\\n").replace("\t", " ")
    return text if len(text) <= width else text[: width - 1] + "…"


def _row(scored: ScoredPair) -> dict[str, Any]:
    row = {name: getattr(scored.pair, name, None) for name in COLUMNS}
    return {**row, "score": round(scored.score, 4), "reasons": list(scored.reasons)}


def render(result: CheckResult, form: str = "table") -> str:
    """The flagged pairs, least similar first, as an aligned table, JSON (a list of objects) or CSV."""
    rows = [_row(s) for s in result.flagged]
    if form == "json":
        return json.dumps(rows, ensure_ascii=False, indent=2)
    if form == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "reasons": "; ".join(row["reasons"])})
        return buffer.getvalue().rstrip("\n")
    if form != "table":
        raise GeneralizedPoolingError(f"unknown format {form!r}; use one of {', '.join(FORMATS)}")
    lines = []
    for scored in result.flagged:
        pair = scored.pair
        where = pair.location + (f" [{pair.msgctxt}]" if pair.msgctxt else "") + (
            f" msgstr[{pair.plural_index}]" if pair.plural_index is not None else "")
        lines.append(f"{scored.score:6.3f}  {where}  ({pair.language or '?'}{', fuzzy' if pair.fuzzy else ''})")
        lines.append(f"        why:  {'; '.join(scored.reasons)}")
        lines.append(f"        src:  {_clip(pair.source, TABLE_WIDTH)}")
        lines.append(f"        tra:  {_clip(pair.translation, TABLE_WIDTH)}")
    return "\n".join(lines)


def summary(result: CheckResult) -> str:
    """One line: files and entries read, pairs scored, skipped by reason, flagged and by what."""
    catalogs = result.catalogs
    skipped = ", ".join(f"{count} {reason}" for reason, count in sorted(catalogs.skipped.items())) or "none"
    flagged = result.flagged
    by_score = sum(any(r.startswith("similarity") for r in s.reasons) for s in flagged)
    rule = f"threshold {result.threshold:.4f}" if result.threshold is not None else f"the {result.top} least similar"
    return (
        f"{count(len(catalogs.catalogs), 'file')}, {count(catalogs.entries, 'entry', 'entries')} read, "
        f"{count(len(result.scored), 'pair')} scored; skipped: {skipped}; "
        f"{count(len(catalogs.errors), 'unreadable file')}; "
        f"flagged {len(flagged)} ({by_score} by similarity, {rule}; {len(flagged) - by_score} by rules only)"
    )


def count(number: int, singular: str, plural: str | None = None) -> str:
    """``1 file``, ``2 files``."""
    return f"{number} {singular if number == 1 else plural or singular + 's'}"
