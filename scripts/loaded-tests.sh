#!/usr/bin/env bash
# The whole test suite beside other load: two busy loops per core for as long as it runs, as
# on an overloaded server. Every test must pass here too (they compare hptop with truth they
# measure themselves over the same window, never with an absolute CPU band).
#   usage: scripts/loaded-tests.sh [cargo test args...]
set -euo pipefail
cd "$(dirname "$0")/.."
loops=$(( $(nproc) * 2 ))
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT INT TERM
for _ in $(seq "$loops"); do
  sh -c 'while :; do :; done' &
  pids+=("$!")
done
echo "loaded-tests: $loops busy loops on $(nproc) cores; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
start=$(date +%s)
status=0
cargo test "$@" || status=$?
echo "loaded-tests: exit $status after $(( $(date +%s) - start )) s; load: $(cut -d' ' -f1-3 /proc/loadavg)"
exit "$status"
