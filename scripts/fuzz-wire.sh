#!/usr/bin/env bash
# Builds the CallsWire libFuzzer target (Fuzz/, a separate SwiftPM package whose CallsWire target is a
# symlink to Sources/CallsWire) and runs it for a bounded time with the RFC test vectors as seeds.
#
#   FUZZ_SECONDS=60 scripts/fuzz-wire.sh        # default 60 s
#   scripts/fuzz-wire.sh -runs=100000            # extra arguments go to libFuzzer
#
# Exits non-zero if the build fails or the fuzzer finds a crash/leak/invariant violation; crash inputs
# are written to fuzz-artifacts/ (ignored by git).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FUZZ_DIR="$ROOT/Fuzz"
SCRATCH="$FUZZ_DIR/.build-fuzz"
ARTIFACTS="$ROOT/fuzz-artifacts"
CORPUS="$SCRATCH/corpus"
SECONDS_BUDGET="${FUZZ_SECONDS:-60}"

echo "fuzz-wire: building (scratch $SCRATCH)" >&2
start=$(date +%s)
# -sanitize=fuzzer adds libFuzzer's coverage instrumentation and its main(); -parse-as-library stops
# Swift from emitting a competing main for the executable target.
swift build --package-path "$FUZZ_DIR" -c debug --scratch-path "$SCRATCH" --product CallsWireFuzz \
  -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library
echo "fuzz-wire: build took $(( $(date +%s) - start ))s" >&2
BIN="$(swift build --package-path "$FUZZ_DIR" -c debug --scratch-path "$SCRATCH" --show-bin-path \
  -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library)/CallsWireFuzz"

# Seed corpus: the RFC 5769 / RFC 8489 vectors (hex fixtures → binary), plus RFC 4571-framed copies.
mkdir -p "$CORPUS" "$ARTIFACTS"
for f in "$ROOT"/Tests/CallsWireTests/Fixtures/*.hex; do
  name="$(basename "$f" .hex)"
  grep -v '^#' "$f" | tr -d ' \n\t\r' | xxd -r -p > "$CORPUS/$name.bin"
  len=$(stat -c %s "$CORPUS/$name.bin")
  { printf "\\x$(printf %02x $((len >> 8)))\\x$(printf %02x $((len & 255)))"; cat "$CORPUS/$name.bin"; } \
    > "$CORPUS/$name.rfc4571.bin"
done
printf '\x40\x01\x00\x05hello\x00\x00\x00' > "$CORPUS/channeldata.bin"
printf '[2001:db8::1]:3478' > "$CORPUS/address.txt"

echo "fuzz-wire: running for ${SECONDS_BUDGET}s" >&2
set +e
"$BIN" -max_total_time="$SECONDS_BUDGET" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
  -artifact_prefix="$ARTIFACTS/" "$@" "$CORPUS"
rc=$?
set -e
if [[ $rc -ne 0 ]]; then
  echo "fuzz-wire: FAILED (exit $rc); reproducer(s) in $ARTIFACTS" >&2
  exit "$rc"
fi
echo "fuzz-wire: no crashes in ${SECONDS_BUDGET}s" >&2
