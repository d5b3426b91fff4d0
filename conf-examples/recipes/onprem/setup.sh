#!/bin/bash
# On-premises Slurm (Debian's packages: Slurm 22.05 on Debian 12, 24.11 on Debian 13,
# 26.05 on sid; SchedMD's slurm-smd packages work the same way). One role per run, as root:
#
#   ./setup.sh controller   slurmctld's host: job_submit_mlpolicy.so, mlpolicy
#   ./setup.sh node         every slurmd host: ml-epilog, ml-healthcheck (+ the login files)
#   ./setup.sh login        hosts where users run srun/sbatch/salloc: spank_mlenv.so, mlacct
#                           (also on the controller's host where admins read reports there)
#
# The packages are built for one Slurm release (the version says which: 0.1.0+slurm22.05.8):
# a plugin only loads into the release it was built against (plugin_version). For another
# release, build them on a machine that has it (scripts/build-debs.sh there), or install
# from source with scripts/install.sh (PLUGINDIR=, SLURM_INCLUDE_DIR= for Slurm elsewhere).
#
# The configuration is the examples the packages ship (conf-examples/ in the source):
#   slurm.conf.fragment  the slurm.conf lines (JobSubmitPlugins, Prolog, Epilog, HealthCheck*)
#   plugstack.conf       the SPANK line of spank_mlenv.so
#   gres.conf            GPUs as GRES
#   mlpolicy.json        the partition and GPU rules (edit it for your partitions)
#   mlenv.json           mlenv's fabric profiles (plugstack.conf's line names it: without
#                        it the required plugin fails every srun and job)
#   ml-epilog.conf, ml-healthcheck.json   the helpers' settings
# This script copies them to /etc/slurm only where no file of that name exists: an
# admin's files are never overwritten. Merge slurm.conf.fragment into slurm.conf by hand.
set -euo pipefail
role=${1:?usage: setup.sh controller|node|login}
DEBS=${DEBS:-.}            # where slurm-ml-*.deb are
ETC=${ETC:-/etc/slurm}     # where slurm.conf is

# Copies an example to $ETC unless the admin has one there; root-owned, mode 0644 (the
# plugins and helpers refuse a config that others can write).
example() {
  local pkg=$1 name=$2
  if [ -e "$ETC/$name" ]; then
    echo "kept $ETC/$name (yours)"
  else
    install -m 0644 -o root -g root "/usr/share/doc/$pkg/examples/$name" "$ETC/$name"
    echo "installed $ETC/$name: edit it"
  fi
}

case "$role" in
  login)
    apt-get install -y "$DEBS"/slurm-ml-login_*.deb
    # plugstack.conf is read by srun/sbatch/salloc here and by slurmstepd on the nodes:
    # the same file everywhere (configless clusters ship it from slurmctld).
    example slurm-ml-login plugstack.conf
    example slurm-ml-login mlenv.json   # plugstack.conf's line names it (profiles=)
    # mlacct reads the accounting domains from mlpolicy.json beside slurm.conf: copy the
    # controller's /etc/slurm/mlpolicy.json here (or pass --policy FILE); without it every
    # partition is onprem and unpriced, and mlacct says so on stderr.
    [ -e "$ETC/mlpolicy.json" ] || echo "mlacct: copy the controller's $ETC/mlpolicy.json here for its domains"
    ;;
  node)
    # slurm-ml-node depends on slurm-ml-login (the SPANK plugin runs in slurmstepd).
    apt-get install -y "$DEBS"/slurm-ml-login_*.deb "$DEBS"/slurm-ml-node_*.deb
    example slurm-ml-login plugstack.conf
    example slurm-ml-login mlenv.json
    example slurm-ml-node ml-epilog.conf
    example slurm-ml-node ml-healthcheck.json   # set expect_gpus for this node type
    # Epilog=/etc/slurm/epilog.d/* (slurm.conf.fragment) runs every file there: one per
    # helper, so a site's own epilog scripts sit beside them. Slurm 22.05 allows one
    # Epilog line only; the glob is how several programs run after each job.
    mkdir -p "$ETC/epilog.d"
    ln -sfn /usr/sbin/ml-epilog "$ETC/epilog.d/10-ml-epilog"
    ln -sfn /usr/sbin/ml-healthcheck "$ETC/epilog.d/20-ml-healthcheck"
    # Try them before slurm.conf points at them:
    /usr/sbin/ml-healthcheck --dry-run || true
    ;;
  controller)
    apt-get install -y "$DEBS"/slurm-ml-controller_*.deb
    example slurm-ml-controller mlpolicy.json
    # The policy must name partitions slurm.conf has: check it before slurmctld loads it.
    /usr/sbin/mlpolicy validate "$ETC/mlpolicy.json"
    echo "now merge /usr/share/doc/slurm-ml-controller/examples/slurm.conf.fragment into $ETC/slurm.conf,"
    echo "then restart slurmctld (a new JobSubmitPlugins needs a restart, not a reconfigure)"
    ;;
  *) echo "usage: setup.sh controller|node|login" >&2; exit 2 ;;
esac
