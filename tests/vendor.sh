#!/usr/bin/env bash
# Restricted-build proof: vendors every dependency with `cargo vendor`, then
# builds offline and locked from the vendored tree alone, with default
# features and with --no-default-features.
#
#   tests/vendor.sh
#
# Works on a copy of the crate in a temporary directory (the repository is
# not touched) and removes it on exit. `cargo vendor` is the only step that
# reads the registry; the builds then run with an empty CARGO_HOME and
# --offline, so nothing but the vendored sources can be used.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO=${CARGO:-cargo}
log() { printf '[vendor.sh] %s\n' "$*" >&2; }
die() { log "FAIL: $*"; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
copy=$tmp/rocketmq-blocking
mkdir -p "$copy"

# The crate's files as in the work tree (tracked and new, not ignored ones).
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  while IFS= read -r -d '' f; do
    if [ -e "$f" ]; then printf '%s\0' "$f"; fi
  done < <(git ls-files -z --cached --others --exclude-standard) | tar --null -T - -cf - | tar -xf - -C "$copy"
else
  tar --exclude=./target --exclude=./.git -cf - . | tar -xf - -C "$copy"
fi

log "cargo vendor into $tmp/vendor"
mkdir -p "$copy/.cargo"
(cd "$copy" && "$CARGO" vendor --locked --versioned-dirs "$tmp/vendor" >"$copy/.cargo/config.toml")
grep -q "directory = \"$tmp/vendor\"" "$copy/.cargo/config.toml" || die "cargo vendor wrote no source replacement"
log "$(find "$tmp/vendor" -mindepth 1 -maxdepth 1 -type d | wc -l) crates vendored"

# An empty CARGO_HOME: no registry cache, no credentials, no global config.
export CARGO_HOME=$tmp/cargo-home CARGO_TARGET_DIR=$tmp/target CARGO_NET_OFFLINE=true
mkdir -p "$CARGO_HOME"
for features in "" "--no-default-features"; do
  log "cargo build --offline --locked $features"
  # shellcheck disable=SC2086 # $features is one flag or none
  (cd "$copy" && "$CARGO" build --offline --locked $features) || die "offline build ($features) failed"
done
[ -z "$(find "$CARGO_HOME" -name '*.crate' -o -path '*/registry/src/*' | head -n 1)" ] || die "the offline builds used a registry"
echo "vendored offline build: default features and --no-default-features passed"
