#!/usr/bin/env bash
# Installs headless Chromium (Debian package `chromium`) for the browser echo-call test, and the
# tools the harness uses (python3 for the tone file and the result receiver, iproute2 and util-linux
# for the private network namespace). Idempotent: apt runs only when something is missing.
set -euo pipefail

PKGS=(chromium python3 iproute2 util-linux fonts-liberation)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "install-chromium: installing ${missing[*]}" >&2
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  log=$(mktemp)
  if ! { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    echo "install-chromium: apt-get failed; see the output above" >&2
    exit 1
  fi
  rm -f "$log"
fi

if ! command -v chromium >/dev/null 2>&1; then
  echo "install-chromium: chromium is still not on PATH after installing; check /usr/bin/chromium" >&2
  exit 1
fi
exit 0
