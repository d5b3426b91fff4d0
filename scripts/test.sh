#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls exactly this): on a fresh Debian 12
# machine, as root, it installs what is missing, checks formatting and lints, builds every
# crate, and runs unit and integration tests (the latter boot real Slurm daemons) against
# the installed Slurm (22.05 on Debian 12), then the same again against Slurm 24.11 in a
# Debian 13 root and against the newest Slurm, 26.05, in a Debian sid root
# (scripts/test-release.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
trap 'echo "scripts/test.sh: ${SECONDS} s in all (exit $?)"' EXIT

./scripts/install-deps.sh --accounting
others=1
[ "${SKIP_OTHER_RELEASES:-${SKIP_SECOND_RELEASE:-0}}" = 1 ] && others=0
mkdir -p target
if [ "$others" = 1 ]; then
  # The other releases' roots are made (debootstrap, apt, PyTorch) while this release is
  # tested: that is mostly waiting on the network and the disk. Their test runs below wait
  # for them (a lock per root); a failure here shows again there.
  for r in 24.11 26.05; do
    ./scripts/test-release.sh "$r" --prepare >"target/prepare-$r.log" 2>&1 &
  done
fi
# PyTorch for the mlenv test (scripts/torch-venv.sh: made once, locked), fetched while the
# workspace builds; the test waits for it.
./scripts/torch-venv.sh >/dev/null 2>target/torch-venv.log &
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
# unsafe only where the manifests allow it, panic = "abort" refused, rust-version true.
./scripts/check-safety.sh
# Integration tests load the plugin .so files, which only a workspace build produces.
cargo build --workspace
./scripts/cargo-test.sh
# The Debian packages for this release: built, installed with apt-get, a local cluster on
# the installed files, purged, nothing left (the same runs in each release root below).
./scripts/test-packages.sh

# The other releases: the same suite against Slurm 24.11 (Debian 13) and 26.05 (Debian
# sid), each in a root cached in .release-roots/. SKIP_OTHER_RELEASES=1 leaves both out
# of a quick local run (SKIP_SECOND_RELEASE=1, its old name, too).
if [ "$others" = 1 ]; then
  echo "=== host release done after ${SECONDS} s"
  ./scripts/test-release.sh 24.11
  echo "=== Slurm 24.11 done after ${SECONDS} s"
  ./scripts/test-release.sh 26.05
fi
