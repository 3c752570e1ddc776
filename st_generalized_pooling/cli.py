"""``st-gp``: the command line, a thin layer over the library. Each subcommand parses, calls, prints.

Exit status: 0 on success, 2 on an error the user can fix (one line on stderr, no traceback);
``check`` also exits 1 when it flagged something.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

EXIT_ERROR = 2
DISTILUSE = "sentence-transformers/distiluse-base-multilingual-cased-v2"


def load_any(name_or_path: str, device: str | None = None):
    """A SentenceTransformer from a Hub id or folder, converted or not (trusting this package's module)."""
    from sentence_transformers import SentenceTransformer

    from st_generalized_pooling.loading import load_model, uses_generalized_pooling

    if uses_generalized_pooling(name_or_path):
        return load_model(name_or_path, device=device)
    return SentenceTransformer(name_or_path, device=device)


def add_convert(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "convert",
        help="replace a model's mean pooling with generalized pooling, verify, save",
        description="Convert a mean-pooling SentenceTransformer to multi-head generalized pooling initialised "
        "to give the same embeddings, check that it does on a multilingual sample, and save it.",
    )
    add_conversion_options(parser)
    parser.add_argument("model", help="Hub id or local folder of a mean-pooling SentenceTransformer")
    parser.add_argument("output_dir", help="folder to save the converted model to (must not exist or be empty)")
    parser.add_argument("--overwrite", action="store_true", help="replace output_dir if it is not empty")
    parser.set_defaults(run=run_convert)


def add_conversion_options(parser: argparse.ArgumentParser) -> None:
    """The options every command that converts on the fly shares."""
    parser.add_argument("--num-heads", type=int, default=8, help="number of pooling heads (default 8)")
    parser.add_argument("--hidden-dim", type=int, default=None, help="attention MLP width per head (default 4*d/H)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random W1 initialisation (default 0)")
    parser.add_argument("--device", default=None, help="torch device, e.g. cpu or cuda (default: automatic)")


def run_convert(args: argparse.Namespace) -> int:
    from sentence_transformers import SentenceTransformer

    from st_generalized_pooling.convert import convert, verify_equivalence
    from st_generalized_pooling.loading import save_model

    base = SentenceTransformer(args.model, device=args.device)
    converted = convert(base, num_heads=args.num_heads, hidden_dim=args.hidden_dim, seed=args.seed)
    report = verify_equivalence(base, converted)
    path = save_model(converted, args.output_dir, overwrite=args.overwrite)
    print_report(converted, report)
    print(f"saved to {path}")
    return 0


def print_report(model, report) -> None:
    from st_generalized_pooling.loading import is_generalized_pooling

    pooling = next(m for m in model.modules() if is_generalized_pooling(m))
    print(f"pooling:         {pooling!r}")
    print(f"pooling params:  {sum(p.numel() for p in pooling.parameters()):,}")
    print(f"model params:    {sum(p.numel() for p in model.parameters()):,}")
    print(f"max |diff|:      {report.max_abs_diff:.3g}")
    print(f"min cosine:      {report.min_cosine:.9f}")
    print(f"sentences:       {report.num_sentences}")


def add_verify(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "verify",
        help="compare a converted model's embeddings with its base model's",
        description="Encode the built-in multilingual sample (and --sentences) with both models and report the "
        "largest absolute difference and the smallest cosine similarity.",
    )
    parser.add_argument("converted", help="Hub id or folder of the converted model")
    parser.add_argument("--base", required=True, help="Hub id or folder of the model it was converted from")
    parser.add_argument("--sentences", default=None, help="text file with more sentences to compare, one a line")
    parser.add_argument("--tolerance", type=float, default=1e-6, help="max |diff| allowed (default 1e-6); exit 1 above")
    parser.add_argument("--device", default=None, help="torch device (default: automatic)")
    parser.set_defaults(run=run_verify)


def run_verify(args: argparse.Namespace) -> int:
    from st_generalized_pooling.convert import verify_equivalence

    extra = None
    if args.sentences:
        with open(args.sentences, encoding="utf-8") as file:
            extra = [line.rstrip("\n") for line in file]
    converted = load_any(args.converted, device=args.device)
    report = verify_equivalence(load_any(args.base, device=args.device), converted, extra)
    print_report(converted, report)
    if report.max_abs_diff > args.tolerance:
        print(f"NOT equivalent: max |diff| {report.max_abs_diff:.3g} > {args.tolerance:g}")
        return 1
    print(f"equivalent within {args.tolerance:g}")
    return 0


def add_check(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "check",
        help="flag translations in gettext catalogs that do not say what their source says",
        description="Score every (msgid, msgstr) pair of .po/.mo catalogs by the cosine similarity of their "
        "embeddings and flag those below a threshold (or the K least similar), plus those failing a rule check "
        "(placeholders, numbers, length, untranslated copy, script). Exit 1 when anything is flagged, 0 when "
        "clean, 2 on error (for CI).",
    )
    parser.add_argument("paths", nargs="+", metavar="FILE_OR_DIR", help=".po or .mo files, or folders to search")
    parser.add_argument("--model", required=True, help="Hub id or folder of the model that scores the pairs")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--threshold", type=float, default=None,
                       help="flag pairs whose cosine similarity is below this (default: the model's stored one)")
    which.add_argument("--top", type=int, default=None, metavar="K", help="flag the K least similar pairs")
    parser.add_argument("--format", choices=["table", "json", "csv"], default="table", help="output format")
    parser.add_argument("--lang", default=None, help="language of all catalogs (default: header or LC_MESSAGES path)")
    parser.add_argument("--batch-size", type=int, default=64, help="strings encoded per batch (default 64)")
    parser.add_argument("--no-rules", action="store_true", help="flag by similarity only, no rule checks")
    parser.add_argument("--device", default=None, help="torch device (default: automatic)")
    parser.set_defaults(run=run_check)


def run_check(args: argparse.Namespace) -> int:
    from st_generalized_pooling.detection.check import check, load_threshold, render, summary
    from st_generalized_pooling.errors import GeneralizedPoolingError

    threshold = args.threshold
    if threshold is None and args.top is None:
        threshold = load_threshold(args.model)
        if threshold is None:
            raise GeneralizedPoolingError(
                f"{args.model} has no stored detection threshold (written by st-gp evaluate): "
                f"give --threshold T or --top K"
            )
    model = load_any(args.model, device=args.device)
    result = check(args.paths, model, threshold=threshold, top=args.top, rules=not args.no_rules,
                   language=args.lang, batch_size=args.batch_size)
    for error in result.catalogs.errors:
        print(f"st-gp check: error: {error}", file=sys.stderr)
    output = render(result, args.format)
    if output:
        print(output)
    print(summary(result), file=sys.stderr if args.format != "table" else sys.stdout)
    if result.catalogs.errors:
        return EXIT_ERROR
    return 1 if result.flagged else 0


def add_push(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "push",
        help="publish a model with generalized pooling on the Hugging Face Hub, with its model card",
        description="Publish a model to the Hub in one commit: the sentence-transformers folder, the pooling "
        "source (so that SentenceTransformer(repo, trust_remote_code=True) works without this package) and a "
        "model card with the equivalence figures measured now. A mean-pooling model is converted first; one "
        "that already uses generalized pooling is published as it is. The token is --token, else HF_TOKEN or "
        "the huggingface_hub login; the endpoint is HF_ENDPOINT (default: the Hugging Face Hub).",
    )
    parser.add_argument("--model", default=DISTILUSE, help=f"Hub id or folder of the model (default {DISTILUSE})")
    parser.add_argument("--repo-id", required=True, help="Hub repo to publish to, e.g. user/distiluse-mhgp")
    parser.add_argument("--private", action="store_true",
                        help="create the repo as private; an existing public repo is refused, not uploaded to")
    parser.add_argument("--revision", default=None, metavar="BRANCH", help="branch to commit to (created if needed)")
    parser.add_argument("--create-pr", action="store_true", help="open a pull request instead of committing")
    parser.add_argument("--commit-message", default=None,
                        help="commit message (default: a standard upload message)")
    parser.add_argument("--dry-run", default=None, metavar="DIR",
                        help="write the exact folder that would be uploaded to DIR, list it, and upload nothing")
    parser.add_argument("--token", default=None, help="Hub token (default: HF_TOKEN or the saved login); never printed")
    parser.add_argument("--base-model", default=None, metavar="ID",
                        help="Hub id of the base model for the card (default: --model when converting a Hub id; "
                        "for an already converted model the base_model in its card, loaded to measure against)")
    add_conversion_options(parser)
    parser.set_defaults(run=run_push)


def run_push(args: argparse.Namespace) -> int:
    from st_generalized_pooling.hub import build_upload_folder, check_token, prepare, publish

    if args.dry_run is None:
        print(f"pushing as:      {check_token(args.token)}")
    prepared = prepare(args.model, args.num_heads, args.hidden_dim, args.seed, args.base_model, args.device)
    print(f"model:           {args.model} ({'converted now' if prepared.converted else 'published as it is'})")
    if args.dry_run is not None:
        files = build_upload_folder(prepared, args.dry_run, args.repo_id)
        print(f"dry run: {len(files)} files for {args.repo_id} written to {args.dry_run}, nothing uploaded:")
        for name in files:
            print(f"  {name}  ({os.path.getsize(os.path.join(args.dry_run, name)):,} bytes)")
        return 0
    result = publish(prepared, args.repo_id, args.token, args.private, args.revision, args.create_pr,
                     args.commit_message)
    if not result.changed:
        print(f"{args.repo_id} already holds these {len(result.files)} files: no new commit ({result.commit_oid})")
    else:
        print(f"pushed {len(result.files)} files to {args.repo_id} in commit {result.commit_oid}")
    print(result.pr_url or result.commit_url)
    return 0


def add_train(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="fine-tune the generalized pooling on (sentence1, sentence2, score) pairs and save the model",
        description="Train a converted model (a mean-pooling model is converted first) on a CSV/TSV/JSONL file of "
        "sentence1, sentence2, score pairs (score in [0, 1], 1 = correct translation). With --freeze-encoder only "
        "the modules after the encoder train, on token embeddings computed once; otherwise the whole model trains "
        "with sentence-transformers' trainer. The training details are recorded in the saved model (model card).",
    )
    add_conversion_options(parser)
    parser.add_argument("--model", required=True, help="Hub id or folder of a converted or mean-pooling model")
    parser.add_argument("--train", required=True, help="training pairs: .csv, .tsv or .jsonl")
    parser.add_argument("--output", required=True, help="folder to save the trained model to (must not exist or be empty)")
    parser.add_argument("--eval", default=None, help="evaluation pairs (same format): loss per epoch, the best epoch is kept")
    parser.add_argument("--loss", choices=["cosent", "contrastive", "mnrl"], default="cosent",
                        help="training loss (default cosent); mnrl uses only the pairs with score >= 0.5")
    parser.add_argument("--freeze-encoder", action="store_true",
                        help="train only the pooling and the modules after it, on cached token embeddings (fast)")
    parser.add_argument("--penalty", choices=["weights", "attention", "outputs"], default=None,
                        help="add the head-diversity penalty of Chen et al. 2018 on the heads' W1, attention or outputs")
    parser.add_argument("--penalty-weight", type=float, default=0.01, help="factor of the penalty (default 0.01)")
    parser.add_argument("--epochs", type=int, default=1, help="number of epochs (default 1)")
    parser.add_argument("--batch-size", type=int, default=32, help="pairs per step (default 32)")
    parser.add_argument("--lr", type=float, default=None,
                        help="learning rate of everything trained but the pooling (default 2e-5; 1e-3 with --freeze-encoder)")
    parser.add_argument("--pooling-lr", type=float, default=None,
                        help="learning rate of the generalized pooling (default 1e-3; --lr with --freeze-encoder)")
    parser.add_argument("--cache-dir", default=None,
                        help="with --freeze-encoder: keep the token embeddings in safetensors files there, not in memory")
    parser.add_argument("--overwrite", action="store_true", help="replace --output if it is not empty")
    parser.set_defaults(run=run_train)


def run_train(args: argparse.Namespace) -> int:
    from st_generalized_pooling.convert import convert
    from st_generalized_pooling.loading import save_model
    from st_generalized_pooling.training import (
        is_generalized_pooling,
        make_loss,
        positive_pairs,
        read_pairs,
        train_pooling_head,
        train_with_trainer,
    )
    from st_generalized_pooling.training.pooler import DEFAULT_HEAD_LEARNING_RATE
    from st_generalized_pooling.training.trainer import DEFAULT_LEARNING_RATE, DEFAULT_POOLING_LEARNING_RATE

    output = Path(args.output)
    if output.exists() and not args.overwrite and not (output.is_dir() and not any(output.iterdir())):
        # save_model would refuse too, but only after the training.
        raise FileExistsError(f"{output} already exists and is not empty; choose another --output or --overwrite.")
    train = read_pairs(args.train)
    evaluation = read_pairs(args.eval) if args.eval else None
    if args.loss == "mnrl":
        train = positive_pairs(train)
        evaluation = positive_pairs(evaluation) if evaluation is not None else None
    model = load_any(args.model, device=args.device)
    if not any(is_generalized_pooling(module) for module in model.modules()):
        model = convert(model, num_heads=args.num_heads, hidden_dim=args.hidden_dim, seed=args.seed)
    loss = make_loss(args.loss, model, args.penalty, args.penalty_weight)
    common = {"epochs": args.epochs, "batch_size": args.batch_size, "eval_dataset": evaluation, "seed": args.seed}
    if args.freeze_encoder:
        rate = DEFAULT_HEAD_LEARNING_RATE if args.lr is None else args.lr
        details = train_pooling_head(model, train, loss, learning_rate=rate, pooling_learning_rate=args.pooling_lr,
                                     cache_dir=args.cache_dir, **common)
    else:
        rate = DEFAULT_LEARNING_RATE if args.lr is None else args.lr
        pooling_rate = DEFAULT_POOLING_LEARNING_RATE if args.pooling_lr is None else args.pooling_lr
        details = train_with_trainer(model, train, loss, learning_rate=rate, pooling_learning_rate=pooling_rate, **common)
    path = save_model(model, output, overwrite=args.overwrite)
    penalty = f", {details['penalty']} penalty x {details['penalty_weight']:g}" if details["penalty"] else ""
    print(f"trained:         {details['loss']}{penalty}, {details['epochs']} epoch(s) of {details['num_pairs']} pairs")
    print(f"method:          {details['method']}, encoder {'frozen' if details['frozen_encoder'] else 'trained'}")
    print(f"training loss:   {details['final_training_loss']:.4f} (last epoch)")
    if "eval_losses" in details:
        print(f"eval loss:       {', '.join(f'{value:.4f}' for value in details['eval_losses'])} (per epoch; best kept)")
    print(f"saved to {path}")
    return 0


def add_evaluate(subparsers: argparse._SubParsersAction) -> None:
    from st_generalized_pooling.detection.corruptions import KINDS
    from st_generalized_pooling.detection.config import DEFAULT_CATALOGS, EvaluationConfig

    defaults = EvaluationConfig()
    parser = subparsers.add_parser(
        "evaluate",
        help="measure translation-error detection on real catalogs: rules, mean pooling, generalized pooling",
        description="Build a labelled set from real gettext catalogs (real translations vs wrong ones made by "
        "kind), split by source string, and compare the rules, the mean-pooling model, its generalized-pooling "
        "conversion at step 0 and after training its pooling head, mean pooling + a trained Dense, and rules OR "
        "the best model. Writes results.json, results.md and the trained models to OUTPUT_DIR, and stores each "
        "model's dev threshold with it for st-gp check.",
    )
    parser.add_argument("--model", required=True, help="folder (or Hub id) of a mean-pooling SentenceTransformer")
    parser.add_argument("--output-dir", required=True, help="folder for results.json, results.md and trained models")
    parser.add_argument("--catalogs", action="append", default=None, metavar="DIR",
                        help=f"folder of .po/.mo catalogs, repeatable (default {DEFAULT_CATALOGS})")
    parser.add_argument("--languages", default=None, help="comma-separated languages to keep (default: all)")
    parser.add_argument("--exclude-domains", default="", help="comma-separated globs of text domains to leave out")
    parser.add_argument("--max-pairs", type=int, default=defaults.max_pairs,
                        help=f"real translations to sample, all splits (default {defaults.max_pairs})")
    parser.add_argument("--max-pairs-per-catalog", type=int, default=defaults.max_pairs_per_catalog,
                        help=f"at most this many from one domain and language (default {defaults.max_pairs_per_catalog})")
    parser.add_argument("--kinds", default=",".join(KINDS), help=f"error kinds to make (default {','.join(KINDS)})")
    parser.add_argument("--negatives-per-kind", type=float, default=defaults.negatives_per_kind,
                        help=f"negatives per kind as a fraction of positives (default {defaults.negatives_per_kind})")
    parser.add_argument("--fuzzy", action="append", default=None, metavar="DIR",
                        help="folder of .po files whose fuzzy entries are scored in a separate table, repeatable")
    parser.add_argument("--max-fuzzy-pairs", type=int, default=defaults.max_fuzzy_pairs,
                        help=f"fuzzy (and as many up-to-date) pairs to score (default {defaults.max_fuzzy_pairs})")
    parser.add_argument("--no-train", action="store_true", help="skip training (d) and (e)")
    parser.add_argument("--epochs", type=int, default=defaults.epochs, help=f"training epochs (default {defaults.epochs})")
    parser.add_argument("--learning-rate", type=float, default=defaults.learning_rate,
                        help=f"learning rate of both trained heads (default {defaults.learning_rate})")
    parser.add_argument("--num-heads", type=int, default=defaults.num_heads,
                        help=f"generalized pooling heads (default {defaults.num_heads})")
    parser.add_argument("--bootstrap", type=int, default=defaults.bootstrap_samples,
                        help=f"bootstrap samples for intervals (default {defaults.bootstrap_samples}; 0 = none)")
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size, help="encoding batch size")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="seed of sampling, splits and training")
    parser.set_defaults(run=run_evaluate)


def run_evaluate(args: argparse.Namespace) -> int:
    from st_generalized_pooling.detection.config import DEFAULT_CATALOGS, EvaluationConfig
    from st_generalized_pooling.detection.evaluation import evaluate

    def names(text: str | None) -> list[str]:
        return [part.strip() for part in (text or "").split(",") if part.strip()]

    config = EvaluationConfig(
        catalogs=args.catalogs or [DEFAULT_CATALOGS], languages=names(args.languages) or None,
        exclude_domains=names(args.exclude_domains), max_pairs=args.max_pairs,
        max_pairs_per_catalog=args.max_pairs_per_catalog, kinds=names(args.kinds),
        negatives_per_kind=args.negatives_per_kind, seed=args.seed, batch_size=args.batch_size,
        num_heads=args.num_heads, train=not args.no_train, epochs=args.epochs, learning_rate=args.learning_rate,
        bootstrap_samples=args.bootstrap, fuzzy=args.fuzzy, max_fuzzy_pairs=args.max_fuzzy_pairs,
    )
    evaluate(args.model, config, args.output_dir, log=lambda line: print(line, file=sys.stderr))
    print((Path(args.output_dir) / "results.md").read_text(encoding="utf-8"))
    return 0


def add_bench(subparsers: argparse._SubParsersAction) -> None:
    from st_generalized_pooling.benchmark import DEFAULT_MODEL

    parser = subparsers.add_parser(
        "bench",
        help="measure what generalized pooling costs: encode speed, the pooling module alone, peak memory",
        description="Convert a mean-pooling model and measure, in one process with interleaved rounds (medians "
        "of per-round ratios): encode sentences/s of both models at batch 32 and 128; the pooling module alone "
        "at (batch, tokens) = (32, 16), (32, 64), (256, 128), forward and forward+backward, against the seed "
        "notebook's per-head design and mean pooling; peak RSS of both models (CPU). Writes benchmark.json "
        "and benchmark.md to --output.",
    )
    parser.add_argument("--model", default=None,
                        help=f"Hub id or folder of a mean-pooling model (default: {DEFAULT_MODEL}, random weights "
                        "of distiluse's shape with a real tokenizer)")
    parser.add_argument("--corpus", default=None,
                        help="text file of strings to encode, one a line (default: English msgids of the gettext "
                        "catalogs under /usr/share/locale)")
    parser.add_argument("--sentences", type=int, default=256, help="strings sampled from the corpus (default 256)")
    parser.add_argument("--rounds", type=int, default=8, help="interleaved measurement rounds (default 8)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads, the same everywhere (default 1: on a shared machine a busy neighbour "
                        "stalls every multi-threaded op)")
    parser.add_argument("--output", default="benchmark", help="folder for benchmark.json and benchmark.md (default benchmark)")
    add_conversion_options(parser)
    parser.set_defaults(run=run_bench)


def run_bench(args: argparse.Namespace) -> int:
    import torch

    from st_generalized_pooling.benchmark import DEFAULT_MODEL, run_benchmark, ui_strings, write_results

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    texts, source = ui_strings(args.corpus, limit=args.sentences, seed=args.seed)
    model = None if args.model is None else load_any(args.model, device=device)
    result = run_benchmark(
        model, args.model or DEFAULT_MODEL, texts, source, rounds=args.rounds, threads=args.threads,
        device=device, num_heads=args.num_heads, hidden_dim=args.hidden_dim, seed=args.seed,
    )
    json_path, markdown_path = write_results(result, args.output)
    print(markdown_path.read_text(encoding="utf-8"))
    print(f"wrote {json_path} and {markdown_path}")
    return 0


COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [add_convert, add_verify, add_check, add_push, add_train, add_evaluate, add_bench]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="st-gp",
        description="Multi-head generalized pooling for sentence-transformers: convert, verify, publish, "
        "train, benchmark and check translations.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="show library logs and full tracebacks")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in COMMANDS:
        add(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.verbose:
        logging.getLogger("sentence_transformers").setLevel(logging.ERROR)
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    try:
        return args.run(args)
    except (ValueError, OSError) as error:  # GeneralizedPoolingError is a ValueError
        if args.verbose:
            raise
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        print(f"st-gp {args.command}: error: {message}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"st-gp {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
