#!/usr/bin/env bash
# The test suite, offline: sets up .venv if needed, then runs pytest (extra arguments go to pytest).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$ROOT"
HF_HUB_OFFLINE=1 python -m pytest "$@"
