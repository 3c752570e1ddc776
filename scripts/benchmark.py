#!/usr/bin/env python
"""Measure what generalized pooling costs (encode speed, the pooling module alone, peak memory) and write
benchmark.json + benchmark.md. Same as ``st-gp bench``; see ``st-gp bench --help`` for the options.

    python scripts/benchmark.py [--model ID_OR_DIR] [--corpus FILE] [--rounds 8] [--output benchmark]
"""

import sys

from st_generalized_pooling.cli import main

sys.exit(main(["bench", *sys.argv[1:]]))
