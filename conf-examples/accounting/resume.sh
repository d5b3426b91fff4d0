#!/bin/bash
# ResumeProgram for the cloud partition (slurm.conf.accounting): slurmctld runs it as
# SlurmUser with a hostlist of nodes to power up ($1, e.g. "cloud-[3-5]"), the job list
# as JSON in the file $SLURM_RESUME_FILE, and nothing else in the environment (no PATH).
# For each node it launches one instance that starts `slurmd -N <node>` at boot (the
# node name travels in the instance's tags or user data; AWS's resume.py does the same
# with an EC2 fleet). It returns as soon as the launches are requested: slurmctld waits
# up to ResumeTimeout for each slurmd to register, then sets the node DOWN.
#
# The cloud CLI calls are placeholders (commented): fill in your provider's. The local
# test cluster's version of this program starts a local slurmd per node instead
# (tests/local-cluster, ResumeProgram written into the cluster directory).
set -u
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# slurmctld does not keep the program's output: log it.
exec </dev/null >>/var/log/slurm/power_save.log 2>&1
echo "$(date +%FT%T) resume $1"

# Node names from the hostlist (runs outside slurmctld's locks: this is allowed here).
nodes=$(scontrol show hostnames "$1") || exit 1

failed=()
for node in $nodes; do
  # --- placeholder: launch an instance for $node and print its private IP ---
  # ip=$(aws ec2 run-instances --launch-template LaunchTemplateName=slurm-cloud \
  #        --tag-specifications "ResourceType=instance,Tags=[{Key=Name,Value=$node}]" \
  #        --query 'Instances[0].PrivateIpAddress' --output text) || { failed+=("$node"); continue; }
  ip=
  if [ -z "$ip" ]; then
    failed+=("$node")
    continue
  fi
  # Without SlurmctldParameters=cloud_dns, slurmctld learns the address here; from 23.11
  # it also takes it from the slurmd's registration.
  scontrol update nodename="$node" nodeaddr="$ip" nodehostname="$node" ||
    failed+=("$node")
done

# A node that could not be launched: tell slurmctld now instead of after ResumeTimeout
# (its jobs are requeued onto other nodes).
if [ "${#failed[@]}" -gt 0 ]; then
  list=$(IFS=,; echo "${failed[*]}")
  echo "launch failed: $list"
  scontrol update nodename="$list" state=power_down_force reason="cloud launch failed"
fi
exit 0
