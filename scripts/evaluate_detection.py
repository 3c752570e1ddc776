#!/usr/bin/env python3
"""Evaluate translation-error detection on real gettext catalogs: the same as ``st-gp evaluate``.

    python scripts/evaluate_detection.py --model /path/to/multilingual-e5-small --output-dir results/detection \
        --exclude-domains 'iso_*' --max-pairs 20000 --fuzzy /path/to/debian-sources

See ``st-gp evaluate --help`` for every option and README.md ("Checking translations") for the results.
"""

import sys

from st_generalized_pooling.cli import main

if __name__ == "__main__":
    sys.exit(main(["evaluate", *sys.argv[1:]]))
