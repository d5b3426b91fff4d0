#!/usr/bin/env bash
# One command on a fresh Debian 12 machine, as root: installs what is missing, builds,
# boots a local Slurm cluster (munged, slurmctld, 3 slurmd with 8 placeholder GPUs each)
# with the product: job_submit_mlpolicy.so and the example policy, spank_mlenv.so,
# ml-epilog and ml-healthcheck; runs the demo jobs, and leaves the cluster running.
# Run it again and the running demo cluster is stopped and booted anew.
#   ./scripts/demo.sh                   boot and run the demo
#   ./scripts/demo.sh --accounting      also slurmdbd + MariaDB, a powered-down cloud node and
#                                       dual accounting (conf-examples/accounting, mlacct)
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
# A demo cluster left running from an earlier run is stopped first.
[ -e "$DIR/run/daemons.pids" ] && target/debug/local-cluster stop --dir "$DIR" >/dev/null

# The product's plugins and the example policy (conf-examples/mlpolicy.json) with the
# partitions it names; nodes of 32 CPUs (as configured: slurmd takes the numbers given), so
# a whole 8-GPU node satisfies the policy's 4 CPUs per GPU. ml-epilog logs to a file in
# the cluster directory (@CLUSTER_DIR@ is filled in).
epilog_conf=$(mktemp)
policy=$(mktemp)
started=0
# A demo that fails half way leaves no cluster of root's daemons running: it says where it
# stopped, stops the cluster and keeps its logs.
on_exit() {
  local rc=$?
  rm -f "$epilog_conf" "$policy"
  [ "$rc" = 0 ] && return
  echo "demo failed (exit $rc) at line ${failed_line:-?}" >&2
  if [ "$started" = 1 ]; then
    cd "$REPO"  # stop ends every process with a file open in $DIR: the cwd counts
    target/debug/local-cluster stop --dir "$DIR" >/dev/null 2>&1 || true
    echo "the demo cluster is stopped; its logs are in $DIR/log" >&2
  fi
}
REPO=$PWD
trap 'failed_line=$LINENO' ERR
trap on_exit EXIT
# Polls a command every half second; the demo fails with WHAT after SECONDS.
wait_for() {  # SECONDS WHAT COMMAND...
  local deadline=$((SECONDS + $1)) what=$2
  shift 2
  until "$@"; do
    [ "$SECONDS" -lt "$deadline" ] || { echo "gave up waiting for $what" >&2; return 1; }
    sleep 0.5
  done
}
echo "log_file = @CLUSTER_DIR@/log/ml-epilog.log" > "$epilog_conf"
cp conf-examples/mlpolicy.json "$policy"
partitions=("PartitionName=gpu Nodes=n[1-3] MaxTime=2-00:00:00 State=UP"
            "PartitionName=interactive Nodes=n[1-3] MaxTime=4:00:00 State=UP"
            "PartitionName=cpu Nodes=n[1-3] State=UP")
extra=()
if [ "${#accounting[@]}" -gt 0 ]; then
  # Dual accounting: the example's accounting domains added to the example policy,
  # powered-down cloud nodes billed at the example's cloud weights, wckeys tracked and
  # budgets enforced as in conf-examples/accounting/slurm.conf.accounting.
  { sed '$d' conf-examples/mlpolicy.json | sed '$s/$/,/'
    sed -n '/"accounting"/,$p' conf-examples/recipes/cloud-bursting/mlpolicy.json; } > "$policy"
  example=conf-examples/accounting/slurm.conf.accounting
  weights() { sed -n "s/^PartitionName=$1 .*TRESBillingWeights=\"\([^\"]*\)\".*/\1/p" "$example"; }
  for i in "${!partitions[@]}"; do
    partitions[i]+=" TRESBillingWeights=\"$(weights onprem)\""
  done
  extra+=(--cloud-nodes 1 --billing "cloud=$(weights cloud)")
  for key in AccountingStorageEnforce TrackWCKey PriorityType PriorityDecayHalfLife PriorityUsageResetPeriod PriorityCalcPeriod; do
    extra+=(--conf "$(grep "^$key=" "$example")")
  done
fi
for p in "${partitions[@]}"; do extra+=(--conf "$p"); done
target/debug/mlpolicy validate "$policy" >/dev/null
started=1
target/debug/local-cluster start --dir "$DIR" "${accounting[@]}" --cpus-per-node 32 \
  --spank libspank_mlenv.so:addr=nodeaddr \
  --job-submit libjob_submit_mlpolicy.so --file "mlpolicy.json=$policy" "${extra[@]}" \
  --epilog "$PWD/target/debug/ml-epilog" --file "ml-epilog.conf=$epilog_conf" >/dev/null
rm -f "$epilog_conf" "$policy"
install -D -m 0755 target/debug/ipc-fixture "$DIR/bin/ipc-fixture"
install -D -m 0755 target/debug/ml-healthcheck "$DIR/bin/ml-healthcheck"
install -D -m 0755 target/debug/mlpolicy "$DIR/bin/mlpolicy"
install -D -m 0755 target/debug/mlacct "$DIR/bin/mlacct"
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

id -u mltest-demo >/dev/null 2>&1 || useradd --user-group --create-home --shell /bin/bash mltest-demo
if [ "${#accounting[@]}" -gt 0 ]; then
  echo "== Accounting: slurmdbd + MariaDB, associations and budgets enforced"
  echo "   The project's accounts and cloud budget (conf-examples/accounting/sacctmgr-setup.sh, as it is):"
  cluster=$(scontrol show config | awk '$1 == "ClusterName" { print $3 }')
  ACCOUNT=proj USERS=mltest-demo BUDGET_BILLING_MINUTES=6000000 CLUSTER=$cluster \
    bash "$REPO/conf-examples/accounting/sacctmgr-setup.sh" >"$DIR/log/sacctmgr-setup.log"
  show "sacctmgr -n -P show assoc where user=mltest-demo format=account,user,qos,defaultqos; sacctmgr -n -P show assoc where account=proj_cloud user= format=account,grptresmins"
  # slurmdbd hands new associations to slurmctld asynchronously.
  for _ in $(seq 60); do
    runuser -u mltest-demo -- sbatch --parsable -H -A proj_cloud -p cloud -o /dev/null --wrap true >"$DIR/probe" 2>&1 && break
    sleep 1
  done
  scancel "$(cat "$DIR/probe")"; rm -f "$DIR/probe"
  echo
fi
echo "== A real Slurm cluster on this machine: 3 nodes of 32 CPUs and 8 (placeholder) GPUs, in the example policy's partitions"
show "sinfo -o '%P %N %T %c %G'"
echo
echo "== srun spreads 6 tasks over 3 nodes"
show "srun -N3 -n6 -l bash -c 'echo on \$SLURMD_NODENAME' | sort -n"
echo
echo "== GPUs are scheduled for real: 2 per node on 2 nodes"
show "srun -N2 --gpus-per-node=2 bash -c 'echo \$SLURMD_NODENAME CUDA_VISIBLE_DEVICES=\$CUDA_VISIBLE_DEVICES' | sort"
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
echo "== mlpolicy (job_submit, inside slurmctld) judges every job by the site policy (conf-examples/mlpolicy.json)"
echo "   A GPU job in the CPU partition is refused, with the line the user sees:"
show "runuser -u mltest-demo -- sbatch -p cpu --gpus=1 --wrap true"
echo
echo "   A job that names no partition is routed by its GPU request (8 GPUs: partition gpu):"
show "runuser -u mltest-demo -- sbatch --wait -N1 --gpus-per-node=8 --cpus-per-gpu=4 --exclusive -t 10 -o routed.out --wrap 'echo partition \$SLURM_JOB_PARTITION on \$SLURMD_NODENAME, GPUs \$CUDA_VISIBLE_DEVICES' >/dev/null && cat routed.out"
echo
echo "   ... and one without GPUs to the CPU partition:"
show "runuser -u mltest-demo -- sbatch --wait -o cpu.out --wrap 'echo partition \$SLURM_JOB_PARTITION' >/dev/null && cat cpu.out"
echo
echo "   Over a partition's limit (interactive: at most 2 GPUs per job) is refused:"
show "runuser -u mltest-demo -- sbatch -p interactive --gpus=4 -t 1:00:00 --wrap true"
echo
echo "   A bad policy never reaches slurmctld: mlpolicy validate checks it first"
show "echo '{\"partitions\": {\"gpu\": {\"max_gpus_per_jbo\": 8}}}' > bad.json; $DIR/bin/mlpolicy validate bad.json"
echo
echo "== A batch job of a regular user, waited for"
show "runuser -u mltest-demo -- sbatch --wait -N2 -o batch.out --wrap 'id -un; srun -l hostname | sort' && cat batch.out"
echo
echo "== ml-epilog (Epilog=) removes what a job leaves in SysV IPC and /dev/shm, like killed NCCL ranks"
# Not sbatch --wait: a waiting sbatch of the user on this machine would count as the user
# still being active here, and ml-epilog would then only take dead shm segments.
job=$(runuser -u mltest-demo -- sbatch --parsable -o leftovers.out --wrap "$DIR/bin/ipc-fixture create --shm 4 --sem 1 --msg 1 --files 2 --prefix nccl-demo >/dev/null; echo the job leaves \$(ipcs -m | grep -c mltest-de) shm segments, \$(ipcs -s | grep -c mltest-de) semaphore set, \$(ipcs -q | grep -c mltest-de) message queue and \$(ls /dev/shm | grep -c nccl-demo) /dev/shm files")
wait_for 120 "ml-epilog's line for job $job in $DIR/log/ml-epilog.log" grep -q "job $job " "$DIR/log/ml-epilog.log"
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
  echo "== Dual accounting: on-premises and cloud hours, tagged by mlpolicy, budgeted by Slurm, reported by mlacct"
  echo
  echo "   A cloud node is powered down until a job needs it:"
  show "sinfo -p cloud -o '%P %N %T'"
  echo
  echo "   A job in the cloud partition powers it up (Slurm's ResumeProgram), runs there, and is charged to the shadow account:"
  cloud_job=$(runuser -u mltest-demo -- sbatch --parsable -p cloud -c 2 --gpus=1 -t 10 -o cloud.out --wrap 'sleep 20; echo on $SLURMD_NODENAME account $SLURM_JOB_ACCOUNT')
  onprem_job=$(runuser -u mltest-demo -- sbatch --parsable -p gpu -N1 --gpus-per-node=8 --cpus-per-gpu=4 --exclusive -t 10 -o /dev/null --wrap 'sleep 20')
  for _ in $(seq 30); do sinfo -h -p cloud -o %T | grep -q '#' && break; sleep 0.5; done
  show "sinfo -p cloud -o '%P %N %T'"
  jobs_done() { [ -s cloud.out ] && ! squeue -h -j "$cloud_job,$onprem_job" | grep -q .; }
  wait_for 300 "jobs $cloud_job and $onprem_job to end" jobs_done
  show "cat cloud.out"
  # Job records reach slurmdbd asynchronously.
  recorded() { [ "$(sacct -n -X -j "$cloud_job,$onprem_job" -o AdminComment -P | grep -c domain)" = 2 ]; }
  wait_for 120 "slurmdbd's records of jobs $cloud_job and $onprem_job" recorded
  echo
  echo "   sacct: each job carries its domain's account, wckey and tag; billing at each partition's weights:"
  show "sacct -X -j $cloud_job,$onprem_job -o JobID,Partition,Account,WCKey,AdminComment%50,AllocTRES%50"
  echo
  # slurmctld charges usage to the accounts every PriorityCalcPeriod (1 minute here).
  for _ in $(seq 90); do
    scontrol -o show assoc_mgr accounts=proj_cloud flags=assoc | grep -q 'billing=6000000([1-9]' && break
    sleep 1
  done
  echo "   Idle for the partition's SuspendTime, the cloud node is powered down again (SuspendProgram):"
  for _ in $(seq 60); do sinfo -h -p cloud -o %T | grep -qx 'idle~' && break; sleep 1; done
  show "sinfo -p cloud -o '%P %N %T'"
  echo
  echo "   mlacct: usage, cost and the budget left per domain, account and user:"
  show "$DIR/bin/mlacct --since today"
fi
echo
echo "The cluster is still running. Use it with:"
echo "  export SLURM_CONF=$SLURM_CONF"
echo "Stop it with:"
echo "  ./scripts/demo.sh stop"
