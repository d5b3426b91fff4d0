#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls exactly this): on a fresh Debian 12
# machine, as root, it installs what is missing, checks formatting and lints, builds every
# crate, and runs unit and integration tests (the latter boot real Slurm daemons).
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-deps.sh --accounting
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
# Integration tests load the plugin .so files, which only a workspace build produces.
cargo build --workspace
cargo test --workspace
