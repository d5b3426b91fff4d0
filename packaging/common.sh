# Shared by scripts/install.sh, scripts/build-debs.sh and scripts/test-packages.sh (sourced,
# from the repository root): the manifest, the installed Slurm's release and PluginDir, and
# the release build of the packaged crates.

MANIFEST=packaging/manifest
# The crates whose artifacts the manifest names (target:NAME).
PACKAGED_CRATES=(spank-mlenv job-submit-mlpolicy ml-epilog ml-healthcheck mlpolicy-cli mlacct)

die() { echo "error: $*" >&2; exit 1; }

# The manifest without comments and blank lines: `PACKAGE SOURCE DEST` per line.
manifest_entries() {
  sed -e 's/#.*//' "$MANIFEST" | awk 'NF == 3 { print $1, $2, $3 } NF != 0 && NF != 3 {
    printf "error: %s:%d: want PACKAGE SOURCE DEST, got: %s\n", FILENAME, NR, $0 > "/dev/stderr"; exit 1 }'
}

# Our version, from the workspace's Cargo.toml ([workspace.package] version).
workspace_version() {
  awk '/^\[workspace.package\]/ { s = 1; next } /^\[/ { s = 0 }
       s && $1 == "version" { gsub(/"/, "", $3); print $3; exit }' Cargo.toml
}

# The headers cargo builds against, found in slurm-locate's order: SLURM_INCLUDE_DIR,
# pkg-config, then the well-known prefixes.
slurm_include_dir() {
  if [ -n "${SLURM_INCLUDE_DIR:-}" ]; then echo "$SLURM_INCLUDE_DIR"; return; fi
  local d
  for d in $(pkg-config --cflags-only-I slurm 2>/dev/null | sed 's/-I//g') \
           /usr/include /usr/local/include /opt/slurm/include; do
    [ -f "$d/slurm/slurm_version.h" ] && { echo "$d"; return; }
  done
  return 1
}

# major.minor.micro from slurm_version.h's SLURM_VERSION_NUMBER (0x160508 -> 22.05.8).
slurm_header_version() {
  local dir n
  dir=$(slurm_include_dir) || return 1
  n=$(awk '$1 == "#define" && $2 == "SLURM_VERSION_NUMBER" { print $3 }' "$dir/slurm/slurm_version.h")
  [ -n "$n" ] || return 1
  printf '%d.%02d.%d\n' $((n >> 16 & 255)) $((n >> 8 & 255)) $((n & 255))
}

# major.minor.micro of the installed daemons (`slurm-wlm 22.05.8`, `slurm 24.11.5`), or of
# srun on a login node (no daemons there; srun loads the SPANK plugin).
slurm_daemon_version() {
  local d v
  for d in slurmctld slurmd srun; do
    command -v "$d" >/dev/null || continue
    # srun -V needs a slurm.conf (or configless DNS) to answer: nothing, then no check.
    v=$("$d" -V 2>/dev/null | awk '{ print $2; exit }') || true
    [ -n "$v" ] && { echo "$v"; return; }
  done
  return 1
}

# Stops with one line unless the headers and the installed daemons are one release. A
# job_submit plugin's plugin_version must equal slurmctld's in major, minor and micro
# (src/common/plugin.c: mask 0xffffff; SPANK plugins 0xffff00), so the micro counts too.
check_same_release() {
  local h d
  h=$(slurm_header_version) || die "no Slurm headers (slurm/slurm_version.h): install libslurm-dev (Debian) or slurm-smd-dev, or set SLURM_INCLUDE_DIR"
  d=$(slurm_daemon_version) || { echo "$h"; return; }
  [ "$h" = "$d" ] || die "the Slurm headers in $(slurm_include_dir) are $h but the installed daemons are $d: plugins built here would not load (plugin_version); install the headers of $d or set SLURM_INCLUDE_DIR"
  echo "$h"
}

# The installed Slurm's PluginDir: PLUGINDIR= if given, else the directory that holds
# Slurm's own auth_munge.so (Debian: /usr/lib/<triplet>/slurm-wlm; SchedMD's packages:
# /usr/lib/<triplet>/slurm; RPMs: /usr/lib64/slurm; source builds: <prefix>/lib/slurm),
# else what a running slurmctld says.
slurm_plugindir() {
  if [ -n "${PLUGINDIR:-}" ]; then echo "$PLUGINDIR"; return; fi
  local d
  for d in /usr/lib/*-linux-gnu/slurm-wlm /usr/lib/*-linux-gnu/slurm /usr/lib64/slurm \
           /usr/lib/slurm /usr/local/lib/slurm /opt/slurm/lib/slurm /opt/slurm/lib64/slurm; do
    [ -f "$d/auth_munge.so" ] && { echo "$d"; return; }
  done
  d=$(timeout 10 scontrol show config 2>/dev/null | awk '$1 == "PluginDir" { print $3 }')
  [ -n "$d" ] && { echo "${d%%:*}"; return; }
  die "cannot find Slurm's PluginDir (no auth_munge.so in the usual places, no slurmctld answering): set PLUGINDIR="
}

# Cargo's profile for the packaged build and the directory its artifacts land in.
PROFILE=${PROFILE:-release}
artifact_dir() {
  case "$PROFILE" in
    dev | test) echo "${CARGO_TARGET_DIR:-target}/debug" ;;  # cargo's names for these two
    *) echo "${CARGO_TARGET_DIR:-target}/$PROFILE" ;;
  esac
}

build_release() {
  local args=()
  local c
  for c in "${PACKAGED_CRATES[@]}"; do args+=(-p "$c"); done
  cargo build --profile "$PROFILE" "${args[@]}"
}

# The file a manifest SOURCE names: target:NAME in the artifact directory, else the path.
source_path() {
  case "$1" in
    target:*) echo "$(artifact_dir)/${1#target:}" ;;
    *) echo "$1" ;;
  esac
}

# A manifest DEST with @PLUGINDIR@ filled in.
dest_path() { echo "${1//@PLUGINDIR@/$2}"; }
