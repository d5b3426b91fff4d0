#!/bin/bash
# SuspendProgram for the cloud partition (slurm.conf.accounting): slurmctld runs it with
# a hostlist of nodes idle for SuspendTime ($1). For each node it ends that node's
# instance; slurmctld counts the node as powered down (idle~) SuspendTimeout seconds
# later and may resume it again after that, so the instance must be gone by then.
#
# The cloud CLI calls are placeholders (commented): fill in your provider's. The local
# test cluster's version stops the local slurmd of each node instead.
set -u
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
exec </dev/null >>/var/log/slurm/power_save.log 2>&1
echo "$(date +%FT%T) suspend $1"

nodes=$(scontrol show hostnames "$1") || exit 1
for node in $nodes; do
  # --- placeholder: find the instance tagged with $node and end it ---
  # id=$(aws ec2 describe-instances \
  #        --filters "Name=tag:Name,Values=$node" "Name=instance-state-name,Values=pending,running" \
  #        --query 'Reservations[].Instances[].InstanceId' --output text)
  # [ -n "$id" ] && aws ec2 terminate-instances --instance-ids $id >/dev/null
  echo "would end the instance of $node"
done
exit 0
