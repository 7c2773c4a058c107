#!/usr/bin/env bash
# The Debian 13 test host with Debian's Docker packages already installed (not configured,
# not started): the host every Molecule scenario but `docker` starts from, so each one spends
# its time on its own role, not on installing Docker again. The `docker` scenario proves the
# installation itself on the bare host. Cached by content; prints the tag on stdout.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
base=$(bash "$here/build-testhost.sh")
packages="docker.io docker-cli docker-compose python3-requests"
repo=${LABOPS_TESTHOST_REPO:-labops/testhost}
hash=$( { cat "$0"; echo "$base $packages"; } | sha256sum | cut -c1-12)
tag="$repo:trixie-docker-$hash"

if docker image inspect "$tag" >/dev/null 2>&1; then
  echo "$tag"
  exit 0
fi

echo "building $tag from $base" >&2
container=$(docker create "$base" sleep infinity)
trap 'docker rm -f "$container" >/dev/null 2>&1 || true' EXIT
docker start "$container" >/dev/null
# Services must not start during the install (there is no systemd running here).
docker exec "$container" sh -c 'printf "#!/bin/sh\nexit 101\n" > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d'
docker exec -e DEBIAN_FRONTEND=noninteractive "$container" sh -c \
  "apt-get update -qq && apt-get install -y -qq --no-install-recommends $packages >/dev/null \
   && rm -f /usr/sbin/policy-rc.d && apt-get clean && rm -rf /var/lib/apt/lists/*" >&2
docker stop -t 1 "$container" >/dev/null
docker commit \
  --change 'CMD ["/lib/systemd/systemd"]' \
  --change 'ENV container=docker' \
  "$container" "$tag" >&2
echo "$tag"
