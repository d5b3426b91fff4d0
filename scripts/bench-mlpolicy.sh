#!/usr/bin/env bash
# Benchmark (not a test): what a job_submit policy adds to slurmctld's submission path.
# Three local clusters side by side, state on tmpfs - no job_submit plugin, job_submit/lua
# with conf-examples/job_submit.lua, and job_submit_mlpolicy.so with
# conf-examples/mlpolicy.json (the same rules) - each gets JOBS held jobs
# (`sbatch --hold`) from a regular user, in ROUNDS alternated batches; after each batch
# sdiag's average REQUEST_SUBMIT_BATCH_JOB time is read (reset with sdiag -r before it).
# Prints the median per configuration, the added times and their ratio, then the engine's
# own cost per job. Run as root on a quiet machine:
#   ./scripts/bench-mlpolicy.sh [JOBS] [ROUNDS]        (default 2000 jobs in 4 rounds)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh
JOBS=${1:-2000}
ROUNDS=${2:-4}
PER=$((JOBS / ROUNDS))
USER_NAME=mlbench
[ "$(id -u)" -eq 0 ] || { echo "run as root (the local clusters start Slurm daemons)" >&2; exit 1; }
cargo build -q --release -p job-submit-mlpolicy -p local-cluster
cargo build -q --release -p mlpolicy --example engine_bench   # a target flag limits a build to it
id -u "$USER_NAME" >/dev/null 2>&1 || useradd --user-group --shell /bin/bash "$USER_NAME"
lc=target/release/local-cluster

# State on tmpfs: on disk, slurmctld's writes of each job's script dominate and drift.
bench_clusters /dev/shm/bench-mlpolicy.XXXXXX none lua mlpolicy

parts=()
for p in gpu cpu interactive; do parts+=(--conf "PartitionName=$p Nodes=n[1-3] State=UP"); done
"$lc" start --dir "$work/none" "${parts[@]}" >/dev/null
"$lc" start --dir "$work/lua" "${parts[@]}" --conf JobSubmitPlugins=lua \
  --file "job_submit.lua=$PWD/conf-examples/job_submit.lua" >/dev/null
"$lc" start --dir "$work/mlpolicy" "${parts[@]}" \
  --job-submit "$PWD/target/release/libjob_submit_mlpolicy.so" \
  --file "mlpolicy.json=$PWD/conf-examples/mlpolicy.json" >/dev/null

submit() {  # config, then sbatch arguments; as the regular user
  SLURM_CONF=$work/$1/slurm.conf runuser -u "$USER_NAME" -- sbatch --hold -o /dev/null "${@:2}" --wrap true
}
# Each configuration does what it claims before it is timed.
for c in lua mlpolicy; do
  if submit "$c" -p gpu >/dev/null 2>&1; then echo "error: $c accepted a GPU-less job in partition gpu" >&2; exit 1; fi
done
submit none -p gpu >/dev/null

for c in "${configs[@]}"; do : > "$work/$c.us"; done
for ((r = 0; r < ROUNDS; r++)); do
  for c in "${configs[@]}"; do
    SLURM_CONF=$work/$c/slurm.conf sdiag -r >/dev/null
    for ((i = 0; i < PER; i++)); do submit "$c" -p gpu --gpus-per-node=1 >/dev/null; done
    SLURM_CONF=$work/$c/slurm.conf sdiag | awk '/REQUEST_SUBMIT_BATCH_JOB/ { for (i = 1; i <= NF; i++) if ($i ~ /^ave_time:/) { sub("ave_time:", "", $i); print $i } }' >> "$work/$c.us"
  done
done

none=$(median < "$work/none.us"); lua=$(median < "$work/lua.us"); ml=$(median < "$work/mlpolicy.us")
echo "sbatch --hold, $JOBS jobs per configuration in $ROUNDS alternated rounds; sdiag REQUEST_SUBMIT_BATCH_JOB ave_time, median of rounds (range):"
awk -v a="$none" -v b="$lua" -v c="$ml" -v ra="$(spread < "$work/none.us")" -v rb="$(spread < "$work/lua.us")" -v rc="$(spread < "$work/mlpolicy.us")" 'BEGIN {
  printf "  no plugin:       %6.0f us  (%s)\n", a, ra
  printf "  job_submit/lua:  %6.0f us  (%s)  added %+.0f us\n", b, rb, b - a
  printf "  mlpolicy:        %6.0f us  (%s)  added %+.0f us\n", c, rc, c - a
  printf "  mlpolicy / no plugin: %.3f\n", c / a
  if (b - a > 0) printf "  mlpolicy added / lua added: %.2f\n", (c - a) / (b - a)
}'
target/release/examples/engine_bench
