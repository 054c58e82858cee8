#!/usr/bin/env bash
# Regenerates completions/ and man/ from callsctl's command tree. Run after changing any command.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build --product callsctl >/dev/null
"$(swift build --show-bin-path)/callsctl" generate-docs --root .
