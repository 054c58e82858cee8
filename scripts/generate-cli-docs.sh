#!/usr/bin/env bash
# Regenerates completions/ and man/ from callsctl's command tree. Run after changing any command.
set -euo pipefail
cd "$(dirname "$0")/.."
# SCRATCH_PATH: another build folder than .build (e.g. a worktree's own).
scratch=(${SCRATCH_PATH:+--scratch-path "$SCRATCH_PATH"})
swift build "${scratch[@]}" --product callsctl >/dev/null
"$(swift build "${scratch[@]}" --show-bin-path)/callsctl" generate-docs --root .
