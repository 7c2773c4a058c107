#!/usr/bin/env bash
# Make the kit's base image: Debian minbase + ca-certificates (no systemd, no manuals,
# no package lists), imported with `docker import`. Called by ../build.sh, which hashes
# this folder (and debian_mirror.py) to decide when the base must be rebuilt.
#
# Usage: make-image.sh SUITE MIRROR TAG HASH
#   SUITE   Debian suite to bootstrap (trixie = Debian 13)
#   MIRROR  Debian archive URI (from tests/images/debian_mirror.py)
#   TAG     image tag to create;  HASH  value of the org.labops.kit.hash label
# Progress goes to stderr; nothing on stdout.
set -euo pipefail

suite=$1 mirror=$2 tag=$3 hash=$4
here=$(cd "$(dirname "$0")" && pwd)

root=$(mktemp -d "${TMPDIR:-/tmp}/labops-kit-base.XXXXXX")
trap 'rm -rf "$root"' EXIT
chmod 0755 "$root"

# An older debootstrap (Debian 12's) may lack a script for a newer suite: sid's works.
script=/usr/share/debootstrap/scripts/$suite
[ -e "$script" ] || script=/usr/share/debootstrap/scripts/sid

echo "base: debootstrap --variant=minbase $suite into $root" >&2
debootstrap --variant=minbase --include=ca-certificates "$suite" "$root" "$mirror" "$script" >&2

# Our dpkg and apt settings apply to every later `apt-get install` in derived images.
cp -a "$here/rootfs/." "$root/"

# What debootstrap unpacked before those settings existed: drop the same paths now.
find "$root/usr/share/doc" -mindepth 1 \( -type f -o -type l \) ! -name copyright -delete
find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/lintian/*
find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +

# No package lists, caches or logs of the bootstrap, nothing of this machine's identity
# (Docker provides hostname and resolv.conf at run time). /etc/apt/sources.list stays, so
# derived images can `apt-get update` from the same mirror.
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin \
       "$root"/var/cache/apt/archives/*.deb "$root"/var/cache/apt/archives/partial/* \
       "$root"/var/cache/debconf/*-old "$root"/var/lib/dpkg/*-old \
       "$root"/var/log/bootstrap.log "$root"/var/log/dpkg.log "$root"/var/log/alternatives.log \
       "$root"/var/log/apt/* "$root"/tmp/* "$root"/var/tmp/* "$root"/root/.bash_history
rm -f "$root/etc/resolv.conf"
: > "$root/etc/hostname"
[ ! -e "$root/etc/machine-id" ] || : > "$root/etc/machine-id"

if [ -e "$root/lib/systemd/systemd" ] || [ -e "$root/usr/lib/systemd/systemd" ]; then
  echo "base: systemd ended up in the root file system; it must not" >&2
  exit 1
fi
grep -q "^deb .* $suite " "$root/etc/apt/sources.list" || {
  echo "base: debootstrap wrote no usable /etc/apt/sources.list" >&2
  exit 1
}

echo "base: importing as $tag" >&2
tar --numeric-owner -C "$root" -c . | docker import \
  --change 'CMD ["bash"]' \
  --change "LABEL org.labops.kit.name=base" \
  --change "LABEL org.labops.kit.hash=$hash" \
  --change "LABEL org.opencontainers.image.title=\"labops kit base (Debian $suite minbase)\"" \
  --change "LABEL org.opencontainers.image.description=\"Debian $suite minbase + ca-certificates, made with debootstrap by labops.services tests/images/kit\"" \
  - "$tag" >/dev/null
