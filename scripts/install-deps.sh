#!/usr/bin/env bash
# Installs what this project needs to build and to run its local Slurm cluster, on
# Debian 12 / Ubuntu, as root. Idempotent: when everything is there it only checks.
#   ./scripts/install-deps.sh [--accounting]     (--accounting adds slurmdbd and MariaDB)
set -euo pipefail

pkgs=(
  slurmctld slurmd slurm-client libslurm-dev munge   # the daemons, clients and headers
  libclang-dev                                       # bindgen reads the Slurm headers with it
  gcc libc6-dev binutils pkg-config ca-certificates  # linking (cc), nm/readelf in tests, crates.io
  passwd                                             # useradd: tests create real users
  python3 python3-venv                               # the PyTorch end-to-end test (scripts/torch-venv.sh)
  debootstrap                                        # the other releases' roots (scripts/test-release.sh)
)
if [ "${1:-}" = "--accounting" ]; then
  pkgs+=(slurmdbd mariadb-server mariadb-client)
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "error: run as root: the local cluster starts munged, slurmctld and slurmd" >&2
  exit 1
fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing: ${missing[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "error: cargo not found. Install Rust with rustup (https://rustup.rs); Debian's rustc is too old for bindgen." >&2
  exit 1
fi
