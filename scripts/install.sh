#!/usr/bin/env bash
# Installs this project from source onto a machine with Slurm installed: release builds of
# the plugins under Slurm's file names (job_submit_mlpolicy.so, spank_mlenv.so) in the
# installed Slurm's PluginDir, the helpers in sbin/bin, the example configs in
# share/doc/<package>/examples (never /etc/slurm: an admin's files stay the admin's).
# Every file is a line of packaging/manifest (the same list the Debian packages use).
#   ./scripts/install.sh                 build and install (as root)
#   ./scripts/install.sh --no-build      install what the last release build left
#   ./scripts/install.sh --uninstall     remove exactly what the last install put down (a
#                                        file changed since then is kept, and said so)
# Environment: PREFIX (default /usr) replaces /usr in the helpers' and examples' paths;
# DESTDIR is prepended to every path (staging); PLUGINDIR overrides the PluginDir found;
# PROFILE is the cargo profile (default release); SLURM_INCLUDE_DIR as for cargo.
# It refuses, with one line, when the Slurm headers are another release than the
# installed daemons: the plugins would not load. It never overwrites a file it did not put
# down (a package's plugin, an admin's program): it stops, before installing anything.
set -euo pipefail
umask 022  # a root umask of 077 would leave $PREFIX/bin unreadable to users
cd "$(dirname "$0")/.."
. packaging/common.sh

PREFIX=${PREFIX:-/usr}
PREFIX=${PREFIX%/}
DESTDIR=${DESTDIR:-}
DESTDIR=${DESTDIR%/}
# What install put down, `SHA256  PATH` a line (PATH without DESTDIR); --uninstall reads it.
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
  local sum
  while read -r sum f; do
    [ -n "$sum" ] || continue
    [ -n "$f" ] || { f=$sum; sum=; }  # a list of paths only (before the checksums)
    if [ -n "$sum" ] && [ -f "$DESTDIR$f" ] && [ ! -L "$DESTDIR$f" ] &&
       [ "$(sha256sum < "$DESTDIR$f" | cut -d' ' -f1)" != "$sum" ]; then
      echo "kept $f (changed since install: it is yours now)"
      continue
    fi
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
  local build=$1 release plugindir pkg src dest mode owner list=$DESTDIR$LIST
  release=$(check_same_release)
  plugindir=$(slurm_plugindir)
  # Each file goes on the list as it is installed (an install that stops halfway can
  # still be uninstalled); an earlier install's list is kept and merged.
  # A file already there that an earlier install did not put down is someone else's:
  # stop before anything is written (uninstall would remove it otherwise).
  local ours
  ours=
  [ -f "$list" ] && ours=$(awk '{ print $NF }' "$list")
  while read -r pkg src dest; do
    dest=$(prefixed "$(dest_path "$dest" "$plugindir")")
    if { [ -e "$DESTDIR$dest" ] || [ -L "$DESTDIR$dest" ]; } && ! grep -qxF -- "$dest" <<< "$ours"; then
      owner=
      [ -n "$DESTDIR" ] || owner=$(dpkg -S "$dest" 2>/dev/null | cut -d: -f1 | head -n1 || true)
      die "$DESTDIR$dest is already there and not from an earlier install.sh (${owner:+package $owner}${owner:-no package owns it}): remove it first"
    fi
  done < <(manifest_entries)
  [ "$build" = 1 ] && build_release
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
    # One line per path: the checksum of this install replaces an earlier one.
    { awk -v p="$dest" '$NF != p' "$list"
      echo "$(sha256sum < "$DESTDIR$dest" | cut -d' ' -f1)  $dest"; } > "$list.new"
    mv -f -- "$list.new" "$list"
    echo "installed $dest ($pkg)"
  done < <(manifest_entries)
  echo "Slurm $release, PluginDir $plugindir; the list of installed files is $LIST"
}

case "${1:-}" in
  --uninstall) uninstall ;;
  --no-build) install_all 0 ;;
  "") install_all 1 ;;
  -h|--help) sed -n '2,17s/^# \{0,1\}//p' "$0" ;;
  *) die "unknown option $1 (--no-build, --uninstall, --help)" ;;
esac
