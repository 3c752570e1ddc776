#!/usr/bin/env python
"""Publish distiluse-base-multilingual-cased-v2 (or --model) with generalized pooling on the Hugging Face Hub.

Same as ``st-gp push``: a mean-pooling model is converted first (--num-heads, --hidden-dim, --seed), one that
already uses generalized pooling is published as it is. Example:

    HF_TOKEN=hf_... python scripts/push_to_hub.py --repo-id user/distiluse-mhgp
    python scripts/push_to_hub.py --repo-id user/distiluse-mhgp --dry-run output/upload   # look first
"""

import sys

from st_generalized_pooling.cli import main

sys.exit(main(["push", *sys.argv[1:]]))
