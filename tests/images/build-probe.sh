#!/usr/bin/env bash
# Build (once) a ~2 MB image holding Debian's static busybox: the smallest real image a
# test can save, copy into a test host, `docker load` and run there (sh, httpd, nc, wget).
# Tag: labops/probe:<hash of this script>. Prints the tag on stdout.
set -euo pipefail

repo=${LABOPS_PROBE_REPO:-labops/probe}
hash=$(sha256sum "$0" | cut -c1-12)
tag="$repo:$hash"

if docker image inspect "$tag" >/dev/null 2>&1; then
  echo "$tag"
  exit 0
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/labops-probe.XXXXXX")
trap 'rm -rf "$work"' EXIT
chmod 0755 "$work"
(cd "$work" && apt-get download busybox-static >&2) || {
  apt-get update -qq >&2
  (cd "$work" && apt-get download busybox-static >&2)
}
dpkg-deb -x "$work"/busybox-static_*.deb "$work/pkg"
mkdir -p "$work/root/bin" "$work/root/tmp" "$work/root/www"
cp "$work/pkg/bin/busybox" "$work/root/bin/busybox"
for applet in sh echo cat ls sleep httpd nc wget true false id env; do
  ln -s busybox "$work/root/bin/$applet"
done
echo "labops probe" > "$work/root/www/index.html"
tar -C "$work/root" -c . | docker import \
  --change 'CMD ["/bin/sh"]' \
  --change 'ENV PATH=/bin' \
  - "$tag" >&2
docker tag "$tag" "$repo:latest" >&2
echo "$tag"
