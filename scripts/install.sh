#!/usr/bin/env bash
# Installs this project from source onto a machine with Slurm installed: release builds of
# the plugins under Slurm's file names (job_submit_mlpolicy.so, spank_mlenv.so) in the
# installed Slurm's PluginDir, the helpers in sbin/bin, the example configs in
# share/doc/<package>/examples (never /etc/slurm: an admin's files stay the admin's).
# Every file is a line of packaging/manifest (the same list the Debian packages use).
#   ./scripts/install.sh                 build and install (as root)
#   ./scripts/install.sh --no-build      install what the last release build left
#   ./scripts/install.sh --uninstall     remove exactly what the last install put down
# Environment: PREFIX (default /usr) replaces /usr in the helpers' and examples' paths;
# DESTDIR is prepended to every path (staging); PLUGINDIR overrides the PluginDir found;
# PROFILE is the cargo profile (default release); SLURM_INCLUDE_DIR as for cargo.
# It refuses, with one line, when the Slurm headers are another release than the
# installed daemons: the plugins would not load.
set -euo pipefail
cd "$(dirname "$0")/.."
. packaging/common.sh

PREFIX=${PREFIX:-/usr}
PREFIX=${PREFIX%/}
DESTDIR=${DESTDIR:-}
DESTDIR=${DESTDIR%/}
# What install put down, one path a line (without DESTDIR); --uninstall reads it.
LIST=$PREFIX/share/slurm-ml/installed-files

# A manifest DEST under PREFIX: /usr/sbin/x -> $PREFIX/sbin/x; PluginDir stays Slurm's.
prefixed() {
  case "$1" in
    /usr/*) echo "$PREFIX${1#/usr}" ;;
    *) echo "$1" ;;
  esac
}

uninstall() {
  local list=$DESTDIR$LIST f
  [ -f "$list" ] || die "nothing to uninstall: no $list (install.sh writes it)"
  while IFS= read -r f; do
    [ -n "$f" ] || continue
    # rm never follows a symlink; a file that is already gone is fine.
    rm -f -- "$DESTDIR$f"
    echo "removed $f"
  done < "$list"
  rm -f -- "$list"
  # Only the directories that are ours, and only when empty.
  for f in "$DESTDIR$PREFIX"/share/doc/slurm-ml-*/examples/accounting \
           "$DESTDIR$PREFIX"/share/doc/slurm-ml-*/examples "$DESTDIR$PREFIX"/share/doc/slurm-ml-* \
           "$DESTDIR$PREFIX/share/slurm-ml"; do
    [ -d "$f" ] && rmdir --ignore-fail-on-non-empty -- "$f"
  done
  return 0
}

install_all() {
  local build=$1 release plugindir pkg src dest mode list=$DESTDIR$LIST
  release=$(check_same_release)
  plugindir=$(slurm_plugindir)
  [ "$build" = 1 ] && build_release
  # Each file goes on the list as it is installed (an install that stops halfway can
  # still be uninstalled); an earlier install's list is kept and merged.
  mkdir -p -- "$(dirname "$list")"
  touch -- "$list"
  while read -r pkg src dest; do
    src=$(source_path "$src")
    [ -f "$src" ] || die "$src is missing (build first, or drop --no-build)"
    dest=$(prefixed "$(dest_path "$dest" "$plugindir")")
    case "$dest" in
      */share/doc/*) mode=0644 ;;  # examples to copy, not to run from here
      *.so) mode=0644 ;;
      *) mode=0755 ;;
    esac
    install -D -m "$mode" -- "$src" "$DESTDIR$dest"
    echo "$dest" >> "$list"
    echo "installed $dest ($pkg)"
  done < <(manifest_entries)
  sort -u -o "$list" "$list"
  echo "Slurm $release, PluginDir $plugindir; the list of installed files is $LIST"
}

case "${1:-}" in
  --uninstall) uninstall ;;
  --no-build) install_all 0 ;;
  "") install_all 1 ;;
  -h|--help) sed -n '2,15s/^# \{0,1\}//p' "$0" ;;
  *) die "unknown option $1 (--no-build, --uninstall, --help)" ;;
esac
