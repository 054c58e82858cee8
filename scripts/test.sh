#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what the tests need (system packages and the real
# peers they talk to), builds, fuzzes the decoders of outside input for a bounded time, and runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh --test

echo "== build"
buildlog=$(mktemp)
if ! swift build --build-tests >"$buildlog" 2>&1; then
  grep -E "error|warning: unre" "$buildlog" | head -50 >&2 || tail -50 "$buildlog" >&2
  rm -f "$buildlog"
  echo "build failed" >&2
  exit 1
fi
grep -E "^Build complete|Compiling callsctl" "$buildlog" | tail -1 || true
rm -f "$buildlog"

if [[ -x scripts/fuzz.sh ]]; then
  echo "== fuzz (every outside-input decoder, ${FUZZ_SECONDS:-4} s each)"
  scripts/fuzz.sh
fi

echo "== tests"
# Real peers are part of the suite: fail, don't skip, when one is missing.
export CALLSCTL_REQUIRE_AIORTC=1 CALLSCTL_REQUIRE_FIREFOX=1 CALLSCTL_REQUIRE_GSTREAMER=1 CALLSCTL_REQUIRE_PROMTOOL=1
# Three runs on this 2-core machine, so no test starves another of CPU:
# 1. one at a time: the CPU-bound property and fuzz-style tests (they would hold both cores for seconds), and
#    the tests of server-side timers (consent expiry, keepalive, rate limits), which a busy parallel start-up
#    would delay past the timers they test;
# 2. everything else but the heaviest real peers, in parallel (in-process servers, CLI runs, coturn, nginx);
# 3. the heaviest real peers (Chromium, Firefox, GStreamer and aiortc processes), one at a time.
# A wait that gives up says whether the process was starved meanwhile (Tests/CallsTestSupport).
cpu='STUNPropertyTests|RTCPFuzzTests|garbageNeverTraps|StarvationReportTests'
cpu+='|consentExpiry|consentKeptAlive|plainBindingAndRateLimit|aSilentClientIsDisconnectedAndTheCallIsTold'
heavy='BrowserCallTests|FirefoxCallTests|GStreamerCallTests|CallScenarioTests|MediaServerAiortcTests|LoadtestCLITests|AbuseDuringCallTests'
# Cluster nodes judge each other by heartbeats: a node starved beside a busy parallel run would look gone.
heavy+='|ClusterTests|ClusterSettingsCacheTests|ChannelSettingsConformanceTests|ClusterSettingsStoreTests|PostgresLinkTimeoutTests'
log=$(mktemp)
set +e
swift test --skip-build --no-parallel --filter "$cpu" 2>&1 | tee "$log"
status1=${PIPESTATUS[0]}
swift test --skip-build --skip "$cpu|$heavy" 2>&1 | tee -a "$log"
status=${PIPESTATUS[0]}
swift test --skip-build --no-parallel --filter "$heavy" 2>&1 | tee -a "$log"
status2=${PIPESTATUS[0]}
set -e
passed=$(grep -oE 'Test run with [0-9]+ tests? .*passed' "$log" | grep -oE 'with [0-9]+' | grep -oE '[0-9]+' | awk '{s+=$1} END {print s+0}' || true)
failed=$(grep -oE 'Test run with [0-9]+ tests? .*failed.*' "$log" | grep -oE 'with [0-9]+ issues?' | grep -oE '[0-9]+' | awk '{s+=$1} END {print s+0}' || true)
rm -f "$log"
if [[ $status1 -eq 0 && $status -eq 0 && $status2 -eq 0 ]]; then
  echo "${passed:-0} passed, 0 failed"
  exit 0
fi
echo "test run failed (exits $status1, $status, $status2)${failed:+: $failed issues}" >&2
exit 1
