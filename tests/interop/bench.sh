#!/usr/bin/env bash
# Side-by-side benchmark of the public APIs users call, on the same brokers in
# the same run, rounds interleaved: this crate (examples/bench.rs), the
# official Java client (tests/interop/java, interop.Bench, rocketmq-client at
# the brokers' version) and the Go client (tests/interop/go,
# github.com/apache/rocketmq-client-go/v2), every one with its defaults.
#
#   eval "$(tests/broker/rocketmq.sh start)"
#   tests/interop/bench.sh                  # the README run (1,000,000-message drains)
#   BENCH_SMOKE=1 tests/interop/bench.sh    # seconds: every client ran, nothing lost
#
# Every round runs, in turn (the clients' order rotates each round):
#   send   Producer::send / DefaultMQProducer.send / Go SendSync, one process
#          per client: the first send (start-up figure: process launch to its
#          acknowledgement), BENCH_WARMUP untimed sends, then per body size
#          (BENCH_SIZES) BENCH_SEND_N sends from 1 thread (latency p50, p99,
#          p999) and BENCH_SEND8_N from BENCH_THREADS threads (msg/s);
#   raw    the floor: one thread writing pre-encoded SEND_MESSAGE_V2 frames to
#          a plain socket, each answer read before the next (examples/bench.rs);
#   drain  PushConsumer / LitePullConsumer (rust), DefaultMQPushConsumer /
#          DefaultLitePullConsumer (java) and the Go push consumer, each a new
#          group from the first offset, read the BENCH_DRAIN_N messages stored
#          once per run in a topic of their own: msg/s from start() until the
#          last distinct message reaches the listener (is returned by poll).
# CPU seconds (whole process, measured part only) and peak RSS come from
# /proc/self in each client. Then the table, the ratios rust/java and rust/go
# against the targets, and an SVG chart: ${CARGO_TARGET_DIR:-target}/interop/
# bench.svg, copied to tests/interop/bench.svg unless BENCH_SMOKE is set.
#
# Settings (environment): BENCH_ROUNDS (2), BENCH_SEND_N (20000),
# BENCH_SEND8_N (40000), BENCH_THREADS (8), BENCH_SIZES (128,4096),
# BENCH_WARMUP (5000), BENCH_DRAIN_N (1000000), BENCH_QUEUES (4 per broker),
# ROCKETMQ_NAMESRV_ADDR (127.0.0.1:19876). BENCH_SMOKE=1 sets 1 round, 300 /
# 800 sends, 200 warm-up, a 5,000-message drain and a 240 s limit per client
# process (BENCH_RUN_TIMEOUT, 900) unless set otherwise. The
# brokers must be running; this script never starts or stops them (they keep
# the data: a 1,000,000-message drain topic of 128-byte bodies takes about
# 0.3 GB of commit log).
#
# Builds what it needs (cargo build --release, mvn compile, go build) into
# ${CARGO_TARGET_DIR:-target}/interop; every build and run is bounded by
# `timeout`. Exit status 1 when a client failed, a send failed or a drain lost
# a message.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"

if [ -n "${BENCH_SMOKE:-}" ]; then
  : "${BENCH_ROUNDS:=1}" "${BENCH_SEND_N:=300}" "${BENCH_SEND8_N:=800}" "${BENCH_WARMUP:=200}" "${BENCH_DRAIN_N:=5000}"
  : "${BENCH_RUN_TIMEOUT:=240}"
fi
export ROCKETMQ_NAMESRV_ADDR=${ROCKETMQ_NAMESRV_ADDR:-127.0.0.1:19876}
export BENCH_SEND_N=${BENCH_SEND_N:-20000} BENCH_SEND8_N=${BENCH_SEND8_N:-40000} BENCH_THREADS=${BENCH_THREADS:-8}
export BENCH_SIZES=${BENCH_SIZES:-128,4096} BENCH_WARMUP=${BENCH_WARMUP:-5000}
export BENCH_DRAIN_N=${BENCH_DRAIN_N:-1000000} BENCH_QUEUES=${BENCH_QUEUES:-4}
ROUNDS=${BENCH_ROUNDS:-2}
BUILD_LIMIT=${BENCH_BUILD_TIMEOUT:-900}
RUN_LIMIT=${BENCH_RUN_TIMEOUT:-900}
export BENCH_DRAIN_TIMEOUT=$((RUN_LIMIT - 60))
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
OUT=$TARGET/interop
mkdir -p "$OUT"

log() { printf '[bench.sh] %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

for tool in cargo mvn java go python3 timeout; do
  command -v "$tool" >/dev/null || die "$tool not found on PATH"
done

log "building: cargo build --release --example bench"
timeout "$BUILD_LIMIT" cargo build -q --release --example bench || die "cargo build failed"
RUST_BENCH=$TARGET/release/examples/bench

VERSION=$(timeout 60 "$RUST_BENCH" version | sed -n 's/^rust broker version=//p') ||
  die "brokers not reachable at $ROCKETMQ_NAMESRV_ADDR (start them: eval \"\$(tests/broker/rocketmq.sh start)\")"
[ -n "$VERSION" ] || die "could not read the brokers' version"
log "brokers: RocketMQ $VERSION at $ROCKETMQ_NAMESRV_ADDR"

log "building: mvn compile (tests/interop/java, rocketmq-client $VERSION)"
# (Debian's Maven 3.8 prints colour resets even with -B; sed drops them.)
timeout "$BUILD_LIMIT" mvn -q -B -Dstyle.color=never -f tests/interop/java/pom.xml \
  -Dinterop.buildDir="$OUT/java" -Drocketmq.version="$VERSION" compile 2>&1 | sed 's/\x1b\[0m//g' >&2 ||
  die "mvn compile failed"
JAVA_CP="$OUT/java/classes:$(cat "$OUT/java/dependencies.txt")"

log "building: go build (tests/interop/go)"
(cd tests/interop/go && timeout "$BUILD_LIMIT" go build -o "$OUT/go-bench" .) || die "go build failed"
GO_VERSION=$(cd tests/interop/go && go list -m -f '{{.Version}}' github.com/apache/rocketmq-client-go/v2)

STAMP=$$_$(date +%s)
SEND_TOPIC=bench_send_$STAMP
DRAIN_TOPIC=bench_drain_$STAMP
for t in "$SEND_TOPIC" "$DRAIN_TOPIC"; do
  BENCH_TOPIC=$t timeout 120 "$RUST_BENCH" create 2>/dev/null || die "could not create topic $t"
done
log "df before the fill: $(df -h "$ROOT" | awk 'NR == 2 { print $4 " free" }')"
log "filling $DRAIN_TOPIC with $BENCH_DRAIN_N messages (untimed)"
BENCH_TOPIC=$DRAIN_TOPIC timeout "$RUN_LIMIT" "$RUST_BENCH" fill >&2 || die "could not fill $DRAIN_TOPIC"

LOAD_AT_START=$(cut -d' ' -f1-3 /proc/loadavg)
RESULTS=$OUT/bench-results.txt
: >"$RESULTS"
failed=0
# run ROUND CLIENT MODE TOPIC: runs one client process, keeps its lines
# prefixed with the round and the load average when it started.
run() {
  local round=$1 client=$2 mode=$3 topic=$4 load rc=0 cmd
  load=$(cut -d' ' -f1 /proc/loadavg)
  case $client in
    rust | raw) cmd=("$RUST_BENCH" "$mode") ;;
    java) cmd=(java -cp "$JAVA_CP" -Drocketmq.log.root="$OUT/java-logs" interop.Bench "$mode") ;;
    go) cmd=("$OUT/go-bench" "$mode") ;;
  esac
  log "round $round: $client $mode (load $load)"
  local t0=${EPOCHREALTIME/[.,]/}
  BENCH_T0_US=$t0 BENCH_TOPIC=$topic timeout "$RUN_LIMIT" "${cmd[@]}" \
    >"$OUT/bench-$client-$mode.out" 2>"$OUT/bench-$client-$mode.err" || rc=$?
  sed 's/^/    /' "$OUT/bench-$client-$mode.out" >&2
  if [ "$rc" != 0 ]; then
    log "$client $mode failed (exit $rc); stderr:"
    tail -n 20 "$OUT/bench-$client-$mode.err" >&2
    failed=1
  fi
  sed "s/^/round=$round load=$load /" "$OUT/bench-$client-$mode.out" >>"$RESULTS"
}

clients=(rust java go)
for round in $(seq 1 "$ROUNDS"); do
  for c in "${clients[@]}"; do run "$round" "$c" send "$SEND_TOPIC"; done
  run "$round" raw raw "$SEND_TOPIC"
  for c in "${clients[@]}"; do run "$round" "$c" push "$DRAIN_TOPIC"; done
  for c in "${clients[@]}"; do [ "$c" = go ] || run "$round" "$c" lite "$DRAIN_TOPIC"; done
  clients=("${clients[@]:1}" "${clients[0]}") # rotate who goes first
done

SVG_COPY=$ROOT/tests/interop/bench.svg
[ -z "${BENCH_SMOKE:-}" ] || SVG_COPY=
python3 tests/interop/bench_report.py --results "$RESULTS" --svg "$OUT/bench.svg" ${SVG_COPY:+--svg-copy "$SVG_COPY"} \
  --title "RocketMQ $VERSION brokers; rust: this crate, java: rocketmq-client $VERSION, go: rocketmq-client-go $GO_VERSION" \
  --setup "sends: ${BENCH_SEND_N} x 1 thread, ${BENCH_SEND8_N} x ${BENCH_THREADS} threads per size (${BENCH_SIZES} B), warm-up ${BENCH_WARMUP}; drain ${BENCH_DRAIN_N} stored messages of ${BENCH_SIZES%%,*} B; $((2 * BENCH_QUEUES)) queues; ${ROUNDS} round(s); $(nproc) cores; load average (1, 5, 15 min) before round 1: ${LOAD_AT_START}" ||
  failed=1
exit "$failed"
