#!/usr/bin/env bash
# Benchmark, not a test: on a node with NVIDIA GPUs, the wall time of one full
# `ml-healthcheck` run (NVML snapshot of every GPU, the kernel log, the judgement; no Slurm:
# --no-slurm) next to `nvidia-smi -q` (what site scripts parse), alternated N times
# (default 20), medians. Also saves the node's snapshot as a replayable fixture.
#   ./scripts/bench-healthcheck.sh [N] [FIXTURE_OUT]
# Without a GPU: ./scripts/bench-healthcheck.sh --fixture [N] (see below).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh
quiet() { "$@" >/dev/null 2>&1 || true; }
if [ "${1:-}" = --fixture ]; then
  # No GPU needed: a full passive run with every source (the 8-GPU snapshot fixture, the
  # XID kernel log fixture, a DGX H100-shaped sysfs tree from tests/fixtures/make-sysfs.sh)
  # next to the same run on an empty sysfs tree, alternated N times, medians; no Slurm.
  #   ./scripts/bench-healthcheck.sh --fixture [N]
  n=${2:-50}
  cargo build --release -q -p ml-healthcheck
  hc=$PWD/target/release/ml-healthcheck
  fx=$PWD/helpers/ml-healthcheck/tests/fixtures
  work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
  "$fx/make-sysfs.sh" "$work/sys"
  mkdir -p "$work/empty/bus/pci/devices"
  for t in sys empty; do
    printf '{"expect_gpus": 8, "ib_devices": 8, "ib_rate_gbps": 400, "sysfs_root": "%s", "kmsg": "%s", "state_dir": "%s", "killswitch": "%s"}\n' \
      "$work/$t" "$fx/kmsg-xid79" "$work/state" "$work/disable" > "$work/$t.json"
  done
  for _ in $(seq "$n"); do
    for t in sys empty; do
      time_ms quiet "$hc" --no-slurm --node bench --snapshot "$fx/h100x8-healthy.json" --config "$work/$t.json" >> "$work/$t.ms"
    done
  done
  echo "runs: $n, alternated"
  echo "all sources, $(ls "$work/sys/bus/pci/devices" | wc -l) PCI functions: median $(median < "$work/sys.ms") ms ($(spread < "$work/sys.ms"))"
  echo "empty sysfs tree:                 median $(median < "$work/empty.ms") ms ($(spread < "$work/empty.ms"))"
  exit 0
fi
n=${1:-20}
fixture=${2:-helpers/ml-healthcheck/tests/fixtures/$(hostname -s)-real.json}
command -v nvidia-smi >/dev/null || { echo "no nvidia-smi: run this on a GPU node" >&2; exit 1; }
cargo build --release -q -p ml-healthcheck
hc=target/release/ml-healthcheck
"$hc" --no-slurm --save-snapshot "$fixture" >/dev/null || true
echo "snapshot saved: $fixture ($(nvidia-smi -L | wc -l) GPUs, driver $(nvidia-smi --query-gpu=driver_version --format=csv,noheader | head -1))"
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
for _ in $(seq "$n"); do
  time_ms quiet "$hc" --no-slurm >> "$work/hc.ms"
  time_ms quiet nvidia-smi -q >> "$work/smi.ms"
done
ma=$(median < "$work/hc.ms"); mb=$(median < "$work/smi.ms")
echo "runs: $n, alternated"
echo "ml-healthcheck --no-slurm: median $ma ms"
echo "nvidia-smi -q:             median $mb ms"
awk -v a="$ma" -v b="$mb" 'BEGIN { printf "ratio ml-healthcheck / nvidia-smi -q: %.3f\n", a / b }'
