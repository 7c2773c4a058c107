#!/usr/bin/env bash
# Build (once) the Debian systemd base image used by every test host and by the
# disposable lab server: debootstrap from the machine's own apt mirror, then
# `docker import`. The tag carries a hash of this script and its inputs, so the
# image is rebuilt only when what it is made of changes.
#
# Usage: tests/images/build-testhost.sh [SUITE]   (default: trixie = Debian 13)
# Prints the image tag on stdout; progress goes to stderr.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
suite=${1:-trixie}
include="python3,systemd,systemd-sysv,ca-certificates,iproute2,apt-transport-https,gnupg,curl,sudo"
repo=${LABOPS_TESTHOST_REPO:-labops/testhost}

hash=$(cat "$0" "$here/debian_mirror.py" | { cat; echo "$suite $include"; } | sha256sum | cut -c1-12)
tag="$repo:$suite-$hash"

if docker image inspect "$tag" >/dev/null 2>&1; then
  echo "$tag"
  exit 0
fi

command -v debootstrap >/dev/null 2>&1 || {
  echo "installing debootstrap" >&2
  apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >&2
}
mirror=$(python3 "$here/debian_mirror.py")
root=$(mktemp -d "${TMPDIR:-/tmp}/labops-rootfs.XXXXXX")
trap 'rm -rf "$root"' EXIT

echo "debootstrap $suite into $root (variant minbase)" >&2
# trixie's scripts may be missing from an older debootstrap: sid's work for it.
script=/usr/share/debootstrap/scripts/$suite
[ -e "$script" ] || script=/usr/share/debootstrap/scripts/sid
debootstrap --variant=minbase --include="$include" "$suite" "$root" "$mirror" "$script" >&2

# A container needs no machine id baked in, no getty, and must not try to
# mount or resize what Docker already provides.
: > "$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id"
for unit in getty.target console-getty.service systemd-firstboot.service \
            systemd-udevd.service systemd-udev-trigger.service systemd-modules-load.service \
            sys-kernel-config.mount sys-kernel-debug.mount sys-fs-fuse-connections.mount; do
  ln -sf /dev/null "$root/etc/systemd/system/$unit"
done
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*

tar -C "$root" -c . | docker import \
  --change 'CMD ["/lib/systemd/systemd"]' \
  --change 'ENV container=docker' \
  - "$tag" >&2
docker tag "$tag" "$repo:$suite" >&2
echo "$tag"
