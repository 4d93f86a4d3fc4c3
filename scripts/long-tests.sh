#!/usr/bin/env bash
# The long tests (minutes each: thousands of threads, name factories, SIGSTOP storms): they are
# `#[ignore]`d in the plain suite so CI stays short. Run them before saying a collector change
# is done; each prints what it measured.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --release --test integration -- --ignored --nocapture "$@"
