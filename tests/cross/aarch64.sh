#!/usr/bin/env bash
# Embedded Linux proof: cross-builds the quickstart, producer and consumer
# examples for aarch64-unknown-linux-gnu with Debian 12's own Rust toolchain
# (rustc-web / cargo-web 1.96 with libstd-rust-web-dev:arm64, linked by
# gcc-aarch64-linux-gnu) and runs them under qemu-aarch64 (qemu-user) against
# the real brokers whose name server is ROCKETMQ_NAMESRV_ADDR.
#
#   eval "$(tests/broker/rocketmq.sh start)" && tests/cross/aarch64.sh
#
# Against a TLS cluster (`eval "$(ROCKETMQ_TLS=1 tests/broker/rocketmq.sh start)"`,
# which exports ROCKETMQ_TLS=1 and the CA file) the examples are built with
# the `tls` feature (rustls with ring, whose C and assembly parts the same
# gcc-aarch64-linux-gnu compiles) and every run speaks TLS.
#
# Installs the Debian packages it needs when they are missing (needs root or
# sudo; adds the arm64 architecture to dpkg). The binaries are linked
# statically (`-C target-feature=+crt-static`): under Debian 12's qemu-user
# 7.2 a dynamically linked aarch64 glibc program hangs at its first thread
# spawn (a program that only spawns and joins one thread hangs too), so that
# hang is the emulator's. The cross build has a target dir of its own
# (target/aarch64) and leaves the host build alone. Every emulated run is
# bounded by `timeout`; each run uses topics and groups of its own.
set -euo pipefail
cd "$(dirname "$0")/../.."

TRIPLE=aarch64-unknown-linux-gnu
TARGET_DIR=target/aarch64
BIN=$TARGET_DIR/$TRIPLE/release/examples
NAMESRV=${ROCKETMQ_NAMESRV_ADDR:-127.0.0.1:19876}
RUN_TIMEOUT=${CROSS_RUN_TIMEOUT:-120}
PACKAGES=(rustc-web cargo-web libstd-rust-web-dev:arm64 gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user)

log() { printf '[aarch64.sh] %s\n' "$*" >&2; }
die() { log "FAIL: $*"; exit 1; }
now() { date +%s.%N; }
took() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f s", b - a }'; }

# --- packages -----------------------------------------------------------------
t0=$(now)
installed() { [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]; }
missing=()
for p in "${PACKAGES[@]}"; do installed "$p" || missing+=("$p"); done
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing ${missing[*]}"
  SUDO=()
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || die "not root and no sudo: install ${missing[*]} by hand"
    SUDO=(sudo)
  fi
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    "${SUDO[@]}" dpkg --add-architecture arm64
  fi
  "${SUDO[@]}" apt-get update -q >&2
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
fi
log "packages ready in $(took "$t0")"

# Debian's toolchain by path: a rustup cargo/rustc earlier in PATH has no
# aarch64 standard library here.
CARGO=/usr/bin/cargo
export RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc
unset RUSTC_WRAPPER RUSTUP_TOOLCHAIN
[ -d "$("$RUSTC" --print sysroot)/lib/rustlib/$TRIPLE/lib" ] || die "$RUSTC has no $TRIPLE standard library"
log "toolchain: $("$RUSTC" --version), $("$CARGO" --version)"

# --- cross build ----------------------------------------------------------------
t0=$(now)
CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
  RUSTFLAGS="-C target-feature=+crt-static" \
  "$CARGO" build --release --locked --target "$TRIPLE" --target-dir "$TARGET_DIR" \
  --example quickstart --example producer --example consumer \
  $([ "${ROCKETMQ_TLS:-0}" = 1 ] && echo "--features tls")
if command -v file >/dev/null; then
  for e in quickstart producer consumer; do
    file -b "$BIN/$e" | grep -q 'ARM aarch64.*statically linked' \
      || die "$BIN/$e is not a static aarch64 executable: $(file -b "$BIN/$e")"
  done
fi
log "cross build in $(took "$t0")"
stripped=$(mktemp)
trap 'rm -f "$stripped"' EXIT
aarch64-linux-gnu-strip -o "$stripped" "$BIN/quickstart"
log "quickstart for $TRIPLE: $(stat -c %s "$BIN/quickstart") bytes, $(stat -c %s "$stripped") stripped"

# --- runs under qemu-aarch64 ----------------------------------------------------
run_id=$(date +%s)_$$
out=$(mktemp -d)
trap 'rm -f "$stripped"; rm -rf "$out"' EXIT

# run NAME [VAR=value ...]: the example under qemu, output into $out/NAME.
run() {
  local name=$1
  shift
  local t
  t=$(now)
  if ! env ROCKETMQ_NAMESRV_ADDR="$NAMESRV" "$@" timeout "$RUN_TIMEOUT" qemu-aarch64 "$BIN/$name" >"$out/$name" 2>&1; then
    cat "$out/$name" >&2
    die "$name under qemu-aarch64 failed or ran out of ${RUN_TIMEOUT} s"
  fi
  cat "$out/$name"
  log "$name under qemu-aarch64 in $(took "$t")"
}
expect() { # FILE REGEX WHAT
  grep -Eq "$2" "$1" || die "$(basename "$1"): $3 (no line matching /$2/)"
}

t_runs=$(now)

# Quickstart: creates its topic, sends one message and pulls it back; the
# pulled message must carry the id the broker acknowledged for the send.
run quickstart ROCKETMQ_EXAMPLE_TOPIC="Aarch64Quickstart_$run_id"
f=$out/quickstart
expect "$f" "^topic Aarch64Quickstart_$run_id created on \[.*broker-" "topic created"
expect "$f" '^sent: status SendOk, msg id [0-9A-F]{32},' "send acknowledged"
sent_id=$(sed -nE 's/^sent: status SendOk, msg id ([0-9A-F]{32}),.*/\1/p' "$f")
expect "$f" "^pulled: \"Hello, RocketMQ!\" tags Some\(\"greeting\"\) keys \[\"quickstart\"\] msg id $sent_id " \
  "pulled message is the one sent ($sent_id)"

# Producer: sync, 10 async, a batch and a delayed send through the public
# Producer (routing, health statistics, async callbacks on its threads).
run producer ROCKETMQ_EXAMPLE_TOPIC="Aarch64Producer_$run_id" ROCKETMQ_PRODUCER_GROUP="aarch64_producer_$run_id"
f=$out/producer
expect "$f" '^sync: [0-9A-F]{32} -> broker-[ab]/[0-9]+ offset [0-9]+$' "sync send acknowledged"
expect "$f" '^async: 10 of 10 acknowledged$' "all async sends acknowledged"
expect "$f" '^batch: ids [0-9A-F]{32}(,[0-9A-F]{32}){4}$' "batch of five acknowledged"
expect "$f" '^delayed \(level 3 = 10 s\): [0-9A-F]{32}$' "delayed send acknowledged"
ok=$(sed -nE 's/^broker-[ab]: .*, ([0-9]+) ok, ([0-9]+) failed, .*/\1/p' "$f" | awk '{ s += $1 } END { print s + 0 }')
failed=$(sed -nE 's/^broker-[ab]: .*, ([0-9]+) ok, ([0-9]+) failed, .*/\2/p' "$f" | awk '{ s += $1 } END { print s + 0 }')
# Statistics count answered heartbeats as successes too, hence "at least".
[ "$ok" -ge 13 ] && [ "$failed" = 0 ] || die "producer statistics: $ok ok (want >= 13: 1 sync, 10 async, 1 batch, 1 delayed), $failed failed"

# Consumer: a push consumer subscribed to "TagA || TagB" on a new topic with a
# new group; the example sends hello 0..9 tagged A, B, C in turn, so exactly
# the seven A/B messages must reach the listener, each once, and no TagC one.
run consumer ROCKETMQ_EXAMPLE_TOPIC="Aarch64Consumer_$run_id" ROCKETMQ_CONSUMER_GROUP="aarch64_consumer_$run_id"
f=$out/consumer
expect "$f" '^consumed 7 messages; assignment: ' "seven messages consumed"
got=$(sed -nE 's/^queue broker-[ab]:[0-9]+ offset [0-9]+ tag Some\("(Tag[AB])"\) body "(hello [0-9])".*/\2 \1/p' "$f" | sort | tr '\n' ',')
want="hello 0 TagA,hello 1 TagB,hello 3 TagA,hello 4 TagB,hello 6 TagA,hello 7 TagB,hello 9 TagA,"
[ "$got" = "$want" ] || die "consumer received [$got], want [$want]"
! grep -q 'TagC' "$f" || die "a TagC message reached the listener"

log "qemu runs in $(took "$t_runs")"
echo "aarch64 (qemu-aarch64): quickstart, producer and consumer passed against $NAMESRV$([ "${ROCKETMQ_TLS:-0}" = 1 ] && echo " over TLS")"
