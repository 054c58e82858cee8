#!/usr/bin/env bash
# Runs every benchmark in release mode, with the allocation-counting shim preloaded so the echo path
# reports allocations per packet. Usage: scripts/bench.sh [store|wire|media|echo|sfu|large|memory|flood|ceiling|all] [--json]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
swift build -c release --scratch-path .build-release --product callsctl-bench >/dev/null
shim=.build-release/liballoccount.so
cc -O2 -shared -fPIC -o "$shim" benchmarks/alloccount.c
echo "machine: $(nproc) x $(lscpu | sed -n 's/^Model name:[[:space:]]*//p'), $(uname -sr), $(date -u +%Y-%m-%d)" >&2
LD_PRELOAD="$PWD/$shim" .build-release/release/callsctl-bench "${@:-all}"
