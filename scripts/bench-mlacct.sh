#!/usr/bin/env bash
# Benchmark (not a test): mlacct against sacct plus a script, over many job records.
#
# One local cluster with accounting (slurmdbd + MariaDB), two partitions (onprem, cloud)
# with TRESBillingWeights, conf-style mlpolicy.json with the cloud domain priced. JOBS jobs
# (`--wrap true`, two array jobs of JOBS/2 tasks, MaxArraySize raised) run and land in
# slurmdbd. Then, over the same period, ROUNDS alternated runs of
#   mlacct --csv                                   (libslurm: slurmdb_jobs_get)
#   sacct -X -D -P -a --truncate ... | awk (the same table: jobs, GPU-, CPU-, billing-seconds, cost)
# timed side by side (wall ms, median and range), their ratio, and whether both give the
# same totals per domain, account and user.
#
# Run as root on a quiet machine:
#   ./scripts/bench-mlacct.sh [JOBS] [ROUNDS]      (default 10000 jobs, 7 rounds)
#   BENCH_JOBS=2000 ./scripts/bench-mlacct.sh      (the same, from the environment)
# On another release (test-release.sh clears the environment, so knobs go through env):
#   flock /tmp/release-24.11.lock ./scripts/test-release.sh 24.11 -- \
#     env BENCH_JOBS=2000 ./scripts/bench-mlacct.sh
# Making the jobs is most of the run: on 2 cores 100-135 s per 1000 (10,000 in 1000 s; slurmctld starts
# and ends each one).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh
JOBS=${1:-${BENCH_JOBS:-10000}}
ROUNDS=${2:-${BENCH_ROUNDS:-7}}
HALF=$((JOBS / 2))
[ "$HALF" -ge 1 ] || { echo "JOBS must be at least 2" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "run as root (the local cluster starts Slurm daemons)" >&2; exit 1; }
# test-release.sh builds each release in its own target directory.
tgt=$(realpath -m "${CARGO_TARGET_DIR:-target}")
cargo build -q --release -p mlacct -p local-cluster
lc=$tgt/release/local-cluster
mlacct=$tgt/release/mlacct

bench_clusters "${TMPDIR:-/tmp}/bench-mlacct.XXXXXX" acct
cat > "$work/mlpolicy.json" <<'EOF'
{
  "accounting": {
    "currency": "USD",
    "domains": {
      "onprem": { "cost_per_billing_hour": 0.0 },
      "cloud": { "partitions": ["cloud"], "cost_per_billing_hour": 0.01 }
    }
  }
}
EOF
"$lc" start --dir "$work/acct" --accounting \
  --conf "PartitionName=onprem Nodes=n[1-2] State=UP TRESBillingWeights=CPU=1.0,GRES/gpu=10.0" \
  --conf "PartitionName=cloud Nodes=n3 State=UP TRESBillingWeights=CPU=2.0,GRES/gpu=100.0" \
  --conf "MaxArraySize=$((HALF + 1))" --conf "MaxJobCount=$((JOBS + 1000))" \
  --conf "MinJobAge=2" \
  --file "mlpolicy.json=$work/mlpolicy.json" >/dev/null
export SLURM_CONF=$work/acct/slurm.conf
cd "$work"

since=$(date -d '-1 minute' +%Y-%m-%dT%H:%M:%S)
t0=$EPOCHREALTIME
sbatch -Q -p onprem --array="0-$((HALF - 1))" --gpus=1 -o /dev/null --wrap true
sbatch -Q -p cloud --array="0-$((JOBS - HALF - 1))" -o /dev/null --wrap true
while [ -n "$(squeue -h -o %i | head -n 1)" ]; do sleep 2; done
# slurmdbd takes the records asynchronously: wait until sacct has them all.
count() { sacct -X -n -a -P -S "$since" -E now -o JobID -s CD | wc -l; }
while [ "$(count)" -lt "$JOBS" ]; do sleep 2; done
t1=$EPOCHREALTIME
until=$(date +%Y-%m-%dT%H:%M:%S)
awk -v a="$t0" -v b="$t1" -v n="$JOBS" 'BEGIN { printf "%d jobs run and recorded in %.0f s\n", n, b - a }'

# The same table as mlacct --csv, from sacct's text: seconds per (domain, account, user).
table_awk='
  BEGIN { FS = "|"; OFS = "," }
  # Counted as mlacct counts: allocated, and started before the period ends (slurmdbd
  # sets a record it has no start for to start at the period end, as sacct shows it).
  $5 != "" && $6 < until {
    d = ($1 == "cloud") ? "cloud" : "onprem"
    k = d "," $2 "," $3
    n = split($5, t, ",")
    g = 0; c = 0; b = 0
    for (i = 1; i <= n; i++) {
      split(t[i], kv, "=")
      if (kv[1] == "gres/gpu") g = kv[2]
      else if (kv[1] == "cpu") c = kv[2]
      else if (kv[1] == "billing") b = kv[2]
    }
    jobs[k]++; gs[k] += g * $4; cs[k] += c * $4; bs[k] += b * $4
  }
  END {
    for (k in jobs) {
      split(k, p, ",")
      price = (p[1] == "cloud") ? 0.01 : 0
      printf "%s,%d,%d,%d,%d,%.4f\n", k, jobs[k], gs[k], cs[k], bs[k], bs[k] / 3600 * price
    }
  }'
run_sacct() {
  sacct -X -D -P -n -a --truncate -S "$since" -E "$until" -o Partition,Account,User,ElapsedRaw,AllocTRES,Start |
    awk -v until="$until" "$table_awk" | sort
}
run_mlacct() { "$mlacct" --csv --since "$since" --until "$until"; }

# Records may still change for a moment after they are all listed (a first 10,000-job run
# found the two job counts apart by a few dozen): wait until two readings 5 s apart agree.
last=""
while :; do
  now_rows=$(run_sacct)
  [ "$now_rows" = "$last" ] && break
  last=$now_rows
  sleep 5
done
# Both must say the same before their times mean anything.
ours=$(run_mlacct | awk -F, 'NR > 1 { printf "%s,%s,%s,%d,%d,%d,%d,%s\n", $1, $2, $3, $4, $10, $11, $12, $8 }' | sort)
theirs=$(run_sacct)
if [ "$ours" = "$theirs" ]; then
  echo "same totals per domain, account and user:"
  sed 's/^/  /' <<<"$ours"
else
  echo "DIFFERENT totals; mlacct:"; sed 's/^/  /' <<<"$ours"
  echo "sacct + awk:"; sed 's/^/  /' <<<"$theirs"
  echo "records that are not COMPLETED or start at the period's end:"
  sacct -X -D -P -n -a --truncate -S "$since" -E "$until" -o JobID,Partition,State,Start,End,ElapsedRaw,AllocTRES |
    awk -F'|' -v until="$until" '$3 != "COMPLETED" || $4 >= until' | head -n 50
  exit 1
fi

# Alternated, so that other load on the machine falls on both alike.
mlacct_only() { run_mlacct >/dev/null; }
sacct_only() { run_sacct >/dev/null; }
for ((r = 0; r < ROUNDS; r++)); do
  if ((r % 2 == 0)); then
    time_ms mlacct_only >> "$work/mlacct.ms"
    time_ms sacct_only >> "$work/sacct.ms"
  else
    time_ms sacct_only >> "$work/sacct.ms"
    time_ms mlacct_only >> "$work/mlacct.ms"
  fi
done
m=$(median < "$work/mlacct.ms")
s=$(median < "$work/sacct.ms")
echo "$(sinfo -V), $JOBS job records, $ROUNDS alternated rounds, wall time, median (range):"
printf "  mlacct --csv (libslurm)          %9.1f ms (%s)\n" "$m" "$(spread < "$work/mlacct.ms")"
printf "  sacct -X -D -P --truncate | awk  %9.1f ms (%s)\n" "$s" "$(spread < "$work/sacct.ms")"
awk -v m="$m" -v s="$s" 'BEGIN { printf "  sacct+awk / mlacct: %.2fx\n", s / m }'
