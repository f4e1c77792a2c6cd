#!/usr/bin/env bash
# Honest MSRV: fails when a locked dependency declares a rust-version newer
# than the crate's own `rust-version` in Cargo.toml. Looks at the normal
# dependencies (not dev or build-only ones) with every feature on, as
# resolved in Cargo.lock (`cargo metadata --locked`). Needs jq.
#
#   tests/msrv.sh
#
# Our own code is checked by clippy's `incompatible_msrv` lint (on by
# default, reading the same `rust-version`), which `.ci/run` runs with
# warnings denied.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v jq >/dev/null; then
  # A fresh machine (CI runs as root): Debian's jq.
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    (apt-get update -qq && apt-get install -y -qq jq) >/dev/null 2>&1 || true
  fi
  command -v jq >/dev/null || { echo "tests/msrv.sh needs jq (apt-get install jq)"; exit 2; }
fi
meta=$(cargo metadata --format-version 1 --all-features --locked)
declared=$(jq -r '.packages[] | select(.name == "rocketmq-blocking") | .rust_version // empty' <<<"$meta")
[ -n "$declared" ] || { echo "Cargo.toml declares no rust-version"; exit 1; }

# Packages reachable from the crate through normal dependencies only.
reachable=$(jq -r '
  (.resolve.nodes | map({key: .id, value: [.deps[] | select(any(.dep_kinds[]; .kind == null)) | .pkg]}) | from_entries) as $g
  | (.packages[] | select(.name == "rocketmq-blocking") | .id) as $root
  | [$root] | until(. as $seen | ([.[] | $g[.][]] | unique - $seen) == []; . as $seen | (. + [.[] | $g[.][]]) | unique)
  | .[]' <<<"$meta")

# "1.77" / "1.77.1" as a number that sorts: major*1e6 + minor*1e3 + patch.
key() { awk -F. '{ printf "%d\n", $1 * 1000000 + $2 * 1000 + ($3 == "" ? 0 : $3) }' <<<"$1"; }
limit=$(key "$declared")
status=0
while IFS=$'\t' read -r id name version rv; do
  grep -qxF "$id" <<<"$reachable" || continue
  [ -n "$rv" ] || continue
  if [ "$(key "$rv")" -gt "$limit" ]; then
    echo "$name $version needs Rust $rv, more than the declared rust-version $declared"
    status=1
  fi
done < <(jq -r '.packages[] | [.id, .name, .version, (.rust_version // "")] | @tsv' <<<"$meta")
if [ "$status" -eq 0 ]; then
  echo "rust-version $declared covers every locked normal dependency"
fi
exit "$status"
