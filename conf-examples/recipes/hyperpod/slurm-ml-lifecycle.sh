#!/bin/bash
# AWS SageMaker HyperPod (Slurm): a lifecycle-script fragment that puts this project on
# every node of the cluster. awsome-distributed-training's LifecycleScripts/base-config
# runs lifecycle_script.py on every node, which knows the node's type (its SlurmNodeType:
# controller, login, compute); call this there after Slurm is set up, e.g.
#
#   ExecuteBashScript("./slurm-ml-lifecycle.sh").run(node_type)
#
# which runs `sudo bash slurm-ml-lifecycle.sh controller|login|compute`.
#
# HyperPod's Slurm is built from source under /opt/slurm, with no Debian packages of Slurm
# to depend on, so this builds against the cluster's own Slurm (/opt/slurm/include, the
# release the daemons run: plugin_version must match) with scripts/install.sh. It targets
# whatever release the cluster has (`/opt/slurm/bin/sinfo -V`); nothing to change for
# another. The source comes from S3 next to the lifecycle scripts (SRC_S3), e.g. a
# `git archive` of this repository uploaded with them.
#
# HyperPod runs configless Slurm: slurmd and the clients get slurm.conf and the files it
# includes from slurmctld, but only files beside slurm.conf (/opt/slurm/etc) are shipped,
# and only a plugstack.conf include that names a file with no '/'. So the config lines go
# into /opt/slurm/etc on the controller, and every node gets the binaries and the .so.
set -euo pipefail
node_type=${1:?usage: slurm-ml-lifecycle.sh controller|login|compute}
SLURM=${SLURM:-/opt/slurm}
ETC=$SLURM/etc
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=${SRC:-}         # an unpacked source tree (root's own), else SRC_S3 is fetched
SRC_S3=${SRC_S3:-}   # s3://bucket/hyperpod/slurm-ml.tar.gz (a git archive of this repo)

# --- Build and install against /opt/slurm (every node: the .so and helpers are local) ---
if [ ! -x /usr/sbin/ml-healthcheck ]; then
  if [ -z "$SRC" ]; then
    # A fresh directory, not a fixed /tmp path: root builds and installs what is in it.
    SRC=$(mktemp -d /tmp/slurm-ml-src.XXXXXX)
    aws s3 cp "${SRC_S3:?set SRC_S3 (or SRC)}" - | tar -xz -C "$SRC"
  fi
  # Rust 1.88 or newer; HyperPod's AMI has none. rustup installs it for root only.
  command -v cargo >/dev/null || {
    curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
    . "$HOME/.cargo/env"
  }
  # The build needs libclang (bindgen) and pkg-config; the AMI is Ubuntu.
  apt-get install -y -q clang libclang-dev pkg-config >/dev/null
  # SLURM_INCLUDE_DIR: build against this cluster's headers; PLUGINDIR: Slurm's own
  # plugins are in /opt/slurm/lib/slurm. Helpers go to /usr/sbin and /usr/bin (PREFIX=/usr),
  # the paths slurm.conf.fragment names. install.sh refuses headers of another
  # release than the daemons, with one line.
  (cd "$SRC" && SLURM_INCLUDE_DIR="$SLURM/include" PLUGINDIR="$SLURM/lib/slurm" ./scripts/install.sh)
fi

case "$node_type" in
  controller)
    # plugstack.conf beside slurm.conf is shipped to every node by configless slurmctld.
    # HyperPod's own already loads pyxis: add our line to it, never replace it.
    touch "$ETC/plugstack.conf"
    grep -q 'spank_mlenv\.so' "$ETC/plugstack.conf" ||
      grep -v '^#' "$HERE/plugstack.conf" >> "$ETC/plugstack.conf"
    # mlpolicy.json steers slurmctld: root-owned, not writable by others (else refused).
    [ -e "$ETC/mlpolicy.json" ] ||
      install -m 0644 /usr/share/doc/slurm-ml-controller/examples/mlpolicy.json "$ETC/mlpolicy.json"
    if grep -q '^JobSubmitPlugins=' "$ETC/slurm.conf"; then
      echo "$ETC/slurm.conf has JobSubmitPlugins already: merge slurm.conf.fragment by hand"
    else
      cat "$HERE/slurm.conf.fragment" >> "$ETC/slurm.conf"
    fi
    SLURM_CONF=$ETC/slurm.conf /usr/sbin/mlpolicy validate "$ETC/mlpolicy.json"
    # JobSubmitPlugins is read at start: restart a running slurmctld (a reconfigure is not
    # enough); one not started yet reads it when the lifecycle scripts start it.
    systemctl try-restart slurmctld
    ;;
  compute)
    # Node settings are not shipped by configless Slurm: each node has its own copy, in
    # /etc/slurm, where the helpers look when SLURM_CONF does not lead them beside
    # slurm.conf (slurmd runs them with almost no environment).
    install -d -m 0755 /etc/slurm
    install -m 0644 "$HERE/ml-healthcheck.json" /etc/slurm/ml-healthcheck.json
    install -m 0644 /usr/share/doc/slurm-ml-node/examples/ml-epilog.conf /etc/slurm/ml-epilog.conf
    ;;
  login) ;;  # srun/sbatch load spank_mlenv.so, installed above
  *) echo "unknown node type $node_type" >&2; exit 2 ;;
esac
