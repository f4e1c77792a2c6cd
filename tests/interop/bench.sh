#!/usr/bin/env bash
# Side-by-side benchmark on the same brokers in the same run: this crate
# (examples/bench.rs), the official Java client (tests/interop/java,
# interop.Bench, rocketmq-client at the brokers' version) and the Go client
# (tests/interop/go, github.com/apache/rocketmq-client-go/v2), in sequence
# rust, java, go, each on a topic of its own created for this run (4 queues
# on each of the two brokers). Prints every client's lines, then a table and
# the ratios rust/java and rust/go. "cpu s" is the CPU time of the whole
# client process; "load1" the load average when the client started (the
# brokers share the machine: the previous client's run shows in it).
#
#   eval "$(tests/broker/rocketmq.sh start)"
#   tests/interop/bench.sh
#   BENCH_N=50000 BENCH_SIZE=1024 BENCH_THREADS=8 BENCH_ROUNDS=2 tests/interop/bench.sh
#
# Settings (environment): BENCH_N (20000 messages), BENCH_SIZE (128 bytes),
# BENCH_THREADS (4), BENCH_WARMUP (2000 untimed messages first),
# BENCH_QUEUES (4 per broker), BENCH_ROUNDS (1: rounds of rust, java, go),
# ROCKETMQ_NAMESRV_ADDR (127.0.0.1:19876). The brokers must be running;
# this script never starts or stops them.
#
# Builds what it needs (cargo build --release, mvn compile, go build) into
# ${CARGO_TARGET_DIR:-target}/interop; every build and run is bounded by
# `timeout`. Exit status 1 when a client failed or lost messages.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"

export ROCKETMQ_NAMESRV_ADDR=${ROCKETMQ_NAMESRV_ADDR:-127.0.0.1:19876}
export BENCH_N=${BENCH_N:-20000} BENCH_SIZE=${BENCH_SIZE:-128} BENCH_THREADS=${BENCH_THREADS:-4}
export BENCH_WARMUP=${BENCH_WARMUP:-2000} BENCH_QUEUES=${BENCH_QUEUES:-4}
ROUNDS=${BENCH_ROUNDS:-1}
BUILD_LIMIT=${BENCH_BUILD_TIMEOUT:-900}
RUN_LIMIT=${BENCH_RUN_TIMEOUT:-600}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
OUT=$TARGET/interop
mkdir -p "$OUT"

log() { printf '[bench.sh] %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

for tool in cargo mvn java go timeout; do
  command -v "$tool" >/dev/null || die "$tool not found on PATH"
done

log "building: cargo build --release --example bench"
timeout "$BUILD_LIMIT" cargo build -q --release --example bench || die "cargo build failed"
RUST_BENCH=$TARGET/release/examples/bench

VERSION=$(timeout 60 "$RUST_BENCH" --broker-version | sed -n 's/^rust broker version=//p') ||
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

# run CLIENT ROUND: creates the topic, runs the client, keeps its lines.
RESULTS=$OUT/bench-results.txt
: >"$RESULTS"
failed=0
run() {
  local client=$1 round=$2 topic load rc=0
  topic=bench_${client}_$$_$(date +%s)_r$round
  timeout 120 "$RUST_BENCH" --create-only --topic "$topic" --queues "$BENCH_QUEUES" 2>/dev/null ||
    die "could not create topic $topic"
  load=$(cut -d' ' -f1 /proc/loadavg)
  log "round $round: $client on $topic (load $load)"
  local cmd
  case $client in
    rust) cmd=("$RUST_BENCH" --topic "$topic") ;;
    java) cmd=(java -cp "$JAVA_CP" -Drocketmq.log.root="$OUT/java-logs" interop.Bench) ;;
    go) cmd=("$OUT/go-bench") ;;
  esac
  # cpu: user + sys seconds of the whole client process (start-up, warm-up,
  # both measures), as bash's `time` reports it.
  local TIMEFORMAT='%U %S' cpu
  { time BENCH_TOPIC=$topic timeout "$RUN_LIMIT" "${cmd[@]}" >"$OUT/bench-$client.out" 2>"$OUT/bench-$client.err"; } \
    2>"$OUT/bench-$client.time" || rc=$?
  cpu=$(awk '{ printf "%.1f", $1 + $2 }' "$OUT/bench-$client.time")
  cat "$OUT/bench-$client.out"
  if [ "$rc" != 0 ]; then
    log "$client failed (exit $rc); stderr:"
    tail -n 20 "$OUT/bench-$client.err" >&2
    failed=1
  fi
  sed "s/^/$round load=$load cpu=$cpu /" "$OUT/bench-$client.out" >>"$RESULTS"
}

for round in $(seq 1 "$ROUNDS"); do
  for client in rust java go; do run "$client" "$round"; done
done

echo
echo "RocketMQ $VERSION brokers; rust: this crate; java: rocketmq-client $VERSION; go: rocketmq-client-go $GO_VERSION"
echo "msgs=$BENCH_N size=$BENCH_SIZE threads=$BENCH_THREADS warmup=$BENCH_WARMUP queues=$((2 * BENCH_QUEUES)); $(nproc) cores"
awk '
  function field(name,   i, kv) {
    for (i = 1; i <= NF; i++) { split($i, kv, "="); if (kv[1] == name) return kv[2] }
    return "n/a"
  }
  # $1 round, $2 load=L, $3 cpu=C, $4 client, $5 measure, then name=value pairs
  $5 == "send" { key = $1 SUBSEP $4; send[key] = field("msgs_per_s"); p50[key] = field("p50_us"); p99[key] = field("p99_us")
                 load[key] = field("load"); cpu[key] = field("cpu"); rounds[$1] = 1 }
  $5 == "pull" { pull[$1 SUBSEP $4] = field("msgs_per_s") }
  function ratio(a, b) { return (a == "" || b == "" || a == "n/a" || b == "n/a" || b + 0 == 0) ? "n/a" : sprintf("%.2f", a / b) }
  END {
    printf "\n%-6s %-6s %12s %12s %12s %12s %7s %7s\n", "round", "client", "send msg/s", "send p50 us", "send p99 us",
      "pull msg/s", "cpu s", "load1"
    n = split("rust java go", clients, " ")
    for (r = 1; r in rounds; r++) {
      for (c = 1; c <= n; c++) {
        k = r SUBSEP clients[c]
        printf "%-6s %-6s %12s %12s %12s %12s %7s %7s\n", r, clients[c], send[k], p50[k], p99[k], pull[k], cpu[k], load[k]
      }
    }
    printf "\n%-6s %-22s %12s %12s\n", "round", "ratio", "rust/java", "rust/go"
    for (r = 1; r in rounds; r++) {
      R = r SUBSEP "rust"; J = r SUBSEP "java"; G = r SUBSEP "go"
      printf "%-6s %-22s %12s %12s\n", r, "send msg/s (>1 better)", ratio(send[R], send[J]), ratio(send[R], send[G])
      printf "%-6s %-22s %12s %12s\n", r, "send p99 (<1 better)", ratio(p99[R], p99[J]), ratio(p99[R], p99[G])
      printf "%-6s %-22s %12s %12s\n", r, "pull msg/s (>1 better)", ratio(pull[R], pull[J]), ratio(pull[R], pull[G])
    }
  }
' "$RESULTS"
exit "$failed"
