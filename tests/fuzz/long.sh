#!/usr/bin/env bash
# Long fuzzing run: every target under tests/fuzz for SECONDS each (default
# 600), one after another, seeded with the frames captured from the real
# broker (tests/data/*.bin) and a per-target corpus kept under
# target/fuzz-corpus/<target> (so a second run continues where the first
# stopped). Prints libFuzzer's "Done N runs in S second(s)" line per target
# and fails on the first crash (the input is kept under
# tests/fuzz/artifacts/<target>).
#
#   tests/fuzz/long.sh 600                  # every target, 10 min each
#   tests/fuzz/long.sh 300 pull_body route  # only these targets
#   nice -n 19 tests/fuzz/long.sh 900 &     # in the background on a shared machine
#
# FUZZ_RUNS=N also stops each target after N executions (libFuzzer -runs),
# whichever comes first. FUZZ_SANITIZER picks cargo-fuzz's sanitizer:
# "none" by default (the crate forbids unsafe code, and without
# AddressSanitizer the targets run several times faster), "address" as CI.
#
#   FUZZ_RUNS=10000000 nice tests/fuzz/long.sh 7200 frame   # 10 million runs of one target
#
# Needs a nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz --locked`).
# CI runs the short version (20 s per target) from .ci/run.
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-600}
sanitizer=${FUZZ_SANITIZER:-none}
extra=()
[ -n "${FUZZ_RUNS:-}" ] && extra+=("-runs=$FUZZ_RUNS")
shift || true
if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo +nightly fuzz list --fuzz-dir tests/fuzz)
fi
cargo +nightly fuzz build --fuzz-dir tests/fuzz -s "$sanitizer" >/dev/null
for target in "${targets[@]}"; do
  corpus=target/fuzz-corpus/$target
  mkdir -p "$corpus"
  cp tests/data/*.bin "$corpus"/
  log=target/fuzz-long-$target.log
  if ! cargo +nightly fuzz run --fuzz-dir tests/fuzz -s "$sanitizer" "$target" "$corpus" -- \
    -max_total_time="$seconds" "${extra[@]}" >"$log" 2>&1; then
    tail -n 40 "$log"
    echo "$target: CRASH (inputs under tests/fuzz/artifacts/$target, log $log)"
    exit 1
  fi
  echo "$target: $(grep -E '^Done [0-9]+ runs' "$log")"
done
