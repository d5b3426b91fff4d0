#!/usr/bin/env bash
# Benchmark (not a test), two parts.
#
# 1. What a job_submit policy adds to slurmctld's submission path. Three local clusters
# side by side, state on tmpfs - no job_submit plugin, job_submit/lua with
# conf-examples/job_submit.lua, and job_submit_mlpolicy.so with conf-examples/mlpolicy.json
# (the same rules) - each gets JOBS held jobs (`sbatch --hold`) from a regular user, in
# ROUNDS alternated batches; after each batch sdiag's average REQUEST_SUBMIT_BATCH_JOB time
# is read (reset with sdiag -r before it). Prints the median per configuration, the added
# times and their ratio, then the engine's own cost per job.
#
# 2. The first submission after `scontrol reconfigure`, with a policy whose load is slow on
# purpose: ADMINS admin user names (the same local user; each a getpwnam, as a slow
# directory service would make a few). The plugin before the reload moved to its own
# thread (OLD_REV, built from git into target/bench-old-mlpolicy) against the current one,
# side by side: RELOAD_ROUNDS alternated rounds of reconfigure + one held job; sbatch's wall
# time as the user sees it and sdiag's REQUEST_SUBMIT_BATCH_JOB time; medians and ratio.
#
# Run as root on a quiet machine:
#   ./scripts/bench-mlpolicy.sh [JOBS] [ROUNDS]   (default 2000 jobs in 4 rounds; then part 2)
#   ./scripts/bench-mlpolicy.sh reload            (part 2 only)
# Part 2's knobs: RELOAD_ROUNDS (default 7), ADMINS (default 20000), OLD_REV (default
# cfcdaaa: the plugin reloaded on the submission path until 5966da6, and cfcdaaa is the
# last commit before it whose tree builds).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh
MODE=all
if [ "${1:-}" = reload ]; then MODE=reload; shift; fi
JOBS=${1:-2000}
ROUNDS=${2:-4}
PER=$((JOBS / ROUNDS))
RELOAD_ROUNDS=${RELOAD_ROUNDS:-7}
ADMINS=${ADMINS:-20000}
OLD_REV=${OLD_REV:-cfcdaaa}
USER_NAME=mlbench
[ "$(id -u)" -eq 0 ] || { echo "run as root (the local clusters start Slurm daemons)" >&2; exit 1; }
cargo build -q --release -p job-submit-mlpolicy -p local-cluster
cargo build -q --release -p mlpolicy --example engine_bench   # a target flag limits a build to it
id -u "$USER_NAME" >/dev/null 2>&1 || useradd --user-group --shell /bin/bash "$USER_NAME"
lc=target/release/local-cluster

parts=()
for p in gpu cpu interactive; do parts+=(--conf "PartitionName=$p Nodes=n[1-3] State=UP"); done
submit() {  # config, then sbatch arguments; as the regular user
  SLURM_CONF=$work/$1/slurm.conf runuser -u "$USER_NAME" -- sbatch --hold -o /dev/null "${@:2}" --wrap true
}
quiet_submit() { submit "$@" >/dev/null; }
sdiag_us() {  # config, then a field of sdiag's REQUEST_SUBMIT_BATCH_JOB line (ave_time, total_time)
  SLURM_CONF=$work/$1/slurm.conf sdiag | awk -v f="$2:" '/REQUEST_SUBMIT_BATCH_JOB/ { for (i = 1; i <= NF; i++) if (index($i, f) == 1) { sub(f, "", $i); print $i } }'
}

# Part 1: each configuration does what it claims before it is timed.
submission_cost() {
  "$lc" start --dir "$work/none" "${parts[@]}" >/dev/null
  "$lc" start --dir "$work/lua" "${parts[@]}" --conf JobSubmitPlugins=lua \
    --file "job_submit.lua=$PWD/conf-examples/job_submit.lua" >/dev/null
  "$lc" start --dir "$work/mlpolicy" "${parts[@]}" \
    --job-submit "$PWD/target/release/libjob_submit_mlpolicy.so" \
    --file "mlpolicy.json=$PWD/conf-examples/mlpolicy.json" >/dev/null
  for c in lua mlpolicy; do
    if submit "$c" -p gpu >/dev/null 2>&1; then echo "error: $c accepted a GPU-less job in partition gpu" >&2; exit 1; fi
  done
  submit none -p gpu >/dev/null

  for c in none lua mlpolicy; do : > "$work/$c.us"; done
  for ((r = 0; r < ROUNDS; r++)); do
    for c in none lua mlpolicy; do
      SLURM_CONF=$work/$c/slurm.conf sdiag -r >/dev/null
      for ((i = 0; i < PER; i++)); do submit "$c" -p gpu --gpus-per-node=1 >/dev/null; done
      sdiag_us "$c" ave_time >> "$work/$c.us"
    done
  done

  local none lua ml
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
}

# Part 2: the plugin of OLD_REV, built once in its own worktree and target dir; sets $old.
old_plugin() {
  local rev src=target/bench-old-mlpolicy/src
  rev=$(git rev-parse --verify "$OLD_REV^{commit}")
  if [ "$(git -C "$src" rev-parse HEAD 2>/dev/null)" != "$rev" ]; then
    git worktree remove --force "$src" 2>/dev/null || rm -rf "$src"
    git worktree prune
    git worktree add --detach "$src" "$rev" >/dev/null 2>&1
  fi
  (cd "$src" && CARGO_TARGET_DIR=$PWD/../target cargo build -q --release -p job-submit-mlpolicy) \
    || { echo "error: building the plugin of $OLD_REV failed" >&2; exit 1; }
  old=$PWD/target/bench-old-mlpolicy/target/release/libjob_submit_mlpolicy.so
}

# Part 2: the first submission after a reconfigure, old plugin against new.
reload_latency() {
  local old policy=$work/slow-mlpolicy.json
  old_plugin
  # The example's rules with ADMINS admin names to resolve at each load.
  { sed -n '1,/"users"/p' conf-examples/mlpolicy.json | sed '$d'
    printf '    "users": ['; for ((i = 1; i < ADMINS; i++)); do printf '"nobody", '; done; printf '"nobody"],\n'
    sed -n '/"users"/,$p' conf-examples/mlpolicy.json | sed 1d
  } > "$policy"
  "$lc" start --dir "$work/old" "${parts[@]}" --job-submit "$old" --file "mlpolicy.json=$policy" >/dev/null
  "$lc" start --dir "$work/new" "${parts[@]}" \
    --job-submit "$PWD/target/release/libjob_submit_mlpolicy.so" --file "mlpolicy.json=$policy" >/dev/null
  for c in old new; do
    if submit "$c" -p gpu >/dev/null 2>&1; then echo "error: $c accepted a GPU-less job in partition gpu" >&2; exit 1; fi
    : > "$work/$c.ms"; : > "$work/$c.first-us"
  done
  for ((r = 0; r < RELOAD_ROUNDS; r++)); do
    # last_update has one-second resolution; the new plugin's reload of the round before
    # is over by then too.
    sleep 2
    for c in old new; do
      SLURM_CONF=$work/$c/slurm.conf scontrol reconfigure
      SLURM_CONF=$work/$c/slurm.conf sdiag -r >/dev/null
      time_ms quiet_submit "$c" -p gpu --gpus-per-node=1 >> "$work/$c.ms"
      sdiag_us "$c" total_time >> "$work/$c.first-us"
    done
  done
  local o n os ns
  o=$(median < "$work/old.ms"); n=$(median < "$work/new.ms")
  os=$(median < "$work/old.first-us"); ns=$(median < "$work/new.first-us")
  echo "first sbatch --hold after scontrol reconfigure, policy with $ADMINS admin names, $RELOAD_ROUNDS alternated rounds, median (range):"
  awk -v o="$o" -v n="$n" -v os="$os" -v ns="$ns" -v ro="$(spread < "$work/old.ms")" -v rn="$(spread < "$work/new.ms")" \
      -v rso="$(spread < "$work/old.first-us")" -v rsn="$(spread < "$work/new.first-us")" -v rev="$OLD_REV" 'BEGIN {
    printf "  reload on the submission path (%s): sbatch %8.1f ms (%s), slurmctld %8.0f us (%s)\n", rev, o, ro, os, rso
    printf "  reload on the plugin'"'"'s thread (this tree): sbatch %8.1f ms (%s), slurmctld %8.0f us (%s)\n", n, rn, ns, rsn
    printf "  before / after: sbatch %.1fx, slurmctld %.1fx\n", o / n, os / ns
  }'
}

if [ "$MODE" = reload ]; then
  bench_clusters /dev/shm/bench-mlpolicy.XXXXXX old new
  reload_latency
else
  # State on tmpfs: on disk, slurmctld's writes of each job's script dominate and drift.
  bench_clusters /dev/shm/bench-mlpolicy.XXXXXX none lua mlpolicy old new
  submission_cost
  reload_latency
fi
