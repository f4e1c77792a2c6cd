#!/usr/bin/env bash
# Runs the whole test suite against real brokers: starts the NameServer and
# the two brokers (tests/broker/rocketmq.sh), runs `cargo test`, and stops
# the brokers again if this script started them.
#
#   tests/run.sh                 # RocketMQ version pinned in the harness
#   ROCKETMQ_VERSION=4.9.7 ROCKETMQ_PORT_OFFSET=100 tests/run.sh   # another release, own ports
#   tests/run.sh --test foundation --test broker_client              # some test files only
set -euo pipefail
cd "$(dirname "$0")/.."

harness=tests/broker/rocketmq.sh
started=0
if ! bash "$harness" status >/dev/null 2>&1; then
  started=1
fi
stop() { if [ "$started" = 1 ]; then bash "$harness" stop || true; fi; }
trap stop EXIT

eval "$(bash "$harness" start)"
export ROCKETMQ_NAMESRV_ADDR
echo "ROCKETMQ_NAMESRV_ADDR=$ROCKETMQ_NAMESRV_ADDR" >&2

if [ "$#" -eq 0 ]; then
  set -- --all-targets
fi
cargo test --all-features "$@"
# Extra checks that need the running brokers (CI: the aarch64 cross build under qemu).
if [ -n "${ROCKETMQ_AFTER_TESTS:-}" ]; then bash -c "$ROCKETMQ_AFTER_TESTS"; fi
# Doc tests (--all-targets leaves them out).
if [ "$*" = "--all-targets" ]; then
  cargo test --all-features --doc
fi
