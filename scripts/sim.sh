#!/usr/bin/env bash
# Run the deterministic simulation of the engine over many seeds, in release.
#   scripts/sim.sh [SEEDS]        (default 5000)
# A failing seed is printed with the command that replays it exactly
# (SIM_SEED=K cargo test -p engine --test sim -- --nocapture).
set -euo pipefail

seeds="${1:-5000}"
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
echo "sim: running $seeds seeds (release)"
start=$(date +%s)
status=0
SIM_SEEDS="$seeds" cargo test --release -p engine --test sim sim_many_seeds -- --nocapture || status=$?
echo "sim: $seeds seeds, $(( $(date +%s) - start )) s wall (including the build), exit $status"
exit "$status"
