#!/usr/bin/env bash
# Entrypoint of the labops kit's nginx stand-in (tests/images/kit/nginx).
#
# Written for labops.services. It keeps the contract of the upstream `nginx` image's
# entrypoint: when the command is `nginx` or `nginx-debug`, every file under
# /docker-entrypoint.d/ is looked at in version order (sort -V):
#   *.envsh  sourced when executable (it can export variables for the later scripts)
#   *.sh     run when executable
#   other files, and scripts without the executable bit, are skipped with a message.
# The image ships its own versions of upstream's four scripts there:
#   10-listen-on-ipv6-by-default.sh  `listen [::]:80;` in an unchanged default.conf
#   15-local-resolvers.envsh         NGINX_ENTRYPOINT_LOCAL_RESOLVERS -> NGINX_LOCAL_RESOLVERS
#   20-envsubst-on-templates.sh      /etc/nginx/templates/*.template -> /etc/nginx/conf.d/
#   30-tune-worker-processes.sh      NGINX_ENTRYPOINT_WORKER_PROCESSES_AUTOTUNE
# NGINX_ENTRYPOINT_QUIET_LOGS (any value) silences these messages. A failing script stops
# the container. Then the command is exec'd: nginx runs as PID 1 and gets docker stop's
# SIGQUIT (graceful shutdown). Any other command (bash, nginx -t, ...) runs as given.
set -euo pipefail

log() {
  [ -n "${NGINX_ENTRYPOINT_QUIET_LOGS:-}" ] || printf '%s: %s\n' "$0" "$*"
}

scripts_dir=/docker-entrypoint.d

if [ "${1:-}" = nginx ] || [ "${1:-}" = nginx-debug ]; then
  scripts=()
  [ ! -d "$scripts_dir" ] || mapfile -t scripts < <(find -L "$scripts_dir" -mindepth 1 -type f -print | sort -V)
  if [ ${#scripts[@]} -gt 0 ]; then
    log "$scripts_dir/ is not empty, will attempt to perform configuration"
    for f in "${scripts[@]}"; do
      case $f in
        *.envsh)
          if [ -x "$f" ]; then
            log "Sourcing $f"
            set +u
            # shellcheck disable=SC1090
            . "$f"
            set -u
          else
            log "Ignoring $f, not executable"
          fi
          ;;
        *.sh)
          if [ -x "$f" ]; then
            log "Launching $f"
            "$f"
          else
            log "Ignoring $f, not executable"
          fi
          ;;
        *) log "Ignoring $f" ;;
      esac
    done
    # The line people wait for in the upstream image's log.
    log "Configuration complete; ready for start up"
  else
    log "No files found in $scripts_dir/, skipping configuration"
  fi
fi

exec "$@"
