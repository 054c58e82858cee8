#!/usr/bin/env bash
# Builds the libFuzzer harness (Fuzz/, a separate SwiftPM package whose decoder sources are symlinks into Sources/)
# and fuzzes each decoder that takes outside input, one target at a time, each from its own seed corpus in
# Fuzz/Corpus/<target>/.
#
#   scripts/fuzz.sh                                # CI: every target for FUZZ_SECONDS (default 4) each
#   scripts/fuzz.sh sdp toml                       # only these targets
#   FUZZ_RUNS=10000000 scripts/fuzz.sh rtp         # a fixed number of executions instead of a time budget
#   FUZZ_SANITIZERS=fuzzer scripts/fuzz.sh ...     # without AddressSanitizer (faster; used for the long runs)
#   FUZZ_CONFIG=release scripts/fuzz.sh ...        # an optimised build (the long runs; default debug)
#   FUZZ_JOBS=1 scripts/fuzz.sh                    # targets at a time (default 2: this is a 2-core machine)
#   scripts/fuzz.sh json -- -max_len=4096          # arguments after -- go to libFuzzer
#
# Targets: stun rtp rtcp sdp json token http toml rfc4571 dtls (see Fuzz/Sources/CallsFuzz/FuzzEntry.swift).
# Prints one line per target. Exits non-zero if the build fails or any target finds a crash, leak, timeout or
# invariant violation; the reproducer is written to fuzz-artifacts/<target>-crash-* (ignored by git) and the
# end of the fuzzer's log is printed. Inputs found during a run go to Fuzz/.build-fuzz*/corpus/<target>, never
# into the committed seeds.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FUZZ_DIR="$ROOT/Fuzz"
SANITIZERS="${FUZZ_SANITIZERS:-fuzzer,address}"
CONFIG="${FUZZ_CONFIG:-debug}"
JOBS="${FUZZ_JOBS:-2}"
# One build folder per sanitizer set, so switching does not rebuild everything.
# One build folder per sanitizer set and configuration, so switching does not rebuild everything.
SCRATCH="$FUZZ_DIR/.build-fuzz"
[[ "$SANITIZERS" == "fuzzer,address" ]] || SCRATCH+="-${SANITIZERS//[^a-z]/-}"
[[ "$CONFIG" == "debug" ]] || SCRATCH+="-$CONFIG"
ARTIFACTS="$ROOT/fuzz-artifacts"
ALL_TARGETS=(stun rtp rtcp sdp json token http toml rfc4571 dtls)

targets=()
extra=()
while [[ $# -gt 0 ]]; do
  if [[ "$1" == "--" ]]; then shift; extra=("$@"); break; fi
  targets+=("$1"); shift
done
[[ ${#targets[@]} -eq 0 ]] && targets=("${ALL_TARGETS[@]}")
for t in "${targets[@]}"; do
  [[ " ${ALL_TARGETS[*]} " == *" $t "* ]] || { echo "fuzz: unknown target $t (targets: ${ALL_TARGETS[*]})" >&2; exit 2; }
done

build_args=(--package-path "$FUZZ_DIR" -c "$CONFIG" --scratch-path "$SCRATCH"
  -Xswiftc "-sanitize=$SANITIZERS" -Xswiftc -parse-as-library)
# Always built: when up to date this takes a few seconds.
start=$(date +%s)
log=$(mktemp)
# -sanitize=fuzzer adds libFuzzer's coverage instrumentation and driver; -parse-as-library stops Swift from
# emitting a competing main for the executable target.
if ! swift build "${build_args[@]}" --product CallsFuzz >"$log" 2>&1; then
  grep -E "error" "$log" | head -30 >&2 || tail -30 "$log" >&2
  rm -f "$log"
  echo "fuzz: build failed" >&2
  exit 1
fi
rm -f "$log"
echo "fuzz: built with -sanitize=$SANITIZERS in $(( $(date +%s) - start ))s"
BIN="$(swift build "${build_args[@]}" --show-bin-path)/CallsFuzz"

mkdir -p "$ARTIFACTS"
# A crash prints libFuzzer's report; Swift's own backtracer would add pages and seconds to it.
export SWIFT_BACKTRACE="${SWIFT_BACKTRACE:-enable=no}"
if [[ -n "${FUZZ_RUNS:-}" ]]; then budget=(-runs="$FUZZ_RUNS"); else budget=(-max_total_time="${FUZZ_SECONDS:-4}"); fi
# One target: runs the fuzzer, prints one line, and leaves a ".failed" marker when it found something.
run_target() {
  local t=$1 corpus="$SCRATCH/corpus/$1" log="$SCRATCH/fuzz-$1.log" start rc secs runs final speed
  mkdir -p "$corpus"
  rm -f "$SCRATCH/fuzz-$t.failed"
  start=$(date +%s)
  set +e
  # New inputs are written to the first corpus folder (the scratch one); the committed seeds are only read.
  FUZZ_TARGET="$t" "$BIN" "${budget[@]}" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$ARTIFACTS/$t-" "${extra[@]}" "$corpus" "$FUZZ_DIR/Corpus/$t" >"$log" 2>&1
  rc=$?
  set -e
  secs=$(( $(date +%s) - start ))
  runs=$(grep -oE 'stat::number_of_executed_units: [0-9]+' "$log" | grep -oE '[0-9]+$' || echo "?")
  final=$(grep -E '^#[0-9]+[[:space:]]+(DONE|pulse|NEW|REDUCE|INITED)' "$log" | tail -1 \
    | grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+/[0-9]+[a-zA-Z]*' || true)
  speed=$(grep -oE 'stat::average_exec_per_sec:[[:space:]]+[0-9]+' "$log" | grep -oE '[0-9]+$' || echo "?")
  if [[ $rc -ne 0 ]]; then
    { echo "fuzz: $t FAILED (exit $rc) after ${secs}s; reproducer(s): $(ls "$ARTIFACTS" | grep "^$t-" | tr '\n' ' ')"
      grep -vE '^#[0-9]+[[:space:]]' "$log" | grep -vE '^(INFO|MERGE|stat::)' | tail -15; } >&2
    touch "$SCRATCH/fuzz-$t.failed"
  else
    echo "fuzz: $t ok: $runs runs in ${secs}s ($speed/s), $final, -sanitize=$SANITIZERS -c $CONFIG"
  fi
}

for t in "${targets[@]}"; do
  while [[ $(jobs -rp | wc -l) -ge $JOBS ]]; do wait -n || true; done
  run_target "$t" &
done
wait
failed=()
for t in "${targets[@]}"; do [[ -e "$SCRATCH/fuzz-$t.failed" ]] && failed+=("$t"); done
if [[ ${#failed[@]} -gt 0 ]]; then
  echo "fuzz: FAILED: ${failed[*]} (reproducers in $ARTIFACTS; replay with FUZZ_TARGET=<target> $BIN <file>)" >&2
  exit 1
fi
