#!/usr/bin/env bash
# labops kit jupyter: the image's ENTRYPOINT (under tini, as upstream): runs the command
# (default start-notebook.py) as jovyan. Started as root (`--user root`) it steps down to
# jovyan (1000:100); upstream's root-only options (NB_USER, NB_UID, NB_GID, CHOWN_HOME,
# GRANT_SUDO) and its start-notebook.d / before-notebook.d hooks are NOT implemented.
set -euo pipefail
if [ "$(id -u)" = 0 ]; then
  for v in NB_UID NB_GID; do
    case ${!v:-} in '' | 1000 | 100) ;; *) echo "start.sh: $v=${!v} is not supported here (jovyan is 1000:100)" >&2; exit 1 ;; esac
  done
  exec setpriv --reuid=1000 --regid=100 --init-groups env HOME=/home/jovyan USER=jovyan "$@"
fi
exec "$@"
