#!/usr/bin/env bash
# Benchmark (not a test): ml-epilog against the bash epilog of the HyperPod guide
# (shared/reference, "NCCL Parallel Training Failures") on the same state: one user's 1,000
# SysV shm segments and 200 /dev/shm files. Whole-process wall time, runs alternated,
# medians and their ratio. Run as root on a quiet machine:
#   ./scripts/bench-epilog.sh [RUNS]        (default 11)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh
RUNS=${1:-11}
SEGMENTS=1000
FILES=200
USER_NAME=mlbench

[ "$(id -u)" -eq 0 ] || { echo "run as root" >&2; exit 1; }
command -v ipcs >/dev/null || { echo "needs ipcs/ipcrm (util-linux)" >&2; exit 1; }
cargo build -q --release -p ml-epilog -p ipc-fixture
id -u "$USER_NAME" >/dev/null 2>&1 || useradd --user-group --shell /bin/bash "$USER_NAME"
uid=$(id -u "$USER_NAME")

work=$(mktemp -d)
chmod 0755 "$work"  # the test user runs ipc-fixture from here
trap 'rm -rf "$work"' EXIT
install -m 0755 target/release/ml-epilog target/release/ipc-fixture "$work/"
# The reference epilog, as the guide prints it.
cat > "$work/epilog.sh" <<'SCRIPT'
#!/bin/bash
# /opt/slurm/etc/epilog.sh
for seg in $(ipcs -m | awk -v owner="$SLURM_JOB_USER" '$3 == owner {print $2}'); do
    ipcrm -m "$seg"
done
for file in /dev/shm/nccl-*; do
    [ -e "$file" ] && rm "$file"
done
SCRIPT
chmod 0755 "$work/epilog.sh"

prepare() {
  runuser -u "$USER_NAME" -- "$work/ipc-fixture" create --shm "$SEGMENTS" --shm-size 4096 \
    --files "$FILES" --file-size 4096 --prefix "nccl-bench" >/dev/null
}
left() {  # objects of the user still there after a run
  local n
  n=$(awk -v u="$uid" 'NR > 1 && $8 == u' /proc/sysvipc/shm | wc -l)
  echo $((n + $(find /dev/shm -maxdepth 1 -user "$uid" | wc -l)))
}

: > "$work/bash.ms"; : > "$work/native.ms"
for _ in $(seq "$RUNS"); do
  prepare
  SLURM_JOB_USER=$USER_NAME time_ms "$work/epilog.sh" >> "$work/bash.ms" 2>/dev/null
  [ "$(left)" -eq 0 ] || { echo "bash epilog left objects behind" >&2; exit 1; }
  prepare
  SLURM_JOB_UID=$uid time_ms "$work/ml-epilog" --log-file "$work/ml-epilog.log" >> "$work/native.ms"
  [ "$(left)" -eq 0 ] || { echo "ml-epilog left objects behind" >&2; exit 1; }
done

b=$(median < "$work/bash.ms"); n=$(median < "$work/native.ms")
echo "ml-epilog benchmark: $SEGMENTS shm segments + $FILES /dev/shm files of one user, $RUNS runs each (alternated)"
printf '  bash epilog (reference guide): median %8.2f ms  (min %.2f, max %.2f)\n' "$b" "$(sort -g "$work/bash.ms" | head -1)" "$(sort -g "$work/bash.ms" | tail -1)"
printf '  ml-epilog:                     median %8.2f ms  (min %.2f, max %.2f)\n' "$n" "$(sort -g "$work/native.ms" | head -1)" "$(sort -g "$work/native.ms" | tail -1)"
awk -v b="$b" -v n="$n" 'BEGIN { printf "  ml-epilog is %.0fx faster\n", b / n }'
echo "  last ml-epilog log line: $(tail -1 "$work/ml-epilog.log")"
