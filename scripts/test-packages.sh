#!/usr/bin/env bash
# The package test, as root on a throwaway machine (or a release root): builds the three
# .debs for the Slurm installed here, installs them with apt-get, boots a local cluster on
# the installed files (the plugins from Slurm's PluginDir, ml-epilog from /usr/sbin, the
# example policy from /usr/share/doc), runs jobs a user would (mlenv's RANK in every task,
# an over-limit job refused by mlpolicy with its line, a leftover removed by ml-epilog as
# Epilog), purges the packages and checks that nothing they installed is left.
#   ./scripts/test-packages.sh
# Needs the workspace's debug build of local-cluster (cargo build -p local-cluster).
set -euo pipefail
cd "$(dirname "$0")/.."
. packaging/common.sh

[ "$(id -u)" -eq 0 ] || die "run as root (apt-get, Slurm daemons)"
PACKAGES=(slurm-ml-login slurm-ml-node slurm-ml-controller)
USER_NAME=mltest-pkg
work=$(mktemp -d /tmp/slurm-ml-packages.XXXXXX)
chmod 0755 "$work"  # the job's user reads the cluster's files under it
cluster=$work/cluster
lc=${CARGO_TARGET_DIR:-target}/debug/local-cluster
installed=0

cleanup() {
  [ -f "$cluster/slurm.conf" ] && "$lc" stop --dir "$cluster" >/dev/null 2>&1 || true
  if [ "$installed" = 1 ]; then  # a failed run leaves no package behind either
    DEBIAN_FRONTEND=noninteractive apt-get purge -y -q "${PACKAGES[@]}" >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }
# Exact comparison of what a user sees with what it must be.
expect() {  # WHAT EXPECTED ACTUAL
  [ "$2" = "$3" ] || fail "$1: expected
$2
got
$3"
  ok "$1"
}

cargo build -q -p local-cluster
echo "== build the packages (Slurm $(check_same_release))"
./scripts/build-debs.sh "$work/debs"
plugindir=$(slurm_plugindir)
release=$(slurm_daemon_version)
for deb in "$work"/debs/*.deb; do
  echo "-- $(basename "$deb")"
  dpkg-deb -f "$deb" Version Depends Breaks
done
# slurmctld loads a job_submit plugin only of its own micro release (plugin.c).
next_micro=${release%.*}.$((${release##*.} + 1))~
# The plugins sit in this machine's PluginDir, which only this flavour of Slurm packages
# reads (Debian's slurm-wlm or SchedMD's slurm-smd): the packages name that flavour only.
case "$(dpkg -S "$plugindir/auth_munge.so" | cut -d: -f1)" in
  slurm-smd*) ctld=slurm-smd-slurmctld other='slurmctld\b|slurmd\b|slurm-client\b|libslurm' ;;
  *) ctld=slurmctld other='slurm-smd' ;;
esac
expect "the controller package breaks the next slurmctld micro release" \
  "$ctld (>= $next_micro)" \
  "$(dpkg-deb -f "$work"/debs/slurm-ml-controller_*.deb Breaks)"
# The controller fits one micro release: a build for the next one must be a newer version
# (apt skips a .deb of the version installed, "already the newest version").
expect "the version names the micro release" \
  "$(workspace_version)+slurm$release $(workspace_version)+slurm$release $(workspace_version)+slurm$release" \
  "$(for deb in "$work"/debs/*.deb; do dpkg-deb -f "$deb" Version; done | paste -sd' ')"
expect "no package names the other flavour's Slurm packages (its PluginDir differs)" "" \
  "$(for deb in "$work"/debs/*.deb; do dpkg-deb -f "$deb" Depends Breaks; done | grep -E "$other" || true)"

echo "== scripts/install.sh from the same build (DESTDIR)"
DESTDIR=$work/stage ./scripts/install.sh --no-build > "$work/install.log"
expect "install.sh puts down one file per manifest line, and its list" \
  "$(manifest_entries | wc -l) 1" \
  "$(find "$work/stage" -type f ! -path '*/share/slurm-ml/*' | wc -l) $(find "$work/stage" -type f -path '*/share/slurm-ml/*' | wc -l)"
# The package ships it stripped; the same build, stripped alike, is byte for byte the same.
strip --strip-unneeded --remove-section=.comment --remove-section=.note \
  -o "$work/spank_mlenv.so" "$work/stage$plugindir/spank_mlenv.so"
dpkg-deb --fsys-tarfile "$work"/debs/slurm-ml-login_*.deb | tar -xO ".$plugindir/spank_mlenv.so" |
  cmp -s - "$work/spank_mlenv.so" || fail "install.sh's spank_mlenv.so is not the packaged build"
ok "install.sh's spank_mlenv.so in $plugindir is the packaged build"
DESTDIR=$work/stage ./scripts/install.sh --uninstall > /dev/null
expect "install.sh --uninstall leaves no file" "" "$(find "$work/stage" -type f)"
# An admin's own file in PluginDir and an example the admin edited stay; a file install.sh
# did not put down is never overwritten (nor removed later): it stops before writing.
DESTDIR=$work/stage ./scripts/install.sh --no-build > /dev/null
echo admin > "$work/stage$plugindir/site_plugin.so"
echo '{}' > "$work/stage/usr/share/doc/slurm-ml-controller/examples/mlpolicy.json"
expect "install.sh --uninstall keeps an edited file and says so" \
  "kept /usr/share/doc/slurm-ml-controller/examples/mlpolicy.json (changed since install: it is yours now)" \
  "$(DESTDIR=$work/stage ./scripts/install.sh --uninstall | grep -v '^removed ')"
expect "... and the admin's files are all that is left" \
  "$work/stage$plugindir/site_plugin.so
$work/stage/usr/share/doc/slurm-ml-controller/examples/mlpolicy.json" \
  "$(find "$work/stage" -type f | LC_ALL=C sort)"
rm -rf "$work/stage"
mkdir -p "$work/stage/usr/sbin"
echo admin > "$work/stage/usr/sbin/mlpolicy"
expect "install.sh refuses to overwrite a file it did not put down, in one line, writing nothing" \
  "error: $work/stage/usr/sbin/mlpolicy is already there and not from an earlier install.sh (no package owns it): remove it first
exit 1
$work/stage/usr/sbin/mlpolicy" \
  "$(DESTDIR=$work/stage ./scripts/install.sh --no-build 2>&1; echo "exit $?"; find "$work/stage" -type f)"
rm -rf "$work/stage"
# Headers one micro release off the daemons: the plugins would not load.
mkdir -p "$work/other/slurm"
IFS=. read -r ma mi mc <<< "$release"
printf '#define SLURM_VERSION_NUMBER 0x%02x%02x%02x\n' "$ma" "$((10#$mi))" "$((mc + 1))" \
  > "$work/other/slurm/slurm_version.h"
expect "install.sh refuses headers of another release, in one line" \
  "error: the Slurm headers in $work/other are $ma.$mi.$((mc + 1)) but the installed daemons are $release: plugins built here would not load (plugin_version); install the headers of $release or set SLURM_INCLUDE_DIR
exit 1" \
  "$(SLURM_INCLUDE_DIR=$work/other DESTDIR=$work/stage ./scripts/install.sh --no-build 2>&1; echo "exit $?")"

# What the packages will install; a file already there would be taken over, a directory
# already there (/usr/sbin) stays after the purge.
for deb in "$work"/debs/*.deb; do
  dpkg-deb --fsys-tarfile "$deb" | tar -t | sed -e 's|^\./|/|' -e 's|/$||' -e '/^$/d'
done | LC_ALL=C sort -u > "$work/contents"
while read -r p; do
  if [ -d "$p" ] && [ ! -L "$p" ]; then
    echo "$p"
  elif [ -e "$p" ] || [ -L "$p" ]; then
    fail "$p is already on this machine: the packages would take it over"
  fi
done < "$work/contents" > "$work/dirs-before"

echo "== apt-get install ./*.deb"
installed=1
DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$work"/debs/*.deb > "$work/apt.log" 2>&1 ||
  { cat "$work/apt.log" >&2; fail "apt-get install"; }
for pkg in "${PACKAGES[@]}"; do
  echo "-- dpkg -L $pkg ($(dpkg-query -W -f='${Version}' "$pkg"))"
  dpkg -L "$pkg" | tee -a "$work/dpkg-L"
done
for b in /usr/sbin/ml-epilog /usr/sbin/ml-healthcheck /usr/sbin/mlpolicy /usr/bin/mlacct; do
  "$b" --help > /dev/null 2>&1 || fail "$b --help"
done
ok "each installed program answers --help"

echo "== a local cluster on the installed files"
echo "log_file = @CLUSTER_DIR@/log/ml-epilog.log" > "$work/ml-epilog.conf"
"$lc" start --dir "$cluster" --nodes 2 \
  --spank "$plugindir/spank_mlenv.so:addr=nodeaddr" \
  --job-submit "$plugindir/job_submit_mlpolicy.so" \
  --epilog /usr/sbin/ml-epilog --file "ml-epilog.conf=$work/ml-epilog.conf" \
  --file "mlpolicy.json=/usr/share/doc/slurm-ml-controller/examples/mlpolicy.json" \
  --conf "PartitionName=gpu Nodes=n[1-2] State=UP" \
  --conf "PartitionName=interactive Nodes=n[1-2] State=UP" \
  --conf "PartitionName=cpu Nodes=n[1-2] State=UP" > /dev/null
export SLURM_CONF=$cluster/slurm.conf
id -u "$USER_NAME" >/dev/null 2>&1 || useradd --user-group --create-home --shell /bin/bash "$USER_NAME"
as_user() { (cd "$cluster/work" && runuser -u "$USER_NAME" -- "$@"); }

expect "mlpolicy validate on the installed example, against this cluster's slurm.conf" \
  "/usr/share/doc/slurm-ml-controller/examples/mlpolicy.json: ok: 3 partition rule set(s): cpu (cpu), gpu (gpu), interactive (gpu); default partitions: gpu gpu, cpu cpu; 1 admin uid(s), 1 admin account(s)
admins.accounts ignored: AccountingStorageEnforce lacks associations, any user may name any account ($SLURM_CONF)
exit 0" \
  "$(/usr/sbin/mlpolicy validate /usr/share/doc/slurm-ml-controller/examples/mlpolicy.json 2>&1; echo "exit $?")"

expect "mlenv sets RANK and WORLD_SIZE in every task (srun -p cpu -N2 -n4)" \
"0 4
1 4
2 4
3 4" "$(as_user srun -p cpu -N2 -n4 bash -c 'echo $RANK $WORLD_SIZE' | sort -n)"

refused=$(as_user sbatch -p interactive --gpus=4 --time=1:00:00 -o /dev/null --wrap true 2>&1) &&
  fail "an over-limit job was accepted: $refused"
expect "mlpolicy refuses an over-limit job with its line" \
  "sbatch: error: mlpolicy: partition 'interactive' allows at most 2 GPUs per job; this request can get 4 (on 1 node(s)): use fewer nodes, tasks or GPUs (see https://wiki.example.org/hpc/gpu-policy)
sbatch: error: Batch job submission failed: Invalid generic resource (gres) specification" "$refused"

# A leftover shm segment (no process attached) and a /dev/shm file, as killed NCCL ranks
# leave them; ml-epilog as Epilog removes both once the job ends.
job=$(as_user sbatch --parsable -p cpu -w n1 -o leftovers.out --wrap \
  'ipcmk -M 4096 >/dev/null; touch /dev/shm/nccl-pkgtest; echo $(ipcs -m | grep -c mltest-pk) $(ls /dev/shm | grep -c nccl-pkgtest)')
for _ in $(seq 300); do
  grep -q "job $job " "$cluster/log/ml-epilog.log" 2>/dev/null && break
  sleep 0.2
done
# Read as the user: root never follows what a user may have made a symlink.
expect "the job left a shm segment and a /dev/shm file" "1 1" "$(as_user cat leftovers.out)"
# Without the time stamp, the pid and the run's duration (its last field).
expect "ml-epilog's log line for the job" \
  "job $job user $USER_NAME (uid $(id -u "$USER_NAME")) on n1: removed 1 shm (4.0 KiB), 0 sem, 0 msg, 1 files (0 B) [user has no processes left here: all of the user's objects]; 0 errors" \
  "$(grep "job $job " "$cluster/log/ml-epilog.log" | sed -E 's/^.*ml-epilog\[[0-9]+\]: //; s/; [^;]*$//')"
expect "after the job: no shm segment, no /dev/shm file" "0 0" \
  "$(echo $(ipcs -m | grep -c mltest-pk) $(ls /dev/shm | grep -c nccl-pkgtest))"
"$lc" stop --dir "$cluster" > /dev/null
rm -f "$cluster/slurm.conf"

echo "== apt-get purge"
DEBIAN_FRONTEND=noninteractive apt-get purge -y -q "${PACKAGES[@]}" > "$work/apt.log" 2>&1 ||
  { cat "$work/apt.log" >&2; fail "apt-get purge"; }
installed=0
left=$(grep -vx '/\.' "$work/dpkg-L" | LC_ALL=C sort -u | LC_ALL=C comm -23 - "$work/dirs-before" | while read -r p; do
  { [ -e "$p" ] || [ -L "$p" ]; } && echo "$p"
done || true)
expect "nothing the packages installed is left (dpkg -L before, the file tree after)" "" "$left"
echo "package test passed: Slurm $release, PluginDir $plugindir"
