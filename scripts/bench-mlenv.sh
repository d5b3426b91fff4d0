#!/usr/bin/env bash
# Benchmark (not a test): what mlenv adds to a step. `srun -N3 -n6 true` on three local
# clusters side by side - no plugin, spank_mlenv.so, and a TaskProlog script that exports
# the same variables the way site scripts do (scontrol show hostnames | head -n1, ...) -
# alternated run by run; medians and ratios. Run as root on a quiet machine:
#   ./scripts/bench-mlenv.sh [RUNS]        (default 50)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh
RUNS=${1:-50}
[ "$(id -u)" -eq 0 ] || { echo "run as root (the local clusters start Slurm daemons)" >&2; exit 1; }
cargo build -q --release -p spank-mlenv -p local-cluster
lc=target/release/local-cluster

bench_clusters /tmp/bench-mlenv.XXXXXX none mlenv taskprolog

# The common way: a TaskProlog prints `export NAME=value` lines for each task.
cat > "$work/taskprolog.sh" <<'SCRIPT'
#!/bin/bash
master=$(scontrol show hostnames "$SLURM_STEP_NODELIST" | head -n1)
echo "export MASTER_ADDR=$master"
echo "export MASTER_PORT=$((20000 + SLURM_JOB_ID % 1250 * 8 + SLURM_STEP_ID % 8 + 1))"
echo "export RANK=$SLURM_PROCID"
echo "export LOCAL_RANK=$SLURM_LOCALID"
echo "export WORLD_SIZE=$SLURM_NTASKS"
echo "export NODE_RANK=$SLURM_NODEID"
SCRIPT
chmod 0755 "$work/taskprolog.sh"

"$lc" start --dir "$work/none" >/dev/null
"$lc" start --dir "$work/mlenv" --spank "$PWD/target/release/libspank_mlenv.so" >/dev/null
"$lc" start --dir "$work/taskprolog" --conf "TaskProlog=$work/taskprolog.sh" >/dev/null

# Each configuration does what it claims before it is timed.
for c in mlenv taskprolog; do
  got=$(SLURM_CONF=$work/$c/slurm.conf srun -N3 -n6 printenv MASTER_ADDR | sort -u)
  [ "$got" = n1 ] || { echo "error: $c: MASTER_ADDR is '$got', not n1" >&2; exit 1; }
done
[ -z "$(SLURM_CONF=$work/none/slurm.conf srun -n1 printenv MASTER_ADDR 2>/dev/null || true)" ]

for c in "${configs[@]}"; do : > "$work/$c.ms"; done
for ((i = 0; i < RUNS; i++)); do
  for c in "${configs[@]}"; do
    SLURM_CONF=$work/$c/slurm.conf time_ms srun -N3 -n6 true >> "$work/$c.ms"
  done
done

none=$(median < "$work/none.ms"); mlenv=$(median < "$work/mlenv.ms"); tp=$(median < "$work/taskprolog.ms")
echo "srun -N3 -n6 true, $RUNS runs each, alternated; median wall time:"
awk -v a="$none" -v b="$mlenv" -v c="$tp" 'BEGIN {
  printf "  no plugin:   %8.1f ms\n", a
  printf "  mlenv:       %8.1f ms   (%.3fx no plugin)\n", b, b / a
  printf "  TaskProlog:  %8.1f ms   (%.3fx no plugin)\n", c, c / a
  printf "  mlenv / TaskProlog: %.3f\n", b / c
}'
