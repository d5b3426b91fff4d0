#!/usr/bin/env bash
# `cargo test --workspace`, with the integration tests in tests/*.rs run side by side.
# Each of those binaries boots its own local clusters and spends its time waiting on Slurm
# (a node's power-up, a job's end, slurmdbd's commit), not on the CPU; cargo runs test
# binaries one after another. Each binary still runs its own tests in parallel threads, as
# cargo does. Every binary's output is printed whole when it ends, then a summary.
#   TEST_JOBS=N   binaries at once (default 4; 1 runs them one after another)
# Everything else (unit tests, property tests, doctests) runs first, as cargo runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${TEST_JOBS:-4}
case "$jobs" in ''|*[!0-9]*|0) echo "TEST_JOBS=$jobs: expected a positive number" >&2; exit 2 ;; esac

cargo test --workspace --exclude slurm-ml
cargo test -p slurm-ml --lib

# Build the integration tests and list their executables (cargo's JSON messages).
list=$(cargo test -p slurm-ml --tests --no-run --message-format=json-render-diagnostics |
  python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["kind"] == ["test"] and m.get("executable"):
        print(m["target"]["name"], m["executable"])
')
# Longest first, so that the slowest does not start last (seconds on Slurm 22.05, 2 cores).
order="mlenv cloud_burst domains mlacct adversarial mlpolicy healthcheck healthcheck_active"
sorted=$(
  for n in $order; do grep "^$n " <<<"$list" || true; done
  grep -v -E "^($(tr ' ' '|' <<<"$order")) " <<<"$list" || true
)

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
run_one() {  # NAME EXE: runs it, then prints its output whole under a lock
  local name=$1 exe=$2 start=$SECONDS rc=0
  "$exe" >"$logs/$name.log" 2>&1 </dev/null || rc=$?
  echo "$rc $((SECONDS - start))" >"$logs/$name.rc"
  (
    flock 9
    echo "     Running tests/$name.rs ($exe), ended after $((SECONDS - start)) s"
    cat "$logs/$name.log"
  ) 9>"$logs/.print-lock"
}
export -f run_one
export logs
start=$SECONDS
# xargs starts the next binary as soon as one ends; every binary runs even when one fails.
xargs -P "$jobs" -d '\n' -n 1 bash -c 'run_one ${0%% *} "${0#* }"' <<<"$sorted" || true

failed=()
echo "integration tests: $(wc -l <<<"$sorted") binaries, $jobs at once, $((SECONDS - start)) s in all"
while read -r name _; do
  read -r rc secs <"$logs/$name.rc" 2>/dev/null || { rc=missing; secs=?; }
  printf '  %-22s %4s s  %s\n' "$name" "$secs" "$([ "$rc" = 0 ] && echo ok || echo "FAILED ($rc)")"
  [ "$rc" = 0 ] || failed+=("$name")
done <<<"$sorted"
if [ "${#failed[@]}" -gt 0 ]; then
  echo "error: failed: ${failed[*]} (rerun one: cargo test -p slurm-ml --test NAME)" >&2
  exit 101
fi
