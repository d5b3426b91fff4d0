#!/usr/bin/env bash
# The whole suite against another Slurm release: a Debian root made with debootstrap (kept
# in .release-roots/<suite>, reused by later runs), that release's slurmctld, slurmd,
# slurmdbd, MariaDB and headers installed in it with apt, the workspace built against those
# headers (target/slurm-<release>) and tested there, with clippy on the code paths that
# only compile for that release. Run as root:
#   ./scripts/test-release.sh 24.11              Slurm 24.11 from Debian 13 (trixie)
#   ./scripts/test-release.sh 26.05              Slurm 26.05 from Debian unstable (sid)
#   ./scripts/test-release.sh 24.11 -- CMD...    run CMD in /project inside that root instead
#   ./scripts/test-release.sh 24.11 --prepare    only make the root and install into it
#                                                (scripts/test.sh does it in the background)
# One run per root at a time: a second waits for the first (a lock in .release-roots/).
# sid moves: its root is brought up to date with sid's Slurm on every run, and each run
# prints the exact Slurm version it tested.
set -euo pipefail
cd "$(dirname "$0")/.."
project=$PWD

release=${1:-}
shift || true
custom=()
prepare=0
if [ "${1:-}" = "--" ]; then shift; custom=("$@"); fi
if [ "${1:-}" = "--prepare" ]; then prepare=1; fi
case "$release" in
  24.11) suite=trixie; ports=25000-28999 ;;
  26.05) suite=sid; ports=29000-32767 ;;
  *) echo "usage: ./scripts/test-release.sh 24.11|26.05   (the release the host has is tested by ./scripts/test.sh)" >&2; exit 2 ;;
esac
[ "$(id -u)" -eq 0 ] || { echo "error: run as root (debootstrap, chroot, Slurm daemons)" >&2; exit 1; }

roots=$project/.release-roots
root=$roots/$suite
mkdir -p "$roots"
exec 8>"$roots/$suite.lock"
flock 8
rustup_home=${RUSTUP_HOME:-$HOME/.rustup}
cargo_home=${CARGO_HOME:-$HOME/.cargo}
[ -x "$cargo_home/bin/cargo" ] || { echo "error: no cargo in $cargo_home/bin (set CARGO_HOME)" >&2; exit 1; }

unmount_all() {  # everything mounted under the root, deepest first, never what is outside
  local m
  for m in $(awk -v r="$root/" 'index($2, r) == 1 { print $2 }' /proc/mounts | sort -r); do
    umount -l "$m" 2>/dev/null || true
  done
}
trap unmount_all EXIT
unmount_all

if [ ! -e "$root/.debootstrap-done" ]; then
  command -v debootstrap >/dev/null || {
    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap
  }
  mirror=$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  mirror=${mirror:-http://deb.debian.org/debian}
  if awk -v r="$root/" 'index($2, r) == 1 { found = 1 } END { exit !found }' /proc/mounts; then
    echo "error: something is still mounted under $root; not removing it" >&2; exit 1
  fi
  rm -rf "$root"
  mkdir -p "$roots"
  echo "making a Debian $suite root in $root (debootstrap, once)"
  if ! debootstrap --variant=minbase "$suite" "$root" "$mirror" > "$roots/$suite-debootstrap.log" 2>&1; then
    tail -n 20 "$roots/$suite-debootstrap.log" >&2; exit 1
  fi
  touch "$root/.debootstrap-done"
fi
if [ "$suite" = sid ]; then
  # Mirrors serve sid's Release file past its Valid-Until now and then; only this root
  # accepts that (a stale sid is still sid, and nothing here is trusted by the host).
  echo 'Acquire::Check-Valid-Until "false";' > "$root/etc/apt/apt.conf.d/99sid-valid-until"
fi

cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
# HTTPS from the root trusts what the host trusts (pip fetches PyTorch for the mlenv test;
# a site proxy's CA is in the host's bundle, not in Debian's).
mkdir -p "$root/etc/ssl"
cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/host-ca-certificates.crt" 2>/dev/null || true
pip_env=()
[ -s "$root/etc/ssl/host-ca-certificates.crt" ] && pip_env+=(PIP_CERT=/etc/ssl/host-ca-certificates.crt)
for v in PIP_INDEX_URL PIP_EXTRA_INDEX_URL PIP_TRUSTED_HOST PIP_DEFAULT_TIMEOUT; do
  [ -n "${!v:-}" ] && pip_env+=("$v=${!v}")
done
mkdir -p "$root/project" "$root/opt/rustup" "$root/opt/cargo"
mount -t proc proc "$root/proc"
for d in sys dev; do
  mount --rbind "/$d" "$root/$d"
  mount --make-rslave "$root/$d"   # unmounting here never reaches the host's mounts
done
mount --bind "$project" "$root/project"
mount --bind "$rustup_home" "$root/opt/rustup"
mount --bind "$cargo_home" "$root/opt/cargo"

in_root() {
  chroot "$root" /usr/bin/env -i HOME=/root TERM=dumb LANG=C.UTF-8 CI="${CI:-}" \
    PATH=/opt/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    RUSTUP_HOME=/opt/rustup CARGO_HOME=/opt/cargo CARGO_TARGET_DIR="/project/target/slurm-$release" \
    LOCAL_CLUSTER_PORTS="$ports" \
    "${pip_env[@]}" "$@" 8>&-   # the root's lock stays with this script, not a leftover child
}
if [ "${#custom[@]}" -gt 0 ]; then
  in_root bash -c 'cd /project && exec "$@"' bash "${custom[@]}"
  exit
fi
# What the root needs before building: Slurm of that release and the test dependencies
# (and, on sid, today's Slurm point release).
install_in_root() {
  in_root env SUITE="$suite" bash -euo pipefail -c '
    cd /project
    ./scripts/install-deps.sh --accounting
    if [ "$SUITE" = sid ]; then
      apt-get update -q >/dev/null
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q --only-upgrade \
        slurmctld slurmd slurm-client slurmdbd libslurm-dev >/dev/null
    fi'
}
if [ "$prepare" = 1 ]; then
  install_in_root
  # PyTorch for the mlenv test too (scripts/torch-venv.sh: once per Python version).
  in_root bash -c 'cd /project && ./scripts/torch-venv.sh' >/dev/null
  echo "=== Slurm $release (Debian $suite): root ready"
  exit
fi
echo "=== Slurm $release (Debian $suite): install, clippy, build, test"
install_in_root
in_root env RELEASE="$release" SUITE="$suite" bash -euo pipefail -c '
    cd /project
    # PyTorch for the mlenv test, fetched while the workspace builds (as in test.sh).
    mkdir -p "$CARGO_TARGET_DIR"
    ./scripts/torch-venv.sh >/dev/null 2>"$CARGO_TARGET_DIR/torch-venv.log" &
    version=$(slurmctld -V)
    echo "Slurm here: $version"
    case "$version" in
      *" $RELEASE".*) ;;
      *) echo "warning: Debian $SUITE now has $version, not $RELEASE: the matrix in README.md and scripts/test.sh names $RELEASE" >&2 ;;
    esac
    cargo clippy --workspace --all-targets -- -D warnings
    cargo build --workspace
    ./scripts/cargo-test.sh
    ./scripts/test-packages.sh
  '
