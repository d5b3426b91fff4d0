#!/usr/bin/env bash
# Builds the three Debian packages (slurm-ml-login, slurm-ml-node, slurm-ml-controller) for
# the Slurm installed here, from packaging/manifest and a release build:
#   ./scripts/build-debs.sh [OUTDIR]     (default: target/<profile>/debs)
# Version <our version>+slurm<MAJOR.MINOR.MICRO>: the controller's plugin fits one micro
# release, so the packages built for 22.05.9 must be a version apt installs over those for
# 22.05.8 (with +slurm22.05 both would be one version, and apt skips "the newest").
# Each package depends on that Slurm release in the names of the Slurm packages installed
# here (Debian's, or SchedMD's slurm-smd: their PluginDirs differ, so a package built on
# one does not fit the other); the controller on the exact micro release, because
# slurmctld refuses a job_submit plugin whose plugin_version differs in major, minor or
# micro (src/common/plugin.c) and a plugin that does not load stops slurmctld. PluginDir
# is this machine's Slurm's (PLUGINDIR= to override): build on a machine with the same
# Slurm packages as the cluster.
# DEB_MAINTAINER sets the Maintainer field; NO_BUILD=1 packages the last release build.
# lintian reports nothing on the packages (Debian 12's lintian 2.116).
set -euo pipefail
cd "$(dirname "$0")/.."
. packaging/common.sh

release=$(check_same_release)           # 22.05.8
series=${release%.*}                    # 22.05
major=${series%%.*}
minor=${series#*.}
# The first version of the next series in Debian's ordering (22.05 -> 22.06~, below
# 23.02 and every later release, above every 22.05.x-y).
next_series=$major.$(printf '%02d' $((10#$minor + 1)))~
next_micro=$series.$((${release##*.} + 1))~
plugindir=$(slurm_plugindir)
version=$(workspace_version)+slurm$release
arch=$(dpkg --print-architecture)
maintainer=${DEB_MAINTAINER:-slurm-ml maintainers <slurm-ml@example.org>}
outdir=${1:-$(artifact_dir)/debs}

[ "${NO_BUILD:-0}" = 1 ] || build_release
mkdir -p "$outdir"
outdir=$(cd "$outdir" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Reproducible dates: the last commit's, else now.
epoch=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}

# Whose Slurm this is: Debian's (slurm-wlm: PluginDir .../slurm-wlm) or SchedMD's slurm-smd
# packages (PluginDir .../slurm). The plugins go into this machine's PluginDir, which the
# other flavour does not read (slurmctld would not find job_submit_mlpolicy.so), so the
# packages depend on this flavour's package names only.
flavour_owner=$(dpkg -S "$plugindir/auth_munge.so" 2>/dev/null | head -n1 | cut -d: -f1 || true)
case "$flavour_owner" in
  slurm-smd*) flavour=smd ;;
  slurm-wlm* | libslurm*) flavour=debian ;;
  *) die "no Debian or slurm-smd package owns $plugindir/auth_munge.so: build-debs packages for Slurm installed from packages; use scripts/install.sh for a Slurm built from source" ;;
esac

# The Slurm package a package needs, by Debian's name (slurm-client, slurmd, slurmctld)
# or SchedMD's (slurm-smd-client, slurm-smd-slurmd, slurm-smd-slurmctld), pinned to
# this release from below (Depends) and above (Breaks).
slurm_name() {
  if [ "$flavour" = smd ]; then
    case "$1" in slurm-*) echo "slurm-smd-${1#slurm-}" ;; *) echo "slurm-smd-$1" ;; esac
  else
    echo "$1"
  fi
}
slurm_depends() {  # DEBIAN-PACKAGE LOWEST
  echo "$(slurm_name "$1") (>= $2)"
}
slurm_breaks() {  # DEBIAN-PACKAGE FIRST-REFUSED
  echo "$(slurm_name "$1") (>= $2)"
}

# Depends for the shared libraries the package's ELF files need: the owning package at
# the installed upstream version (libslurm: libslurmNN from Debian, slurm-smd from SchedMD).
shlib_depends() {  # STAGING-DIR
  local f lib path pkg ver
  find "$1" -type f \( -perm -u+x -o -name '*.so' \) -print0 |
    xargs -0 -r readelf -d 2>/dev/null | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' | sort -u |
    while read -r lib; do
      path=$(ldconfig -p | awk -v l="$lib" '$1 == l && /x86-64|AArch64/ { print $NF; exit }')
      [ -n "$path" ] || path=$(ldconfig -p | awk -v l="$lib" '$1 == l { print $NF; exit }')
      [ -n "$path" ] || die "$lib: not found by ldconfig"
      # dpkg knows a file by the path its package shipped (/lib or /usr/lib: usrmerge).
      pkg=$(dpkg -S "$path" "$(readlink -f "$path")" 2>/dev/null | head -n1 | cut -d: -f1 || true)
      [ -n "$pkg" ] || die "$lib ($path): no package owns it"
      ver=$(dpkg-query -W -f='${Version}' "$pkg" | sed 's/^[0-9]*://; s/-[^-]*$//')
      echo "$pkg (>= $ver)"
    done | sort -u | paste -sd, - | sed 's/,/, /g'
}

# roff from a program's --help: the man page lintian and `man` look for.
man_page() {  # PROGRAM-PATH NAME SECTION PACKAGE
  local help
  help=$("$1" --help 2>&1) || die "$2 --help failed"
  [ -n "$help" ] || die "$2 --help printed nothing"
  printf '.TH %s %s "%s" "%s %s" "slurm-ml"\n' "${2^^}" "$3" \
    "$(date -u -d "@$epoch" +%Y-%m-%d)" "$4" "$version"
  printf '.SH NAME\n%s \\- part of %s (see the DESCRIPTION)\n.SH DESCRIPTION\n.nf\n' "$2" "$4"
  # Backslashes doubled; a leading . or ' would be a roff request.
  printf '%s\n' "$help" | sed -e 's/\\/\\e/g' -e "s/^\\([.']\\)/\\\\\\&\\1/"
  printf '.fi\n'
}

# The build artifacts a package installs, as crate-licences.py takes them: ARTIFACT=DEST.
package_artifacts() {  # PACKAGE
  local p src dest
  while read -r p src dest; do
    [ "$p" = "$1" ] || continue
    case "$src" in target:*) echo "${src#target:}=$(dest_path "$dest" "$plugindir")" ;; esac
  done < <(manifest_entries)
}

# DEP-5. The crates the package's programs statically link follow our paragraph, each with
# its copyright notices and licence texts (MIT, BSD and ISC want them in binary
# distributions too): packaging/crate-licences.py.
copyright() {  # PACKAGE
  local crates artifacts
  mapfile -t artifacts < <(package_artifacts "$1")
  crates=$(cargo metadata --format-version 1 --filter-platform "$(rustc -vV | awk '/^host:/ { print $2 }')" |
    python3 packaging/crate-licences.py "${artifacts[@]}") || die "$1: the crates' licences"
  cat <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: slurm-ml
Comment: Built against Slurm $release. The programs statically link the Rust crates
 of the vendor/NAME-VERSION/* paragraphs below (crate NAME, version VERSION, from
 crates.io), each with its copyright notices and licence texts.

Files: *
Copyright: $(date -u -d "@$epoch" +%Y) The slurm-ml authors
License: Apache-2.0
 On Debian systems, the full text of the Apache License, Version 2.0 can be found in
 /usr/share/common-licenses/Apache-2.0.
EOF
  [ -z "$crates" ] || printf '\n%s\n' "$crates"
}

changelog() {  # PACKAGE
  cat <<EOF
slurm-ml ($version) unstable; urgency=medium

  * Built from $(git rev-parse --short HEAD 2>/dev/null || echo "a source tree") against Slurm $release.
  * PluginDir $plugindir.

 -- $maintainer  $(date -u -R -d "@$epoch")
EOF
}

description() {
  case "$1" in
    slurm-ml-login) echo "Slurm SPANK plugin mlenv for training jobs, and mlacct (login nodes)
 spank_mlenv.so sets the distributed-training environment (RANK,
 WORLD_SIZE, MASTER_ADDR, MASTER_PORT, fabric settings) in every task.
 srun, sbatch and salloc load it through plugstack.conf on login nodes,
 slurmstepd on compute nodes. mlacct reports usage per accounting domain,
 account and user from slurmdb, and the budget left." ;;
    slurm-ml-node) echo "Slurm node helpers for GPU training clusters
 ml-epilog removes SysV IPC objects and /dev/shm files left by a job's
 processes (Epilog=); ml-healthcheck checks GPUs and fabric and drains a bad
 node (HealthCheckProgram=, Prolog=, Epilog=)." ;;
    slurm-ml-controller) echo "Slurm job_submit plugin mlpolicy (slurmctld's host)
 job_submit_mlpolicy.so routes and refuses GPU jobs by partition rules and
 tags accounting domains inside slurmctld (JobSubmitPlugins=mlpolicy);
 mlpolicy checks a policy and explains a request offline." ;;
  esac
}

relations() {  # PACKAGE STAGING-DIR
  local libs
  libs=$(shlib_depends "$2")
  case "$1" in
    slurm-ml-login)
      # SPANK plugins must match major.minor (plugin.c mask 0xffff00).
      echo "Depends: $libs, $(slurm_depends slurm-client "$series.0~")"
      echo "Breaks: $(slurm_breaks slurm-client "$next_series")" ;;
    slurm-ml-node)
      echo "Depends: $libs, slurm-ml-login (= $version), $(slurm_depends slurmd "$series.0~")"
      echo "Breaks: $(slurm_breaks slurmd "$next_series")" ;;
    slurm-ml-controller)
      # job_submit plugins must match major.minor.micro (plugin.c mask 0xffffff).
      echo "Depends: $libs, $(slurm_depends slurmctld "$release~")"
      echo "Breaks: $(slurm_breaks slurmctld "$next_micro")" ;;
  esac
}

build_package() {  # PACKAGE
  local pkg=$1 root=$work/$1 p src dest mode name section
  mkdir -p "$root/DEBIAN"
  while read -r p src dest; do
    [ "$p" = "$pkg" ] || continue
    src=$(source_path "$src")
    [ -f "$src" ] || die "$src is missing"
    dest=$root$(dest_path "$dest" "$plugindir")
    case "$dest" in
      */share/doc/*) install -D -m 0644 "$src" "$dest" ;;
      *)
        case "$dest" in *.so) mode=0644 ;; *) mode=0755 ;; esac
        install -D -m "$mode" "$src" "$dest"
        # The release profile keeps line tables (debug = 1); a package ships without.
        strip --strip-unneeded --remove-section=.comment --remove-section=.note "$dest"
        case "$dest" in
          */sbin/*) section=8 ;;
          */bin/*) section=1 ;;
          *) continue ;;
        esac
        name=$(basename "$dest")
        mkdir -p "$root/usr/share/man/man$section"
        man_page "$src" "$name" "$section" "$pkg" | gzip -9n > "$root/usr/share/man/man$section/$name.$section.gz"
        ;;
    esac
  done < <(manifest_entries)
  mkdir -p "$root/usr/share/doc/$pkg"
  copyright "$pkg" > "$root/usr/share/doc/$pkg/copyright"
  changelog "$pkg" | gzip -9n > "$root/usr/share/doc/$pkg/changelog.gz"
  find "$root" -type d -exec chmod 0755 {} +
  {
    echo "Package: $pkg"
    echo "Version: $version"
    echo "Architecture: $arch"
    echo "Maintainer: $maintainer"
    echo "Installed-Size: $(du -sk --exclude=DEBIAN "$root" | cut -f1)"
    relations "$pkg" "$root"
    echo "Section: admin"
    echo "Priority: optional"
    echo "Description: $(description "$pkg")"
  } > "$root/DEBIAN/control"
  find "$root" -type f -newermt "@$epoch" -exec touch -h -d "@$epoch" {} +
  dpkg-deb --root-owner-group -Zxz --build "$root" "$outdir/${pkg}_${version}_$arch.deb" >/dev/null
  echo "$outdir/${pkg}_${version}_$arch.deb"
}

for pkg in slurm-ml-login slurm-ml-node slurm-ml-controller; do
  build_package "$pkg"
done
