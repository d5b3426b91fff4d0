#!/usr/bin/env bash
# One command on a fresh Debian 12 machine, as root: installs what is missing, builds,
# boots a local Slurm cluster (munged, slurmctld, 3 slurmd with 8 placeholder GPUs each)
# with this project's plugins, runs the demo jobs, and leaves the cluster running.
#   ./scripts/demo.sh [--accounting]    boot (with slurmdbd + MariaDB) and run the demo
#   ./scripts/demo.sh stop              stop the demo cluster
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${DEMO_DIR:-/tmp/slurm-ml-demo}

if [ "${1:-}" = "stop" ]; then
  exec target/debug/local-cluster stop --dir "$DIR"
fi
accounting=()
[ "${1:-}" = "--accounting" ] && accounting=(--accounting)

./scripts/install-deps.sh "${accounting[@]}"
cargo build --workspace

# ml-epilog logs to a file in the cluster directory (@CLUSTER_DIR@ is filled in).
epilog_conf=$(mktemp)
echo "log_file = @CLUSTER_DIR@/log/ml-epilog.log" > "$epilog_conf"
target/debug/local-cluster start --dir "$DIR" "${accounting[@]}" \
  --spank libspank_selftest.so --spank libspank_mlenv.so:addr=nodeaddr \
  --job-submit libjob_submit_selftest.so \
  --epilog "$PWD/target/debug/ml-epilog" --file "ml-epilog.conf=$epilog_conf" >/dev/null
rm -f "$epilog_conf"
install -D -m 0755 target/debug/ipc-fixture "$DIR/bin/ipc-fixture"
install -D -m 0755 target/debug/ml-healthcheck "$DIR/bin/ml-healthcheck"
# GPU snapshots for ml-healthcheck (this machine has no GPU): a healthy 8x H100 node, and
# the same with uncorrectable ECC errors on GPU 0.
healthy=helpers/ml-healthcheck/tests/fixtures/h100x8-healthy.json
install -m 0644 "$healthy" "$DIR/healthy.json"
sed '0,/"ecc_volatile_uncorrected": 0/s//"ecc_volatile_uncorrected": 2/' "$healthy" > "$DIR/ecc.json"
export SLURM_CONF="$DIR/slurm.conf"
cd "$DIR/work"

show() {  # prints a command line, then runs it; the demo goes on when one fails on purpose
  echo
  echo "\$ $1"
  bash -c "$1" 2>&1 | sed 's/^/    /' || true
}

echo "== A real Slurm cluster on this machine: 3 nodes, 8 (placeholder) GPUs each"
show "sinfo -N -o '%N %T %G'"
echo
echo "== srun spreads 6 tasks over 3 nodes"
show "srun -N3 -n6 -l bash -c 'echo on \$SLURMD_NODENAME' | sort -n"
echo
echo "== GPUs are scheduled for real: 2 per node on 2 nodes"
show "srun -N2 --gpus-per-node=2 bash -c 'echo \$SLURMD_NODENAME CUDA_VISIBLE_DEVICES=\$CUDA_VISIBLE_DEVICES' | sort"
echo
echo "== A SPANK plugin (built on this project's safe layer) sets a variable in every task"
show "srun -N3 bash -c 'echo \$SLURMD_NODENAME SLURM_ML_SELFTEST=\$SLURM_ML_SELFTEST' | sort"
echo
echo "== mlenv: every task gets its rank and one rendezvous (NodeAddr: these node names do not resolve)"
show "srun -N3 -n6 bash -c 'echo \$SLURMD_NODENAME RANK=\$RANK LOCAL_RANK=\$LOCAL_RANK WORLD_SIZE=\$WORLD_SIZE MASTER_ADDR=\$MASTER_ADDR MASTER_PORT=\$MASTER_PORT' | sort -t= -k2 -n"
echo
echo "== ... and torchrun, one per node, reads its flags from PET_* (no arguments needed)"
show "srun -N2 --ntasks-per-node=1 --gpus-per-node=4 bash -c 'env | grep ^PET_ | sort | tr \"\\n\" \" \"; echo' | sort"
echo
echo "== A bad option value stops srun before anything is allocated"
show "srun --mlenv=bogus true || true"
echo
echo "== A job_submit plugin inside slurmctld refuses a job, with a message for the user"
show "sbatch -J selftest-reject --wrap true"
echo
echo "== ... and a panic inside it is caught: the job is refused, slurmctld keeps running"
show "sbatch -J selftest-panic --wrap true"
show "scontrol ping"
echo
echo "== A batch job of a regular user, waited for"
id -u mltest-demo >/dev/null 2>&1 || useradd --user-group --create-home --shell /bin/bash mltest-demo
show "runuser -u mltest-demo -- sbatch --wait -N2 -o batch.out --wrap 'id -un; srun -l hostname | sort' && cat batch.out"
echo
echo "== ml-epilog (Epilog=) removes what a job leaves in SysV IPC and /dev/shm, like killed NCCL ranks"
# Not sbatch --wait: a waiting sbatch of the user on this machine would count as the user
# still being active here, and ml-epilog would then only take dead shm segments.
job=$(runuser -u mltest-demo -- sbatch --parsable -o leftovers.out --wrap "$DIR/bin/ipc-fixture create --shm 4 --sem 1 --msg 1 --files 2 --prefix nccl-demo >/dev/null; echo the job leaves \$(ipcs -m | grep -c mltest-de) shm segments, \$(ipcs -s | grep -c mltest-de) semaphore set, \$(ipcs -q | grep -c mltest-de) message queue and \$(ls /dev/shm | grep -c nccl-demo) /dev/shm files")
until grep -q "job $job " "$DIR/log/ml-epilog.log" 2>/dev/null; do sleep 0.2; done
show "cat leftovers.out"
show "tail -n 1 $DIR/log/ml-epilog.log"
show "echo after the job: \$(ipcs -m | grep -c mltest-de) shm segments, \$(ipcs -s | grep -c mltest-de) semaphore sets, \$(ipcs -q | grep -c mltest-de) message queues, \$(ls /dev/shm | grep -c nccl-demo) /dev/shm files"
echo
echo "== ml-healthcheck (HealthCheckProgram=, Prolog=, Epilog=) drains a node whose GPU went bad ..."
show "$DIR/bin/ml-healthcheck --node n2 --snapshot $DIR/ecc.json"
show "sinfo -R -o '%50E %N'"
echo
echo "== ... never touches an admin's drain, and resumes its own once every check passes"
show "scontrol update NodeName=n3 State=DRAIN Reason='admin: fan replaced tomorrow'"
show "$DIR/bin/ml-healthcheck --node n3 --snapshot $DIR/ecc.json"
show "$DIR/bin/ml-healthcheck --node n2 --snapshot $DIR/healthy.json"
show "sinfo -R -o '%50E %N'; scontrol update NodeName=n3 State=RESUME"
if [ "${#accounting[@]}" -gt 0 ]; then
  echo
  echo "== Accounting through slurmdbd and MariaDB"
  sleep 3  # job records reach slurmdbd asynchronously
  show "sacct -X -o JobID,JobName,User,State,NNodes,AllocTRES%40"
fi

echo
echo "The cluster is still running. Use it with:"
echo "  export SLURM_CONF=$SLURM_CONF"
echo "Stop it with:"
echo "  ./scripts/demo.sh stop"
