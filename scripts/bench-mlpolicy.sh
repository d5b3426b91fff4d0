#!/usr/bin/env bash
# Benchmark (not a test), four parts (the fourth only in its own mode, `domains`).
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
# 3. Concurrent submissions. From 23.02 slurmctld runs job_submit for several RPCs at once
# (under the shared job read lock; 22.05 holds one mutex around every job_submit plugin),
# while job_submit/lua still takes its own global Lua lock. Three clusters configured as in
# part 1 (their own: conc-*), MaxJobCount raised; CONC_SUBMITTERS processes (default 8) spread over CONC_USERS regular
# users (default 4) each submit CONC_JOBS held jobs (default 25) back to back, in CONC_ROUNDS
# rounds (default 21: short rounds, many of them, so that other load on the machine falls
# on all three alike) whose order of configurations rotates; after each round everything is
# cancelled, so each cluster holds the same records at the same point. Submissions per
# second over each round's wall time, sdiag's REQUEST_SUBMIT_BATCH_JOB ave_time (which
# includes waiting for locks), slurmctld's CPU time per job, medians, and each round's
# ratio to no plugin (the three runs of a round are seconds apart, so they share the
# machine's load). sbatch, munged and slurmctld share the machine's cores: the rate is what
# they allow together, and the server-side figures say what the plugin itself costs.
#
# 4. (mode `domains` only, not part of the default run) The submission cost of accounting
# domains. Three local clusters with accounting (slurmdbd + MariaDB each), partitions onprem
# and cloud, TrackWCKey=yes, AccountingStorageEnforce=associations,limits,safe, and the
# accounts proj and proj_cloud made with sacctmgr (the bench user in both, default account
# proj): no job_submit plugin, mlpolicy with partition rules only, and mlpolicy with the same
# rules plus an `accounting` section (cloud domain: account suffix _cloud, wckey,
# admin_comment, allowed_accounts; onprem: wckey, admin_comment). Each gets DOM_JOBS held
# jobs (half -p onprem, half -p cloud) in DOM_ROUNDS rotating rounds; each round is two
# sdiag-reset batches per configuration, one with -A proj and one without -A (there the
# plugin finds the default account in slurmctld's association manager). Medians, the
# added times and the ratios to no plugin, per batch kind.
#
# Run as root on a quiet machine:
#   ./scripts/bench-mlpolicy.sh [JOBS] [ROUNDS]   (default 2000 jobs in 4 rounds; then parts 2, 3)
#   ./scripts/bench-mlpolicy.sh reload            (part 2 only)
#   ./scripts/bench-mlpolicy.sh concurrent        (part 3 only)
#   ./scripts/bench-mlpolicy.sh domains           (part 4 only; DOM_JOBS jobs per
#                                                  configuration, default 3000, in DOM_ROUNDS
#                                                  rounds, default 20; about 4 minutes on 2 cores)
# On another release (builds in that release's CARGO_TARGET_DIR; test-release.sh clears the
# environment, so knobs go through env inside it):
#   flock /tmp/release-26.05.lock ./scripts/test-release.sh 26.05 -- \
#     env CONC_ROUNDS=21 ./scripts/bench-mlpolicy.sh concurrent
# Part 2's knobs: RELOAD_ROUNDS (default 7), ADMINS (default 20000), OLD_REV (default
# cfcdaaa: the plugin reloaded on the submission path until 5966da6, and cfcdaaa is the
# last commit before it whose tree builds).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh
MODE=all
case "${1:-}" in reload | concurrent | domains) MODE=$1; shift ;; esac
JOBS=${1:-2000}
ROUNDS=${2:-4}
PER=$((JOBS / ROUNDS))
RELOAD_ROUNDS=${RELOAD_ROUNDS:-7}
ADMINS=${ADMINS:-20000}
OLD_REV=${OLD_REV:-cfcdaaa}
CONC_SUBMITTERS=${CONC_SUBMITTERS:-8}
CONC_USERS=${CONC_USERS:-4}
CONC_JOBS=${CONC_JOBS:-25}
CONC_ROUNDS=${CONC_ROUNDS:-21}
DOM_JOBS=${DOM_JOBS:-3000}
DOM_ROUNDS=${DOM_ROUNDS:-20}
USER_NAME=mlbench
[ "$(id -u)" -eq 0 ] || { echo "run as root (the local clusters start Slurm daemons)" >&2; exit 1; }
# test-release.sh builds each release in its own target directory.
tgt=$(realpath -m "${CARGO_TARGET_DIR:-target}")
cargo build -q --release -p job-submit-mlpolicy -p local-cluster
if [ "$MODE" = all ]; then
  cargo build -q --release -p mlpolicy --example engine_bench   # a target flag limits a build to it
fi
ensure_user() { id -u "$1" >/dev/null 2>&1 || useradd --user-group --shell /bin/bash "$1"; }
ensure_user "$USER_NAME"
lc=$tgt/release/local-cluster
plugin=$tgt/release/libjob_submit_mlpolicy.so

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
    --job-submit "$plugin" \
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
  "$tgt/release/examples/engine_bench"
}

# Part 2: the plugin of OLD_REV, built once in its own worktree and target dir; sets $old.
old_plugin() {
  local rev src=$tgt/bench-old-mlpolicy/src
  rev=$(git rev-parse --verify "$OLD_REV^{commit}")
  if [ "$(git -C "$src" rev-parse HEAD 2>/dev/null)" != "$rev" ]; then
    git worktree remove --force "$src" 2>/dev/null || rm -rf "$src"
    git worktree prune
    git worktree add --detach "$src" "$rev" >/dev/null 2>&1
  fi
  (cd "$src" && CARGO_TARGET_DIR=$tgt/bench-old-mlpolicy/target cargo build -q --release -p job-submit-mlpolicy) \
    || { echo "error: building the plugin of $OLD_REV failed" >&2; exit 1; }
  old=$tgt/bench-old-mlpolicy/target/release/libjob_submit_mlpolicy.so
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
    --job-submit "$plugin" --file "mlpolicy.json=$policy" >/dev/null
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

# Part 3: a request both policies accept and judge through every GPU rule of partition gpu
# (count, per node, CPUs per GPU, time limit); 2 GPUs x 4 CPUs fit one 8-CPU node.
CONC_REQUEST=(-p gpu -N1 --gpus-per-node=2 --cpus-per-gpu=4 -t 60)
conc_users=()
# slurmctld's CPU time so far (user + system) in clock ticks, from /proc/PID/stat.
ctld_ticks() {
  awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$(cat "$work/$1/run/slurmctld.pid")/stat"
}
# One round on cluster $1: CONC_SUBMITTERS users' loops at once; appends jobs/s, sdiag's
# ave_time, slurmctld's CPU time per job (us) and the failures to $work/$1.{rate,us,cpu,fail}.
conc_round() {
  local c=$1 k t0 t1 ok=0 fail=0 n c0 c1
  SLURM_CONF=$work/$c/slurm.conf sdiag -r >/dev/null
  c0=$(ctld_ticks "$c")
  t0=$EPOCHREALTIME
  for ((k = 0; k < CONC_SUBMITTERS; k++)); do
    # One shell per submitter, as its user: the loop forks only sbatch.
    (cd "$work" && SLURM_CONF=$work/$c/slurm.conf runuser -u "${conc_users[k % CONC_USERS]}" -- \
      bash -c 'f=0; for ((i = 0; i < $1; i++)); do sbatch --hold -o /dev/null "${@:2}" --wrap true >/dev/null || f=$((f + 1)); done; echo "$f"' \
      bash "$CONC_JOBS" "${CONC_REQUEST[@]}" > "$work/sub.$k.out" 2> "$work/sub.$k.err") &
  done
  wait
  t1=$EPOCHREALTIME
  c1=$(ctld_ticks "$c")
  for ((k = 0; k < CONC_SUBMITTERS; k++)); do
    n=$(cat "$work/sub.$k.out"); fail=$((fail + ${n:-$CONC_JOBS}))
  done
  ok=$((CONC_SUBMITTERS * CONC_JOBS - fail))
  awk -v n="$ok" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f\n", n / (b - a) }' >> "$work/$c.rate"
  sdiag_us "$c" ave_time >> "$work/$c.us"
  awk -v d=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" -v n="$ok" 'BEGIN { printf "%.0f\n", d / hz * 1e6 / n }' >> "$work/$c.cpu"
  echo "$fail" >> "$work/$c.fail"
  if [ "$fail" -gt 0 ]; then echo "  ($c: $fail sbatch failed; first error: $(cat "$work"/sub.*.err | head -n 1))" >&2; fi
  # Cancel what the round left, so the next round of every configuration starts alike.
  SLURM_CONF=$work/$c/slurm.conf scancel --partition=gpu --state=PENDING
  while [ -n "$(SLURM_CONF=$work/$c/slurm.conf squeue -h -t PD -o %i | head -n 1)" ]; do sleep 0.2; done
}

# Part 3: concurrent submitters, no plugin against lua against mlpolicy.
concurrent_submissions() {
  local c r i order
  for ((i = 0; i < CONC_USERS; i++)); do
    conc_users+=("$USER_NAME$((i + 1))")
    ensure_user "${conc_users[i]}"
  done
  # Clusters of their own (conc-*): part 1's hold that part's jobs.
  local conf=("${parts[@]}" --conf MaxJobCount=200000)
  "$lc" start --dir "$work/conc-none" "${conf[@]}" >/dev/null
  "$lc" start --dir "$work/conc-lua" "${conf[@]}" --conf JobSubmitPlugins=lua \
    --file "job_submit.lua=$PWD/conf-examples/job_submit.lua" >/dev/null
  "$lc" start --dir "$work/conc-mlpolicy" "${conf[@]}" --job-submit "$plugin" \
    --file "mlpolicy.json=$PWD/conf-examples/mlpolicy.json" >/dev/null
  # Each configuration takes the request, and the policies judge it: too few CPUs per GPU
  # is refused.
  for c in conc-none conc-lua conc-mlpolicy; do
    SLURM_CONF=$work/$c/slurm.conf runuser -u "${conc_users[0]}" -- sbatch --hold -o /dev/null "${CONC_REQUEST[@]}" --wrap true >/dev/null \
      || { echo "error: $c refused the benchmark's request ${CONC_REQUEST[*]}" >&2; exit 1; }
  done
  for c in conc-lua conc-mlpolicy; do
    if submit "$c" -p gpu -N1 --gpus-per-node=2 --cpus-per-gpu=2 -t 60 >/dev/null 2>&1; then
      echo "error: $c accepted 2 CPUs per GPU in partition gpu" >&2; exit 1
    fi
  done
  # One round each unmeasured: page cache, slurmctld's first threads.
  for c in conc-none conc-lua conc-mlpolicy; do
    SLURM_CONF=$work/$c/slurm.conf scancel --partition=gpu
    conc_round "$c"
    : > "$work/$c.rate"; : > "$work/$c.us"; : > "$work/$c.cpu"; : > "$work/$c.fail"
  done

  local version
  version=$(SLURM_CONF=$work/conc-none/slurm.conf sinfo -V | awk '{ print $2 }')
  echo "Slurm $version, $(nproc) CPUs; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
  if [ "$(printf '%s\n' "$version" 23.02 | sort -V | head -n 1)" != 23.02 ]; then
    echo "  (before 23.02 slurmctld runs job_submit plugins one at a time, under one mutex: no concurrency to measure, a reference)"
  fi
  order=(conc-none conc-lua conc-mlpolicy)
  for ((r = 0; r < CONC_ROUNDS; r++)); do
    for ((i = 0; i < 3; i++)); do conc_round "${order[(r + i) % 3]}"; done
  done
  echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"

  local rn rl rml un ul um cn cl cm
  cn=$(median < "$work/conc-none.cpu"); cl=$(median < "$work/conc-lua.cpu"); cm=$(median < "$work/conc-mlpolicy.cpu")
  rn=$(median < "$work/conc-none.rate"); rl=$(median < "$work/conc-lua.rate"); rml=$(median < "$work/conc-mlpolicy.rate")
  un=$(median < "$work/conc-none.us"); ul=$(median < "$work/conc-lua.us"); um=$(median < "$work/conc-mlpolicy.us")
  echo "$CONC_SUBMITTERS concurrent submitters ($CONC_USERS users), each $CONC_JOBS x sbatch --hold ${CONC_REQUEST[*]},"
  echo "$CONC_ROUNDS rounds in rotating order; median (range) of: jobs/s over each round's wall time,"
  echo "sdiag REQUEST_SUBMIT_BATCH_JOB ave_time (lock waits included), slurmctld CPU time per job (all its threads):"
  awk -v a="$rn" -v b="$rl" -v c="$rml" -v ua="$un" -v ub="$ul" -v uc="$um" -v ca="$cn" -v cb="$cl" -v cc="$cm" \
      -v pa="$(spread < "$work/conc-none.cpu")" -v pb="$(spread < "$work/conc-lua.cpu")" -v pc="$(spread < "$work/conc-mlpolicy.cpu")" \
      -v ra="$(spread < "$work/conc-none.rate")" -v rb="$(spread < "$work/conc-lua.rate")" -v rc="$(spread < "$work/conc-mlpolicy.rate")" \
      -v sa="$(spread < "$work/conc-none.us")" -v sb="$(spread < "$work/conc-lua.us")" -v sc="$(spread < "$work/conc-mlpolicy.us")" \
      -v fails="$(cat "$work"/conc-{none,lua,mlpolicy}.fail | awk '{ s += $1 } END { print s + 0 }')" 'BEGIN {
    printf "  no plugin:       %6.1f jobs/s (%s)  ave_time %5.0f us (%s)  CPU %5.0f us/job (%s)\n", a, ra, ua, sa, ca, pa
    printf "  job_submit/lua:  %6.1f jobs/s (%s)  ave_time %5.0f us (%s)  CPU %5.0f us/job (%s)\n", b, rb, ub, sb, cb, pb
    printf "  mlpolicy:        %6.1f jobs/s (%s)  ave_time %5.0f us (%s)  CPU %5.0f us/job (%s)\n", c, rc, uc, sc, cc, pc
    printf "  ratio of medians: lua / no plugin %.3f, mlpolicy / no plugin %.3f\n", b / a, c / a
    printf "  failed sbatch: %d\n", fails
  }'
  # Round r of each configuration is line r of its file.
  paste "$work/conc-none.rate" "$work/conc-lua.rate" | awk '{ printf "%.3f\n", $2 / $1 }' > "$work/conc-lua.ratio"
  paste "$work/conc-none.rate" "$work/conc-mlpolicy.rate" | awk '{ printf "%.3f\n", $2 / $1 }' > "$work/conc-mlpolicy.ratio"
  printf "  per round, median (range): lua / no plugin %.3f (%s), mlpolicy / no plugin %.3f (%s)\n" \
    "$(median < "$work/conc-lua.ratio")" "$(spread < "$work/conc-lua.ratio")" \
    "$(median < "$work/conc-mlpolicy.ratio")" "$(spread < "$work/conc-mlpolicy.ratio")"
  echo "  (sbatch, munged and slurmctld run on the same $(nproc) CPUs: the rate is bounded by them, not by slurmctld alone)"
}

# Part 4: accounting domains. The partition rules both mlpolicy clusters judge by.
dom_rules='  "partitions": {
    "onprem": { "kind": "cpu", "gpus_per_node": 0, "max_time": "7-00:00:00" },
    "cloud": { "kind": "cpu", "gpus_per_node": 0, "max_time": "1-00:00:00" }
  }'
dom_sacctmgr() {  # config, then sacctmgr arguments
  local name
  name=$(awk -F= '$1 == "ClusterName" { print $2 }' "$work/$1/slurm.conf")
  SLURM_CONF=$work/$1/slurm.conf sacctmgr -i "${@:2}" "cluster=$name" >/dev/null
}
# The job's "Account=... WCKey=... AdminComment=..." from scontrol, as the tags read.
dom_tags() {
  SLURM_CONF=$work/$1/slurm.conf scontrol show job "$2" |
    awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^(Account|WCKey|AdminComment)=/) printf "%s ", $i } END { print "" }'
}
dom_submit() {  # config, then sbatch arguments; prints the job id
  SLURM_CONF=$work/$1/slurm.conf runuser -u "$USER_NAME" -- sbatch --parsable --hold -o /dev/null "${@:2}" --wrap true
}
# One sdiag-reset batch of n jobs on config c, alternating -p onprem and -p cloud; the
# rest of the arguments go to every sbatch. Appends sdiag's ave_time to $work/c.kind.us.
dom_batch() {
  local c=$1 kind=$2 n=$3 i p
  SLURM_CONF=$work/$c/slurm.conf sdiag -r >/dev/null
  for ((i = 0; i < n; i++)); do
    if ((i % 2)); then p=cloud; else p=onprem; fi
    dom_submit "$c" -p "$p" "${@:4}" >/dev/null
  done
  sdiag_us "$c" ave_time >> "$work/$c.$kind.us"
}
domains_cost() {
  local c j a tags per=$((DOM_JOBS / DOM_ROUNDS / 2)) r
  ((per >= 2)) || { echo "DOM_JOBS must be at least 4 x DOM_ROUNDS" >&2; exit 2; }
  printf '{\n%s\n}\n' "$dom_rules" > "$work/plain.json"
  cat > "$work/domains.json" <<EOF
{
  "accounting": {
    "span": "refuse",
    "domains": {
      "onprem": { "wckey": true, "admin_comment": true },
      "cloud": {
        "partitions": ["cloud"],
        "account_suffix": "_cloud",
        "wckey": true,
        "admin_comment": true,
        "allowed_accounts": ["proj"],
        "contact": "hpc-help@example.org"
      }
    }
  },
$dom_rules
}
EOF
  local conf=(--accounting --nodes 2
    --conf "PartitionName=onprem Nodes=n[1-2] State=UP"
    --conf "PartitionName=cloud Nodes=n[1-2] State=UP"
    --conf "AccountingStorageEnforce=associations,limits,safe"
    --conf "TrackWCKey=yes" --conf "MaxJobCount=$((DOM_JOBS + 1000))")
  "$lc" start --dir "$work/dom-none" "${conf[@]}" >/dev/null
  "$lc" start --dir "$work/dom-mlpolicy" "${conf[@]}" --job-submit "$plugin" \
    --file "mlpolicy.json=$work/plain.json" >/dev/null
  "$lc" start --dir "$work/dom-domains" "${conf[@]}" --job-submit "$plugin" \
    --file "mlpolicy.json=$work/domains.json" >/dev/null
  for c in dom-none dom-mlpolicy dom-domains; do
    dom_sacctmgr "$c" add account proj,proj_cloud
    dom_sacctmgr "$c" add user "$USER_NAME" account=proj,proj_cloud defaultaccount=proj
  done
  # slurmdbd pushes the associations to slurmctld asynchronously.
  for c in dom-none dom-mlpolicy dom-domains; do
    for ((r = 0; ; r++)); do
      j=$(dom_submit "$c" -p onprem 2>/dev/null) && break
      ((r < 60)) || { echo "error: $c never took the bench user's job (associations)" >&2; exit 1; }
      sleep 0.5
    done
    SLURM_CONF=$work/$c/slurm.conf scancel "$j"
  done
  # Each configuration does what it claims before it is timed.
  for c in dom-mlpolicy dom-domains; do
    if dom_submit "$c" -p onprem -t 8-00:00:00 >/dev/null 2>&1; then
      echo "error: $c accepted 8 days in partition onprem (max_time 7 days)" >&2; exit 1
    fi
  done
  for a in "-A proj" ""; do
    # shellcheck disable=SC2086 # $a: no argument, or -A and its value
    j=$(dom_submit dom-domains -p cloud $a)
    tags=$(dom_tags dom-domains "$j")
    case "$tags" in
      *Account=proj_cloud*WCKey=*cloud*AdminComment=*'"domain":"cloud"'*) ;;
      *) echo "error: dom-domains did not tag a cloud job (${a:-no -A}): $tags" >&2; exit 1 ;;
    esac
    # shellcheck disable=SC2086
    j=$(dom_submit dom-mlpolicy -p cloud $a)
    tags=$(dom_tags dom-mlpolicy "$j")
    case "$tags" in
      *Account=proj\ *) ;;
      *) echo "error: dom-mlpolicy changed a cloud job's account (${a:-no -A}): $tags" >&2; exit 1 ;;
    esac
  done
  # One unmeasured batch each: page cache, slurmctld's first threads.
  for c in dom-none dom-mlpolicy dom-domains; do
    dom_batch "$c" warm "$per" -A proj
  done

  local version
  version=$(SLURM_CONF=$work/dom-none/slurm.conf sinfo -V | awk '{ print $2 }')
  echo "Slurm $version, $(nproc) CPUs; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
  # The order of configurations rotates from round to round, so that drifting load on the
  # machine falls on all three alike.
  local order=(dom-none dom-mlpolicy dom-domains) i
  for ((r = 0; r < DOM_ROUNDS; r++)); do
    for ((i = 0; i < 3; i++)); do
      c=${order[(r + i) % 3]}
      dom_batch "$c" acct "$per" -A proj
      dom_batch "$c" noacct "$per"
    done
  done
  echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "accounting clusters (slurmdbd + MariaDB), sbatch --hold, $((per * 2 * DOM_ROUNDS)) jobs per configuration"
  echo "(half -p onprem, half -p cloud) in $DOM_ROUNDS rotating rounds of two batches of $per, with -A proj and"
  echo "without -A; sdiag REQUEST_SUBMIT_BATCH_JOB ave_time, median of rounds (range):"
  local kind label n m d rn rm rd
  for kind in acct noacct; do
    if [ "$kind" = acct ]; then label="-A proj"; else label="no -A (default account from assoc_mgr)"; fi
    n=$(median < "$work/dom-none.$kind.us"); m=$(median < "$work/dom-mlpolicy.$kind.us"); d=$(median < "$work/dom-domains.$kind.us")
    rn=$(spread < "$work/dom-none.$kind.us"); rm=$(spread < "$work/dom-mlpolicy.$kind.us"); rd=$(spread < "$work/dom-domains.$kind.us")
    awk -v l="$label" -v a="$n" -v b="$m" -v c="$d" -v ra="$rn" -v rb="$rm" -v rc="$rd" 'BEGIN {
      printf "  %s:\n", l
      printf "    no plugin:                %6.0f us  (%s)\n", a, ra
      printf "    mlpolicy, no accounting:  %6.0f us  (%s)  added %+.0f us\n", b, rb, b - a
      printf "    mlpolicy with domains:    %6.0f us  (%s)  added %+.0f us\n", c, rc, c - a
      printf "    ratios to no plugin: mlpolicy %.3f, mlpolicy with domains %.3f\n", b / a, c / a
    }'
    # Round r of each configuration is line r of its file: ratios within a round.
    paste "$work/dom-none.$kind.us" "$work/dom-domains.$kind.us" | awk '{ printf "%.3f\n", $2 / $1 }' > "$work/dom-domains.$kind.ratio"
    printf "    per round, domains / no plugin: median %.3f (%s)\n" \
      "$(median < "$work/dom-domains.$kind.ratio")" "$(spread < "$work/dom-domains.$kind.ratio")"
  done
}

if [ "$MODE" = domains ]; then
  bench_clusters /dev/shm/bench-mlpolicy.XXXXXX dom-none dom-mlpolicy dom-domains
  domains_cost
elif [ "$MODE" = reload ]; then
  bench_clusters /dev/shm/bench-mlpolicy.XXXXXX old new
  reload_latency
elif [ "$MODE" = concurrent ]; then
  bench_clusters /dev/shm/bench-mlpolicy.XXXXXX conc-none conc-lua conc-mlpolicy
  concurrent_submissions
else
  # State on tmpfs: on disk, slurmctld's writes of each job's script dominate and drift.
  bench_clusters /dev/shm/bench-mlpolicy.XXXXXX none lua mlpolicy old new conc-none conc-lua conc-mlpolicy
  submission_cost
  reload_latency
  concurrent_submissions
fi
