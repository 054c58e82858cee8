#!/usr/bin/env bash
# Installs the system packages callsctl needs to build, and (with --test) the real peers its tests use.
# Idempotent and quiet: packages already present are skipped; apt runs only when something is missing.
set -euo pipefail

BUILD_PKGS=(libssl-dev libsrtp2-dev libsqlite3-dev pkg-config)
TEST_PKGS=(coturn nftables iproute2 procps psmisc man-db groff-base python3 openssl faketime xxd chromium fonts-liberation util-linux nginx libnginx-mod-stream python3-yaml strace stun-server
  # The other WebRTC stacks of the interop tests: Firefox ESR (with a PulseAudio null sink, or its AudioContext
  # stays suspended) and GStreamer's webrtcbin (libnice; driven from Debian's python3 through gi).
  firefox-esr pulseaudio
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-nice python3-gst-1.0
  gir1.2-gst-plugins-bad-1.0 gir1.2-nice-0.1
  # promtool parses the generated Grafana dashboard's queries as Prometheus does.
  prometheus
  # The cluster tests start their own PostgreSQL on loopback (the shared database of several serve nodes).
  postgresql)

want=("${BUILD_PKGS[@]}")
if [[ "${1:-}" == "--test" ]]; then want+=("${TEST_PKGS[@]}"); fi

missing=()
for p in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}" >&2
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  log=$(mktemp)
  if ! { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
    cat "$log" >&2; rm -f "$log"
    echo "install-deps: apt-get failed; see the output above" >&2
    exit 1
  fi
  rm -f "$log"
fi

# coturn's Debian package starts a system-wide turnserver on 3478; tests run their own instances.
if [[ "${1:-}" == "--test" ]] && command -v systemctl >/dev/null 2>&1; then
  systemctl disable --now coturn >/dev/null 2>&1 || true
  # nginx's package starts a system nginx on port 80; the config tests only run `nginx -t` on generated files.
  systemctl disable --now nginx >/dev/null 2>&1 || true
  # prometheus's package starts a system Prometheus on 9090; the tests use only promtool.
  systemctl disable --now prometheus >/dev/null 2>&1 || true
  # postgresql's package starts a system cluster on 5432; the tests start their own servers.
  systemctl disable --now postgresql >/dev/null 2>&1 || true
fi
# Without systemd the package's postinst may have started its cluster through pg_ctlcluster.
if [[ "${1:-}" == "--test" ]] && command -v pg_lsclusters >/dev/null 2>&1; then
  pg_lsclusters --no-header 2>/dev/null | awk '$4 == "online" {print $1, $2}' | while read -r version name; do
    SUDO=""; if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
    $SUDO pg_ctlcluster "$version" "$name" stop >/dev/null 2>&1 || true
  done
fi
# Without systemd as PID 1 (containers) the package's postinst may have started nginx through its init script.
if [[ "${1:-}" == "--test" ]] && [[ -s /run/nginx.pid ]] && kill -0 "$(cat /run/nginx.pid)" 2>/dev/null; then
  SUDO=""; if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
  $SUDO nginx -s stop >/dev/null 2>&1 || true
fi
# aiortc: the scripted WebRTC peer of the media tests (wheels from PyPI; numpy for the tone check).
if [[ "${1:-}" == "--test" ]] && ! python3 -c "import aiortc, numpy" >/dev/null 2>&1; then
  echo "install-deps: installing aiortc and numpy (pip)" >&2
  log=$(mktemp)
  if ! python3 -m pip install -q --disable-pip-version-check aiortc numpy >"$log" 2>&1; then
    cat "$log" >&2; rm -f "$log"
    echo "install-deps: pip install aiortc numpy failed; see the output above" >&2
    exit 1
  fi
  rm -f "$log"
fi
exit 0
