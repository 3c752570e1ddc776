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

EXIT_ERROR = 2
DISTILUSE = "sentence-transformers/distiluse-base-multilingual-cased-v2"


def load_any(name_or_path: str, device: str | None = None):
    """A SentenceTransformer from a Hub id or folder, converted or not (trusting this package's module)."""
    from sentence_transformers import SentenceTransformer

    from st_generalized_pooling.errors import UnsafeModelError
    from st_generalized_pooling.loading import POOLING_TYPES, load_model, read_module_types

    try:
        types = read_module_types(name_or_path)
    except UnsafeModelError:  # a plain transformers model: sentence-transformers adds mean pooling
        types = []
    if any(ref in POOLING_TYPES for ref in types):
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
    from st_generalized_pooling.pooling import MultiHeadGeneralizedPooling

    pooling = next(m for m in model.modules() if isinstance(m, MultiHeadGeneralizedPooling))
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


COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [add_convert, add_verify]


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
