#!/usr/bin/env python
"""Convert distiluse-base-multilingual-cased-v2 (or --model) to generalized pooling, verify and save.

Same as ``st-gp convert MODEL OUTPUT_DIR``, with distiluse as the default model.
"""

import argparse
import sys

from st_generalized_pooling.cli import DISTILUSE, main

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--model", default=DISTILUSE, help=f"Hub id or folder of a mean-pooling model (default {DISTILUSE})")
parser.add_argument("--output", default="output/distiluse-mhgp", help="folder to save to (default output/distiluse-mhgp)")
args, rest = parser.parse_known_args()
sys.exit(main(["convert", args.model, args.output, *rest]))
