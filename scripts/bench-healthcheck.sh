#!/usr/bin/env bash
# Benchmark, not a test: on a node with NVIDIA GPUs, the wall time of one full
# `ml-healthcheck` run (NVML snapshot of every GPU, the kernel log, the judgement; no Slurm:
# --no-slurm) next to `nvidia-smi -q` (what site scripts parse), alternated N times
# (default 20), medians. Also saves the node's snapshot as a replayable fixture.
#   ./scripts/bench-healthcheck.sh [N] [FIXTURE_OUT]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh
n=${1:-20}
fixture=${2:-helpers/ml-healthcheck/tests/fixtures/$(hostname -s)-real.json}
command -v nvidia-smi >/dev/null || { echo "no nvidia-smi: run this on a GPU node" >&2; exit 1; }
cargo build --release -q -p ml-healthcheck
hc=target/release/ml-healthcheck
"$hc" --no-slurm --save-snapshot "$fixture" >/dev/null || true
echo "snapshot saved: $fixture ($(nvidia-smi -L | wc -l) GPUs, driver $(nvidia-smi --query-gpu=driver_version --format=csv,noheader | head -1))"
quiet() { "$@" >/dev/null 2>&1 || true; }
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
