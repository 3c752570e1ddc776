"""How well do the rules and the models detect wrong translations on real catalogs? And does a trained
generalized pooling head beat the mean pooling it starts from?

One labelled set, split by source string (no msgid in two splits): positives are the real translations,
negatives are made from them by kind (see ``corruptions``). Compared, with thresholds chosen on dev:
(a) the rules; (b) the base model, mean pooling; (c) the converted model at step 0 (checked equal to b);
(d) c with only its generalized pooling head trained on the train split (frozen encoder); (e) the same
training budget spent on mean pooling followed by a trainable identity-initialised Dense; (f) rules OR
the best model on dev. Metrics on test, overall, per kind and per language, with cluster-bootstrap
intervals (a source string and all its pairs are drawn together).
"""

from __future__ import annotations

import copy
import datetime
import fnmatch
import hashlib
import json
import os
import platform
import random
import shutil
import statistics
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sentence_transformers import SentenceTransformer

from st_generalized_pooling.convert import convert, find_mean_pooling
from st_generalized_pooling.detection.catalogs import Pair, read_catalogs
from st_generalized_pooling.detection.config import EvaluationConfig
from st_generalized_pooling.detection.check import save_threshold
from st_generalized_pooling.detection.corruptions import Negative, entry_key, make_negatives
from st_generalized_pooling.detection.metrics import (
    Confusion,
    average_precision,
    best_threshold,
    bootstrap_weights,
    interval,
    roc_auc,
)
from st_generalized_pooling.detection.rules import run_rules
from st_generalized_pooling.detection.scoring import embed, prompt_of, score_pairs, score_with
from st_generalized_pooling.errors import GeneralizedPoolingError
from st_generalized_pooling.loading import save_model

SPLITS = ("train", "dev", "test")
MODEL_NAMES = {
    "rules": "(a) rules",
    "mean": "(b) mean pooling",
    "converted": "(c) generalized, step 0",
    "generalized": "(d) generalized, trained",
    "mean_dense": "(e) mean + Dense, trained",
    "combined": "(f) rules OR best model",
}
TRAINED = ("generalized", "mean_dense")
TOP_LANGUAGES = 10


@dataclass
class LabelledSet:
    """Pairs with labels (1 = wrong), the kind of each negative ("" for positives), and the split."""

    pairs: list[Pair]
    labels: np.ndarray
    kinds: list[str]
    splits: np.ndarray

    def subset(self, split: str) -> LabelledSet:
        chosen = np.flatnonzero(self.splits == split)
        return LabelledSet([self.pairs[i] for i in chosen], self.labels[chosen], [self.kinds[i] for i in chosen],
                           self.splits[chosen])


def split_of(source: str, fractions: Sequence[float], seed: int) -> str:
    """The split of a source string: a hash of it, so that all its pairs (every language) go together."""
    value = int.from_bytes(hashlib.sha256(f"{seed}\0{source}".encode()).digest()[:8], "big") / 2**64
    bounds = np.cumsum(fractions) / sum(fractions)
    return SPLITS[min(int(np.searchsorted(bounds, value, side="right")), len(SPLITS) - 1)]


def sample_positives(pairs: Sequence[Pair], config: EvaluationConfig) -> list[Pair]:
    """Distinct real translations of the chosen languages: catalogs in random order, at most
    ``max_pairs_per_catalog`` from each, until ``max_pairs``. Fuzzy pairs are left out (they may be wrong)."""
    rng = random.Random(config.seed)
    wanted = set(config.languages) if config.languages else None
    seen: set[tuple] = set()
    by_catalog: dict[tuple[str, str | None], list[Pair]] = {}
    for pair in pairs:
        if pair.fuzzy or (wanted is not None and pair.language not in wanted):
            continue
        if any(fnmatch.fnmatch(pair.domain, pattern) for pattern in config.exclude_domains):
            continue
        key = (pair.language, pair.msgctxt, pair.source, pair.translation)
        if key in seen:  # the same pair in two catalogs (e.g. iso_3166 and iso_3166-1)
            continue
        seen.add(key)
        by_catalog.setdefault((pair.domain, pair.language), []).append(pair)
    catalogs = sorted(by_catalog)
    rng.shuffle(catalogs)
    chosen: list[Pair] = []
    for key in catalogs:
        members = by_catalog[key]
        chosen.extend(rng.sample(members, min(len(members), config.max_pairs_per_catalog)))
        if len(chosen) >= config.max_pairs:
            break
    return chosen[: config.max_pairs]


def build_labelled_set(
    positives: Sequence[Pair],
    all_pairs: Sequence[Pair],
    base: SentenceTransformer,
    config: EvaluationConfig,
    show_progress_bar: bool = True,
) -> LabelledSet:
    """Split the positives by source string and add each split's negatives (made within the split)."""
    other_languages: dict[tuple, list[Pair]] = {}
    for pair in all_pairs:
        if not pair.fuzzy:
            other_languages.setdefault(entry_key(pair), []).append(pair)
    sources = sorted({pair.source for pair in positives})
    embeddings = {}
    if "similar" in config.kinds and sources:
        (vectors,) = embed([base], sources, config.batch_size, show_progress_bar)
        embeddings = dict(zip(sources, vectors))
    pairs: list[Pair] = []
    labels: list[int] = []
    kinds: list[str] = []
    splits: list[str] = []
    for number, split in enumerate(SPLITS):
        members = [p for p in positives if split_of(p.source, config.split_fractions, config.seed) == split]
        negatives: list[Negative] = make_negatives(
            members, config.kinds, config.negatives_per_kind, config.seed + number, embeddings, other_languages
        )
        pairs += members + [n.pair for n in negatives]
        labels += [0] * len(members) + [1] * len(negatives)
        kinds += [""] * len(members) + [n.kind for n in negatives]
        splits += [split] * (len(members) + len(negatives))
    return LabelledSet(pairs, np.array(labels), kinds, np.array(splits))


def with_prompt(model: SentenceTransformer, texts: Sequence[str]) -> list[str]:
    prompt = prompt_of(model) or ""
    return [prompt + text for text in texts]


def mean_dense_model(base: SentenceTransformer) -> SentenceTransformer:
    """Baseline (e): the base model with a Dense(d -> d), identity-initialised, right after its mean pooling,
    so that it starts with the base model's embeddings and can learn as much as a small head."""
    from sentence_transformers.base.modules import Dense

    name = find_mean_pooling(base)
    model = copy.deepcopy(base)
    dimension = model._modules[name].get_embedding_dimension()
    dense = Dense(dimension, dimension, activation_function=torch.nn.Identity(),
                  init_weight=torch.eye(dimension), init_bias=torch.zeros(dimension))
    dense.to(next(base.parameters()).device)
    modules = list(model._modules.items())
    position = [key for key, _ in modules].index(name) + 1
    rebuilt = modules[:position] + [("dense_head", dense)] + modules[position:]
    model._modules.clear()
    for key, module in rebuilt:
        model._modules[key] = module
    model._model_card_text = None
    return model


def train_head(model: SentenceTransformer, train: LabelledSet, dev: LabelledSet, config: EvaluationConfig,
               cache_dir: Path, show_progress_bar: bool) -> dict[str, Any]:
    """Train the modules after the frozen encoder with CoSENT on (source, translation, 1 - label); the token
    embeddings cached in ``cache_dir`` serve every model with the same encoder."""
    from datasets import Dataset
    from sentence_transformers.sentence_transformer.losses import CoSENTLoss

    from st_generalized_pooling.training import train_pooling_head

    def dataset(part: LabelledSet) -> Dataset:
        return Dataset.from_dict({
            "sentence1": with_prompt(model, [p.source for p in part.pairs]),
            "sentence2": with_prompt(model, [p.translation for p in part.pairs]),
            "score": (1.0 - part.labels).astype(float).tolist(),
        })

    return train_pooling_head(
        model, dataset(train), CoSENTLoss(model), epochs=config.epochs, batch_size=config.train_batch_size,
        learning_rate=config.learning_rate, modules="after_encoder", seed=config.seed,
        cache_dir=cache_dir, show_progress_bar=show_progress_bar, eval_dataset=dataset(dev),
        encode_batch_size=config.batch_size,
    )


def pairs_per_second(models: dict[str, SentenceTransformer], pairs: Sequence[Pair], batch_size: int,
                     rounds: int = 3) -> dict[str, float]:
    """Scoring speed of each model alone (encode both sides of each pair), median of interleaved rounds."""
    timings: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(rounds):
        for name, model in models.items():
            start = time.perf_counter()
            score_pairs(model, pairs, batch_size=batch_size, show_progress_bar=False)
            timings[name].append(len(pairs) / (time.perf_counter() - start))
    return {name: statistics.median(values) for name, values in timings.items()}


def _metrics_row(labels: np.ndarray, suspicion: np.ndarray, flagged: np.ndarray, groups: np.ndarray,
                 samples: int, seed: int) -> dict[str, Any]:
    confusion = Confusion.of(labels, flagged)
    ap = average_precision(labels, suspicion)
    low, high = interval(average_precision(labels, suspicion, bootstrap_weights(groups, samples, seed))) \
        if samples and labels.sum() else (float("nan"), float("nan"))
    return {
        "pairs": int(len(labels)), "wrong": int(labels.sum()), "roc_auc": roc_auc(labels, suspicion),
        "ap": ap, "ap_low": low, "ap_high": high, "f1": confusion.f1, "mcc": confusion.mcc,
        "precision": confusion.precision, "recall": confusion.recall,
    }


def slices(part: LabelledSet, kinds: Sequence[str], top_languages: int = TOP_LANGUAGES) -> dict[str, np.ndarray]:
    """Row masks of the report: all pairs; per kind (all positives + that kind's negatives); per language
    (the largest ones by positives, then the rest pooled)."""
    kinds_array = np.array(part.kinds, dtype=object)
    positive = part.labels == 0
    result = {"all": np.ones(len(part.pairs), dtype=bool)}
    for kind in kinds:
        if (kinds_array == kind).any():
            result[f"kind:{kind}"] = positive | (kinds_array == kind)
    languages = np.array([p.language or "?" for p in part.pairs], dtype=object)
    largest = [lang for lang, _ in Counter(languages[positive]).most_common(top_languages)]
    for language in largest:
        result[f"lang:{language}"] = languages == language
    rest = ~np.isin(languages, largest)
    if rest.any():
        result["lang:other"] = rest
    return result


def evaluate_scores(test: LabelledSet, suspicion: dict[str, np.ndarray], flagged: dict[str, np.ndarray],
                    config: EvaluationConfig, compare: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """Metrics per slice and method, and paired-bootstrap intervals of AP differences for ``compare``."""
    groups = np.array([p.source for p in test.pairs], dtype=object)
    table: dict[str, dict[str, Any]] = {}
    differences: dict[str, dict[str, Any]] = {}
    for name, mask in slices(test, config.kinds).items():
        labels, group = test.labels[mask], groups[mask]
        table[name] = {method: _metrics_row(labels, suspicion[method][mask], flagged[method][mask], group,
                                            config.bootstrap_samples, config.seed) for method in suspicion}
        if not labels.sum() or not config.bootstrap_samples:
            continue
        weights = bootstrap_weights(group, config.bootstrap_samples, config.seed)
        differences[name] = {}
        for better, worse in compare:
            if better in suspicion and worse in suspicion:
                delta = (average_precision(labels, suspicion[better][mask], weights)
                         - average_precision(labels, suspicion[worse][mask], weights))
                low, high = interval(delta)
                point = table[name][better]["ap"] - table[name][worse]["ap"]
                differences[name][f"{better}-{worse}"] = {"delta_ap": point, "low": low, "high": high}
    return {"table": table, "differences": differences}


def fuzzy_report(paths: Sequence[str], models: dict[str, SentenceTransformer], thresholds: dict[str, float],
                 config: EvaluationConfig, show_progress_bar: bool) -> dict[str, Any]:
    """How real fuzzy entries (stale translations of changed sources) score against the same files'
    up-to-date entries: AUC of "fuzzy" vs "not fuzzy", share flagged at each model's dev threshold."""
    catalogs = read_catalogs(paths)
    rng = random.Random(config.seed)
    fuzzy = [p for p in catalogs.pairs if p.fuzzy]
    clean = [p for p in catalogs.pairs if not p.fuzzy]
    fuzzy = rng.sample(fuzzy, min(len(fuzzy), config.max_fuzzy_pairs))
    clean = rng.sample(clean, min(len(clean), config.max_fuzzy_pairs))
    pairs = fuzzy + clean
    labels = np.array([1] * len(fuzzy) + [0] * len(clean))
    names = list(models)
    scores = dict(zip(names, score_with([models[n] for n in names], pairs, config.batch_size, show_progress_bar)))
    rules = np.array([bool(run_rules(p)) for p in pairs])
    rows = {}
    for name, score in scores.items():
        flagged = score < thresholds[name]
        rows[name] = {"roc_auc": roc_auc(labels, -score), "ap": average_precision(labels, -score),
                      "median_fuzzy": float(np.median(score[labels == 1])) if len(fuzzy) else float("nan"),
                      "median_clean": float(np.median(score[labels == 0])) if len(clean) else float("nan"),
                      "flagged_fuzzy": float(flagged[labels == 1].mean()) if len(fuzzy) else float("nan"),
                      "flagged_clean": float(flagged[labels == 0].mean()) if len(clean) else float("nan")}
    rows["rules"] = {"roc_auc": roc_auc(labels, rules.astype(float)), "ap": average_precision(labels, rules.astype(float)),
                     "flagged_fuzzy": float(rules[labels == 1].mean()) if len(fuzzy) else float("nan"),
                     "flagged_clean": float(rules[labels == 0].mean()) if len(clean) else float("nan")}
    languages = Counter(p.language for p in fuzzy)
    return {"files": len(catalogs.catalogs), "unreadable": catalogs.errors, "fuzzy_pairs": len(fuzzy),
            "clean_pairs": len(clean), "fuzzy_available": sum(p.fuzzy for p in catalogs.pairs),
            "languages": len(languages), "rows": rows}


def evaluate(
    model_path: str,
    config: EvaluationConfig,
    output_dir: str | os.PathLike,
    show_progress_bar: bool = True,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run the whole comparison for a mean-pooling model folder; write results.json and results.md to
    ``output_dir`` (with the trained models d and e, each with its dev threshold) and the base model's
    dev threshold into ``model_path`` when it is a writable folder. Returns the results."""
    started = time.time()
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(config.seed)
    catalogs = read_catalogs(config.catalogs)
    all_pairs = catalogs.pairs
    if not all_pairs:
        raise GeneralizedPoolingError(f"no translated pairs under {', '.join(config.catalogs)}")
    log(f"read {len(catalogs.catalogs)} catalogs, {len(all_pairs)} pairs, {len(catalogs.errors)} unreadable")
    positives = sample_positives(all_pairs, config)
    base = SentenceTransformer(model_path)
    data = build_labelled_set(positives, all_pairs, base, config, show_progress_bar)
    train, dev, test = (data.subset(split) for split in SPLITS)
    log("labelled set: " + ", ".join(f"{s} {len(p.pairs)} pairs ({int(p.labels.sum())} wrong)"
                                     for s, p in zip(SPLITS, (train, dev, test))))

    models: dict[str, SentenceTransformer] = {"mean": base}
    models["converted"] = convert(base, num_heads=config.num_heads, seed=config.seed)
    training: dict[str, Any] = {}
    if config.train:
        for name, model in (("generalized", convert(base, num_heads=config.num_heads, seed=config.seed)),
                            ("mean_dense", mean_dense_model(base))):
            log(f"training {MODEL_NAMES[name]} on {len(train.pairs)} pairs")
            begun = time.perf_counter()
            record = train_head(model, train, dev, config, output_dir / "token-embeddings", show_progress_bar)
            training[name] = {"seconds": time.perf_counter() - begun,
                              "trained_parameters": sum(p.numel() for m in list(model.children())[1:]
                                                        for p in m.parameters()),
                              "record": _jsonable(record)}
            models[name] = model
        shutil.rmtree(output_dir / "token-embeddings", ignore_errors=True)

    names = list(models)
    evaluated = LabelledSet(dev.pairs + test.pairs, np.r_[dev.labels, test.labels], dev.kinds + test.kinds,
                            np.r_[dev.splits, test.splits])
    log(f"scoring {len(evaluated.pairs)} dev+test pairs with {len(names)} models in one encoder pass")
    all_scores = dict(zip(names, score_with([models[n] for n in names], evaluated.pairs, config.batch_size,
                                            show_progress_bar)))
    on_dev = evaluated.splits == "dev"
    on_test = ~on_dev
    equivalence = float(np.abs(all_scores["converted"] - all_scores["mean"]).max())
    rules_flag = np.array([bool(run_rules(p)) for p in evaluated.pairs])

    thresholds = {name: -best_threshold(dev.labels, -all_scores[name][on_dev]) for name in names}
    dev_ap = {name: average_precision(dev.labels, -all_scores[name][on_dev]) for name in names}
    best = max(names, key=lambda n: dev_ap[n])
    suspicion = {"rules": rules_flag[on_test].astype(float)}
    flagged = {"rules": rules_flag[on_test]}
    for name in names:
        suspicion[name] = -all_scores[name][on_test]
        flagged[name] = all_scores[name][on_test] < thresholds[name]
    # (f): a pair a rule flags comes first, then the best model's order.
    suspicion["combined"] = np.where(rules_flag[on_test], 10.0, 0.0) + suspicion[best]
    flagged["combined"] = flagged["rules"] | flagged[best]
    compare = [("generalized", "mean"), ("generalized", "mean_dense"), ("mean_dense", "mean")]
    report = evaluate_scores(test, suspicion, flagged, config, compare)

    speed_sample = test.pairs[: config.speed_pairs]
    speed = pairs_per_second(models, speed_sample, config.batch_size) if speed_sample else {}

    # A threshold that flags every dev pair carries no information: it is not stored, so that check asks
    # for --threshold or --top instead of flagging everything.
    useful = {name: bool((all_scores[name][on_dev] >= thresholds[name]).any()) for name in names}
    saved: dict[str, str | None] = {}
    details = {"criterion": "max F1 on dev (flag when cosine < threshold)", "dev_pairs": len(dev.pairs),
               "date": datetime.date.today().isoformat(), "catalogs": config.catalogs}
    if os.path.isdir(model_path) and os.access(model_path, os.W_OK):
        saved["mean"] = str(save_threshold(model_path, thresholds["mean"], **details)) if useful["mean"] else None
    for name in TRAINED:
        if name in models:
            folder = save_model(models[name], output_dir / name, overwrite=True)
            saved[name] = str(save_threshold(folder, thresholds[name], **details)) if useful[name] else None

    fuzzy = fuzzy_report(config.fuzzy, models, thresholds, config, show_progress_bar) if config.fuzzy else None
    languages = Counter(p.language for p in positives)
    results = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}",
        "model": model_path, "prompt": prompt_of(base), "config": _jsonable(asdict(config)),
        "catalogs_read": len(catalogs.catalogs), "pairs_read": len(all_pairs), "unreadable": catalogs.errors,
        "positives": len(positives), "languages": len(languages), "domains": len({p.domain for p in positives}),
        "split_sizes": {s: {"pairs": len(p.pairs), "wrong": int(p.labels.sum()),
                            "by_kind": dict(Counter(k for k in p.kinds if k))}
                        for s, p in zip(SPLITS, (train, dev, test))},
        "step0_max_abs_score_diff": equivalence, "thresholds": thresholds, "dev_ap": dev_ap,
        "best_model_on_dev": best, "training": training, "pairs_per_second": speed, "saved_thresholds": saved,
        **report, "fuzzy": fuzzy, "seconds": time.time() - started,
    }
    (output_dir / "results.json").write_text(json.dumps(_jsonable(results), indent=2, ensure_ascii=False) + "\n",
                                             encoding="utf-8")
    (output_dir / "results.md").write_text(render_markdown(results), encoding="utf-8")
    return results


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return None if np.isnan(value) else float(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    return str(value)


def _f(value: float | None, digits: int = 3) -> str:
    return "–" if value is None or (isinstance(value, float) and np.isnan(value)) else f"{value:.{digits}f}"


def render_markdown(results: dict[str, Any]) -> str:
    """The results as Markdown tables: test metrics per slice and method, AP differences, speed, fuzzy."""
    config = results["config"]
    lines = [
        f"Model `{results['model']}` (prompt {results['prompt']!r}); {results['date']}; {results['machine']}.",
        f"Catalogs {', '.join(config['catalogs'])}: {results['catalogs_read']} files, {results['pairs_read']} pairs read; "
        f"sampled {results['positives']} real translations in {results['languages']} languages and "
        f"{results['domains']} text domains (at most {config['max_pairs_per_catalog']} per catalog"
        + (f", domains {', '.join(config['exclude_domains'])} excluded" if config["exclude_domains"] else "") + ").",
        "Splits by source string: " + "; ".join(
            f"{s} {v['pairs']} pairs ({v['wrong']} wrong)" for s, v in results["split_sizes"].items()) + ".",
        f"Step 0 check: max |cosine(c) - cosine(b)| = {results['step0_max_abs_score_diff']:.2e}.",
        f"Best model on dev (AP): {MODEL_NAMES[results['best_model_on_dev']]}.",
        "",
        "| test slice | pairs (wrong) | method | ROC-AUC | AP [95% CI] | F1 | MCC |",
        "|---|---|---|---|---|---|---|",
    ]
    for slice_name, methods in results["table"].items():
        for method, row in methods.items():
            lines.append(
                f"| {slice_name} | {row['pairs']} ({row['wrong']}) | {MODEL_NAMES[method]} | {_f(row['roc_auc'])} | "
                f"{_f(row['ap'])} [{_f(row['ap_low'])}, {_f(row['ap_high'])}] | {_f(row['f1'])} | {_f(row['mcc'])} |")
    lines += ["", "AP difference on test, paired cluster bootstrap 95% interval (beyond = interval excludes 0):", "",
              "| test slice | comparison | ΔAP | 95% CI | beyond the interval |", "|---|---|---|---|---|"]
    for slice_name, comparisons in results["differences"].items():
        for comparison, d in comparisons.items():
            better, worse = comparison.split("-")
            verdict = "better" if d["low"] is not None and d["low"] > 0 else (
                "worse" if d["high"] is not None and d["high"] < 0 else "no")
            lines.append(f"| {slice_name} | {MODEL_NAMES[better]} vs {MODEL_NAMES[worse]} | {_f(d['delta_ap'])} | "
                         f"[{_f(d['low'])}, {_f(d['high'])}] | {verdict} |")
    lines += ["", "| method | dev threshold (cosine) | pairs/s scored (median of 3 interleaved rounds) |",
              "|---|---|---|"]
    for name, threshold in results["thresholds"].items():
        lines.append(f"| {MODEL_NAMES[name]} | {threshold:.4f} | {_f(results['pairs_per_second'].get(name), 1)} |")
    for name, info in results["training"].items():
        lines.append(f"\n{MODEL_NAMES[name]}: {info['trained_parameters']:,} trained parameters, "
                     f"{info['seconds']:.0f} s of training.")
    fuzzy = results.get("fuzzy")
    if fuzzy:
        lines += ["", f"Real fuzzy entries: {fuzzy['fuzzy_pairs']} fuzzy pairs (of {fuzzy['fuzzy_available']}) vs "
                      f"{fuzzy['clean_pairs']} up-to-date pairs of the same {fuzzy['files']} files, "
                      f"{fuzzy['languages']} languages.", "",
                  "| method | ROC-AUC fuzzy vs not | AP | median cosine fuzzy / not | flagged fuzzy / not |",
                  "|---|---|---|---|---|"]
        for name, row in fuzzy["rows"].items():
            lines.append(f"| {MODEL_NAMES[name]} | {_f(row['roc_auc'])} | {_f(row['ap'])} | "
                         f"{_f(row.get('median_fuzzy'))} / {_f(row.get('median_clean'))} | "
                         f"{_f(row['flagged_fuzzy'])} / {_f(row['flagged_clean'])} |")
    lines.append(f"\nTotal time {results['seconds'] / 60:.1f} min.")
    return "\n".join(lines) + "\n"
