#!/usr/bin/env bash
# build-deb.sh - builds the resedge-hub and resedge-agent .deb packages with
# dpkg-deb from already built binaries (no debhelper, no source package).
#
# usage: packaging/build-deb.sh [--bin DIR] [--out DIR] [--version V]
#   --bin DIR      directory holding resedge-hub, resedge-agent, resedgectl
#                  (default: bin/ of the source tree)
#   --out DIR      where the .deb files go (default: build/deb)
#   --version V    package version (default: VERSION from the Makefile)
# Prints the paths of the two packages. Depends: come from dpkg-shlibdeps
# over the binaries, so a sanitized build depends on libasan/libubsan too.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/.." && pwd)
bin=$top/bin
out=$top/build/deb
version=
maintainer="Res-Edge maintainers <resedge@example.org>"

die() { echo "build-deb.sh: $*" >&2; exit 1; }

while [ $# -gt 0 ]; do
    case $1 in
    --bin) bin=${2:?--bin needs a directory}; shift 2 ;;
    --out) out=${2:?--out needs a directory}; shift 2 ;;
    --version) version=${2:?--version needs a value}; shift 2 ;;
    -h|--help) sed -n '2,11s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
    esac
done
if [ -z "$version" ]; then
    version=$(sed -n 's/^VERSION[[:space:]]*:\{0,1\}=[[:space:]]*//p' "$top/Makefile" | head -1)
fi
[[ "$version" =~ ^[0-9][A-Za-z0-9.+~-]*$ ]] || die "bad version '$version'"
for p in resedge-hub resedge-agent resedgectl; do
    [ -x "$bin/$p" ] || die "$bin/$p is missing (build first: make)"
done
for t in dpkg-deb dpkg-shlibdeps strip gzip; do
    command -v "$t" >/dev/null || die "$t is not installed (apt-get install dpkg-dev binutils)"
done

arch=$(dpkg --print-architecture)
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/re-deb-XXXXXX")
trap 'rm -rf "$work"' EXIT

# Timestamps inside the packages: the last commit, else now (reproducible
# when built from a clean checkout).
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
    SOURCE_DATE_EPOCH=$(git -C "$top" log -1 --format=%ct 2>/dev/null || date +%s)
fi
export SOURCE_DATE_EPOCH
changelog_date=$(date -u -R -d "@$SOURCE_DATE_EPOCH")

# dpkg-shlibdeps wants a debian/control naming the binary packages.
mkdir -p "$work/src/debian"
cat >"$work/src/debian/control" <<EOF
Source: resedge
Maintainer: $maintainer

Package: resedge-hub
Architecture: any

Package: resedge-agent
Architecture: any
EOF

# shlibs_of ROOT FILE...: the Depends computed from the ELF files' NEEDED.
shlibs_of() {
    local root=$1; shift
    local args=() f
    for f in "$@"; do args+=("-e$root/$f"); done
    (cd "$work/src" && dpkg-shlibdeps -O --ignore-missing-info "${args[@]}" 2>"$work/shlibdeps.err") |
        sed -n 's/^shlibs:Depends=//p'
}

# stage PKG: common files of a package root in $work/PKG.
stage_common() {
    local pkg=$1 root=$work/$1
    install -d -m 0755 "$root/DEBIAN" "$root/usr/bin" "$root/lib/systemd/system" \
        "$root/usr/share/man/man1" "$root/usr/share/doc/$pkg"
    cp "$here/deb/copyright" "$root/usr/share/doc/$pkg/copyright"
    chmod 0644 "$root/usr/share/doc/$pkg/copyright"
    # A native package: its changelog is changelog.gz.
    printf '%s (%s) unstable; urgency=medium\n\n  * Release %s of Res-Edge.\n\n -- %s  %s\n' \
        "$pkg" "$version" "$version" "$maintainer" "$changelog_date" |
        gzip -9n >"$root/usr/share/doc/$pkg/changelog.gz"
    chmod 0644 "$root/usr/share/doc/$pkg/changelog.gz"
    local s
    for s in postinst prerm postrm; do
        install -m 0755 "$here/deb/$pkg.$s" "$root/DEBIAN/$s"
    done
}

install_bin() {   # ROOT NAME
    install -m 0755 "$bin/$2" "$1/usr/bin/$2"
    strip --strip-unneeded --remove-section=.comment --remove-section=.note "$1/usr/bin/$2"
}

install_man() {   # ROOT NAME
    gzip -9n <"$here/man/$2.1" >"$1/usr/share/man/man1/$2.1.gz"
    chmod 0644 "$1/usr/share/man/man1/$2.1.gz"
}

# finish PKG ELF...: control file (with Depends and size), md5sums, build.
finish() {
    local pkg=$1 root=$work/$1; shift
    local shlibs size
    shlibs=$(shlibs_of "$root" "$@")
    [ -n "$shlibs" ] || { cat "$work/shlibdeps.err" >&2; die "dpkg-shlibdeps found no dependencies for $pkg"; }
    size=$(du -k -s --apparent-size --exclude=DEBIAN "$root" | cut -f1)
    sed -e "s|@VERSION@|$version|" -e "s|@ARCH@|$arch|" -e "s|@MAINTAINER@|$maintainer|" \
        -e "s|@SIZE@|$size|" -e "s|@SHLIBS@|$shlibs|" \
        "$here/deb/$pkg.control.in" >"$root/DEBIAN/control"
    (cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z |
        xargs -0 md5sum) >"$root/DEBIAN/md5sums"
    chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/md5sums"
    [ -f "$root/DEBIAN/conffiles" ] && chmod 0644 "$root/DEBIAN/conffiles"
    local deb="$out/${pkg}_${version}_${arch}.deb"
    dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
    echo "$deb"
}

umask 022

# resedge-hub: the hub, resedgectl, the unit, /etc/resedge/hub.env.
root=$work/resedge-hub
stage_common resedge-hub
install_bin "$root" resedge-hub
install_bin "$root" resedgectl
install -m 0644 "$here/systemd/resedge-hub.service" "$root/lib/systemd/system/"
install -d -m 0755 "$root/etc/resedge"
install -m 0644 "$here/etc/hub.env" "$root/etc/resedge/hub.env"
echo /etc/resedge/hub.env >"$root/DEBIAN/conffiles"
install_man "$root" resedge-hub
install_man "$root" resedgectl
if [ -f "$here/completion/resedgectl" ]; then
    install -d -m 0755 "$root/usr/share/bash-completion/completions"
    install -m 0644 "$here/completion/resedgectl" "$root/usr/share/bash-completion/completions/"
fi
finish resedge-hub usr/bin/resedge-hub usr/bin/resedgectl

# resedge-agent: the agent, the unit, /etc/resedge/agent.conf.
root=$work/resedge-agent
stage_common resedge-agent
install_bin "$root" resedge-agent
install -m 0644 "$here/systemd/resedge-agent.service" "$root/lib/systemd/system/"
install -d -m 0755 "$root/etc/resedge"
install -m 0644 "$here/etc/agent.conf" "$root/etc/resedge/agent.conf"
echo /etc/resedge/agent.conf >"$root/DEBIAN/conffiles"
install_man "$root" resedge-agent
finish resedge-agent usr/bin/resedge-agent
