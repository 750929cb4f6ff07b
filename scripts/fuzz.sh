#!/usr/bin/env bash
# Run a cargo-fuzz target of fuzz/ for a while.
#   scripts/fuzz.sh [TARGET] [SECONDS]      (defaults: parse, 60)
# cargo-fuzz needs nightly compiler flags (-Zsanitizer); with only a stable
# toolchain, RUSTC_BOOTSTRAP=1 lets stable accept them. The corpus starts from
# the RFC 4475/5118 torture messages.
set -euo pipefail

target="${1:-parse}"
seconds="${2:-60}"
root="$(cd "$(dirname "$0")/.." && pwd)"

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

corpus="$root/fuzz/corpus/$target"
mkdir -p "$corpus"
if [ -z "$(ls -A "$corpus")" ]; then
    for f in "$root"/crates/sip/tests/torture/rfc4475/* "$root"/crates/sip/tests/torture/rfc5118/*; do
        cp "$f" "$corpus/$(basename "$f")"
    done
fi

cd "$root/fuzz"
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/fuzz/target}"
exec cargo fuzz run "$target" "$corpus" -- -max_total_time="$seconds" -max_len=8192
