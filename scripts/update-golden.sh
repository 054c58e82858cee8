#!/usr/bin/env bash
# Regenerates the golden files of `callsctl config generate` (Tests/CallsConfigTests/Golden/<case>/)
# from the generators, then shows what changed. Review the diff before committing it.
set -euo pipefail
cd "$(dirname "$0")/.."
SCRATCH="${SCRATCH_PATH:-.build}"
CALLSCTL_UPDATE_GOLDEN=1 swift test --scratch-path "$SCRATCH" --filter GeneratorGoldenTests >/dev/null
git status --short -- Tests/CallsConfigTests/Golden
git diff --stat -- Tests/CallsConfigTests/Golden
