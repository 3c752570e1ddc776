#!/usr/bin/env bash
# Make (or reuse) the project's virtualenv in .venv: torch==2.13.0 first (the CPU wheel; an unpinned
# torch pulls a multi-GB CUDA build), then this project with its test extras. Sourced by the other scripts.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
STAMP="$VENV/.installed-$(sha256sum "$ROOT/pyproject.toml" | cut -c1-16)"
if [ ! -f "$STAMP" ]; then
  echo "setting up $VENV (torch 2.13.0 CPU, then st-generalized-pooling[test]) ..." >&2
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --upgrade pip 2>/dev/null || true
  "$VENV/bin/pip" install --quiet torch==2.13.0
  "$VENV/bin/pip" install --quiet -e "$ROOT[test]"
  rm -f "$VENV"/.installed-*
  touch "$STAMP"
fi
export PATH="$VENV/bin:$PATH"
export HF_HUB_DISABLE_TELEMETRY=1
