#!/bin/bash
# Accounts, users, budgets and the cloud QOS for dual accounting (slurm.conf.accounting).
# Run once per project as a Slurm administrator; running it again changes nothing that
# exists except the budget and QOS settings. Everything comes from the environment:
#
#   ACCOUNT=proj USERS="alice bob" BUDGET_BILLING_MINUTES=6000000 ./sacctmgr-setup.sh
#
#   ACCOUNT                 the project's account (on-premises jobs are charged here)
#   SHADOW                  its cloud shadow account (default: ${ACCOUNT}_cloud, the name
#                           mlpolicy's account_suffix "_cloud" gives; see account_map)
#   USERS                   users of the project, added to both accounts
#   BUDGET_BILLING_MINUTES  the cloud budget, in billing-minutes (GrpTRESMins=billing=N).
#                           With the weights of slurm.conf.accounting one billing unit is
#                           one cent per hour, so N = USD x 100 x 60 (1000 USD: 6000000).
#   CLOUD_PARENT            where shadow accounts live (default: root; see below)
#   CLOUD_QOS               the QOS of cloud jobs (default: cloud)
#   CLOUD_QOS_BUDGET        optional: the site's cloud budget over all projects, in
#                           billing-minutes, on that QOS
#   CLUSTER                 optional: the cluster (default: every cluster sacctmgr knows)
#   SACCTMGR                the sacctmgr to run (default: sacctmgr from PATH)
set -euo pipefail

ACCOUNT=${ACCOUNT:?set ACCOUNT, e.g. ACCOUNT=proj}
SHADOW=${SHADOW:-${ACCOUNT}_cloud}
USERS=${USERS:-}
BUDGET_BILLING_MINUTES=${BUDGET_BILLING_MINUTES:?set BUDGET_BILLING_MINUTES (USD x 6000)}
CLOUD_PARENT=${CLOUD_PARENT:-root}
CLOUD_QOS=${CLOUD_QOS:-cloud}
CLOUD_QOS_BUDGET=${CLOUD_QOS_BUDGET:-}
SACCTMGR=${SACCTMGR:-sacctmgr}
cluster=()
[ -n "${CLUSTER:-}" ] && cluster=("cluster=$CLUSTER")

# -i: no "Would you like to commit changes?" prompt.
mgr() { echo "+ sacctmgr $*"; "$SACCTMGR" -i "$@"; }
exists() { [ -n "$("$SACCTMGR" -n -P show "$1" "$2" format="$3" 2>/dev/null)" ]; }

# The cloud QOS. Flags=NoDecay: its usage never decays, whatever PriorityDecayHalfLife
# says, so a GrpTRESMins on it is a true budget for the whole site's cloud spend (jobs
# over it pend with QOSGrpBillingMinutes). PriorityUsageResetPeriod does not reset it:
# each month, `sacctmgr -i modify qos cloud set RawUsage=0`.
exists qos "$CLOUD_QOS" name || mgr add qos "$CLOUD_QOS"
mgr modify qos where name="$CLOUD_QOS" set Flags=NoDecay
if [ -n "$CLOUD_QOS_BUDGET" ]; then
  mgr modify qos where name="$CLOUD_QOS" set GrpTRESMins=billing="$CLOUD_QOS_BUDGET"
fi

# The project's own account: on-premises jobs, fair share as before.
exists account "$ACCOUNT" account || mgr add account "$ACCOUNT" "${cluster[@]}" \
  Description="$ACCOUNT" Organization="$ACCOUNT"

# The shadow account is a sibling of the project's account (under root, or under a
# CLOUD_PARENT that holds every project's shadow), not its child: a child's usage is
# part of its parent's usage, so cloud hours would lower the project's fair share on
# the on-premises nodes. Cloud hours are paid in money and counted against the budget
# below; as a sibling, the parent's fair share stays whole.
exists account "$SHADOW" account || mgr add account "$SHADOW" "${cluster[@]}" \
  Parent="$CLOUD_PARENT" Description="cloud usage of $ACCOUNT" Organization="$ACCOUNT"
# The budget: billing-minutes (GrpTRESMins=cpu=N would count CPU-minutes instead). With
# AccountingStorageEnforce=...,safe a job starts only if billing x its time limit fits in
# what is left; otherwise it pends with reason AssocGrpBillingMinutes. Set before the
# users are added: their associations take the account's QOS list when made.
mgr modify account where name="$SHADOW" "${cluster[@]}" set \
  GrpTRESMins=billing="$BUDGET_BILLING_MINUTES" QOS="$CLOUD_QOS" DefaultQOS="$CLOUD_QOS"

# Users: in both accounts, on-premises by default. Jobs reach the shadow account through
# mlpolicy's tagging (a job in the cloud partition is charged to it) or -A "$SHADOW".
for user in $USERS; do
  if exists user "$user" user; then
    "$SACCTMGR" -n -P show assoc where user="$user" account="$ACCOUNT" format=account |
      grep -q . || mgr add user "$user" Account="$ACCOUNT" "${cluster[@]}"
  else
    mgr add user "$user" Account="$ACCOUNT" DefaultAccount="$ACCOUNT" "${cluster[@]}"
  fi
  "$SACCTMGR" -n -P show assoc where user="$user" account="$SHADOW" format=account |
    grep -q . || mgr add user "$user" Account="$SHADOW" "${cluster[@]}"
done

# Each month (PriorityUsageResetPeriod=MONTHLY does it for the accounts on the 1st):
#   sacctmgr -i modify account where name="$SHADOW" set RawUsage=0    # a project, now
#   sacctmgr -i modify qos where name="$CLOUD_QOS" set RawUsage=0     # the site total
# Budget left, as slurmctld counts it (minutes used in parentheses):
#   scontrol show assoc_mgr accounts="$SHADOW" flags=assoc | grep -o 'GrpTRESMins=[^ ]*'
#   sshare -l -A "$SHADOW"
