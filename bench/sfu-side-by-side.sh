#!/usr/bin/env bash
# Side-by-side benchmark: `callsctl serve` and Janus VideoRoom (audio only) on loopback, one aiortc load generator.
# Usage: bench/sfu-side-by-side.sh [bench/sfu_side_by_side.py options, e.g. --callsctl BIN --repeat 3]
# Installs janus (apt) if it is missing, and says so; builds callsctl in release if .build-release/release/callsctl is
# missing and no --callsctl is given. Python packages are not installed: it exits 3 without aiortc/numpy.
# Exit: 0 all runs passed, 1 a run failed, 3 janus, gcc or aiortc missing (and could not be installed).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v janus >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "sfu-side-by-side: janus is missing; running: apt-get install -y --no-install-recommends janus" >&2
        apt-get install -y --no-install-recommends janus >&2 || {
            echo "sfu-side-by-side: running: apt-get update, then the install again" >&2
            apt-get update >&2 && apt-get install -y --no-install-recommends janus >&2
        } || { echo "sfu-side-by-side: could not install janus" >&2; exit 3; }
    else
        echo "sfu-side-by-side: janus is missing: apt-get install -y --no-install-recommends janus" >&2
        exit 3
    fi
fi
if ! command -v gcc >/dev/null 2>&1; then
    echo "sfu-side-by-side: gcc is missing (it builds the LD_PRELOAD shim): apt-get install -y gcc" >&2
    exit 3
fi
exec python3 bench/sfu_side_by_side.py "$@"
