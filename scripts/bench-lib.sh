# Sourced by the benchmark scripts (scripts/bench-*.sh): timing, medians, and local
# clusters side by side that are stopped and removed however the script ends.

# Runs "$@" once and prints its wall time in ms (the clock needs no fork).
time_ms() {
  local t0=$EPOCHREALTIME
  "$@"
  local t1=$EPOCHREALTIME
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", (b - a) * 1000 }'
}

# The median of the numbers on stdin, one per line.
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# "min-max" of the numbers on stdin.
spread() { sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%s-%s", lo, hi }'; }

# bench_clusters TEMPLATE NAME...: a work directory made with `mktemp -d TEMPLATE` (mode
# 0755, for the test users' jobs) that will hold one local cluster per NAME, started by the
# caller as "$lc" start --dir "$work/NAME". Sets $work and $configs; on exit every cluster
# there is stopped and the directory removed.
bench_clusters() {
  work=$(mktemp -d "$1")
  chmod 0755 "$work"
  shift
  configs=("$@")
  trap bench_cleanup EXIT
}
bench_cleanup() {
  for c in "${configs[@]}"; do
    [ -e "$work/$c/slurm.conf" ] && "$lc" stop --dir "$work/$c" >/dev/null 2>&1 || true
  done
  rm -rf "$work"
}
