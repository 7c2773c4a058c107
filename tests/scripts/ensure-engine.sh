#!/usr/bin/env bash
# Make sure a Docker engine answers on this machine: when `docker info` fails, install
# Debian's docker.io (if dockerd is missing) and start dockerd in the background (these
# machines have no systemd), then wait until it answers. Idempotent; prints nothing when an
# engine already runs.
set -euo pipefail
log=${LABOPS_DOCKERD_LOG:-/var/log/labops-dockerd.log}

docker info >/dev/null 2>&1 && exit 0

if ! command -v dockerd >/dev/null 2>&1; then
  echo "ensure-engine: installing docker.io (Debian package)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq docker.io >/dev/null
fi
if ! pgrep -x dockerd >/dev/null 2>&1; then
  echo "ensure-engine: starting dockerd (log: $log)" >&2
  nohup dockerd >"$log" 2>&1 &
fi
for _ in $(seq 1 60); do
  docker info >/dev/null 2>&1 && { echo "ensure-engine: engine ready" >&2; exit 0; }
  sleep 1
done
echo "ensure-engine: dockerd did not answer within 60 s; see $log" >&2
tail -n 20 "$log" >&2 || true
exit 1
