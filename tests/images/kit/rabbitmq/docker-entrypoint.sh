#!/usr/bin/env bash
# Entrypoint of the labops kit's RabbitMQ stand-in (tests/images/kit/rabbitmq).
#
# Written for labops.services. It keeps the contract of the upstream `rabbitmq` image so
# compose files written for it run unchanged:
#   RABBITMQ_DEFAULT_USER / RABBITMQ_DEFAULT_PASS / RABBITMQ_DEFAULT_VHOST
#                 the user (administrator, full rights on the vhost) and vhost the node
#                 creates at its first start, instead of guest/guest and "/". RabbitMQ
#                 itself reads these variables, so any character in them is kept. They
#                 only count on an empty data directory: a later start keeps its users.
#   RABBITMQ_NODENAME   node name (default rabbit@<short hostname>): the data lives in
#                 /var/lib/rabbitmq/mnesia/<node name>, so keep the container's hostname
#                 (compose: `hostname:`) when a volume should be found again.
#   /var/lib/rabbitmq   data directory, HOME and Erlang cookie (a VOLUME). The node makes
#                 a random cookie there at its first start; root's ~/.erlang.cookie points
#                 at it, so `docker exec … rabbitmqctl` works as root or as rabbitmq.
# Upstream's removed variables (RABBITMQ_SSL_*, RABBITMQ_DEFAULT_PASS_FILE, …) stop the
# container with an error here as well, instead of being silently ignored.
#
# The server runs as rabbitmq (999:999). The start script execs the Erlang VM
# (RUNNING_UNDER_SYSTEMD=true), so beam.smp is PID 1 and `docker stop` (SIGTERM) stops the
# node cleanly. Any other command (bash, rabbitmqctl, ...) runs as given.
set -Eeuo pipefail

data_dir=${RABBITMQ_DATA_DIR:-/var/lib/rabbitmq}

say() { printf '%s [entrypoint] %s\n' "$(date -u '+%Y-%m-%d %H:%M:%S UTC')" "$*" >&2; }
die() { say "FATAL: $*"; exit 1; }

if [ "${1:-}" != rabbitmq-server ]; then
  exec "$@"
fi

# ---- as root: own the directories, then run this script again as rabbitmq -------------
if [ "$(id -u)" = 0 ]; then
  mkdir -p -- "$data_dir"
  # A volume made by another image (or by root) may hold files of other owners.
  find "$data_dir" ! -user rabbitmq -exec chown rabbitmq:rabbitmq {} +
  # The log directory may be a read-only or foreign mount: the console log still works.
  find /var/log/rabbitmq ! -user rabbitmq -exec chown rabbitmq:rabbitmq {} + 2>/dev/null || true
  exec setpriv --reuid=rabbitmq --regid=rabbitmq --init-groups -- "${BASH_SOURCE[0]}" "$@"
fi

id -un >/dev/null 2>&1 || die "uid $(id -u) has no account in this image: run as root (default) or as rabbitmq (999)"

removed=(
  RABBITMQ_DEFAULT_PASS_FILE RABBITMQ_DEFAULT_USER_FILE
  RABBITMQ_MANAGEMENT_SSL_CACERTFILE RABBITMQ_MANAGEMENT_SSL_CERTFILE RABBITMQ_MANAGEMENT_SSL_DEPTH
  RABBITMQ_MANAGEMENT_SSL_FAIL_IF_NO_PEER_CERT RABBITMQ_MANAGEMENT_SSL_KEYFILE RABBITMQ_MANAGEMENT_SSL_VERIFY
  RABBITMQ_SSL_CACERTFILE RABBITMQ_SSL_CERTFILE RABBITMQ_SSL_DEPTH RABBITMQ_SSL_FAIL_IF_NO_PEER_CERT
  RABBITMQ_SSL_KEYFILE RABBITMQ_SSL_VERIFY RABBITMQ_VM_MEMORY_HIGH_WATERMARK
)
bad=()
for v in "${removed[@]}"; do
  [ -z "${!v:-}" ] || bad+=("$v")
done
[ ${#bad[@]} -eq 0 ] || die "${bad[*]}: no longer supported by the rabbitmq image (upstream removed them in 3.9);
  put the setting in a file under /etc/rabbitmq/conf.d/ instead."

if [ -n "${RABBITMQ_DEFAULT_USER:-}" ] && [ -z "${RABBITMQ_DEFAULT_PASS:-}" ]; then
  die "RABBITMQ_DEFAULT_USER is set but RABBITMQ_DEFAULT_PASS is empty: set both (or neither for guest/guest)"
fi

# Long host names (a dot in the name) need long Erlang node names, as upstream decides.
if [ -z "${RABBITMQ_USE_LONGNAME:-}" ] && [ "$(hostname)" != "$(hostname -s)" ]; then
  export RABBITMQ_USE_LONGNAME=true
fi

# The cookie is made here, before the node starts, not by the node: a `docker exec`
# healthcheck that runs first would otherwise make it, as root, and the node (rabbitmq)
# could not read it. Erlang refuses a cookie that others can read (a copied-in volume).
cookie=$HOME/.erlang.cookie
if [ ! -e "$cookie" ]; then
  (umask 0277 && python3 -c 'import secrets, string
print("".join(secrets.choice(string.ascii_uppercase) for _ in range(32)), end="")' >"$cookie")
elif [ -O "$cookie" ]; then
  case $(stat -c %a "$cookie") in 400 | 600) ;; *) chmod 0400 "$cookie" ;; esac
fi

node=${RABBITMQ_NODENAME:-rabbit@$(hostname -s)}
if [ -d "$data_dir/mnesia/$node" ]; then
  say "data directory holds node $node: its users and queues are kept (RABBITMQ_DEFAULT_* ignored)"
else
  others=$(find "$data_dir/mnesia" -mindepth 1 -maxdepth 1 -type d ! -name '*-plugins-expand' ! -name '*-feature_flags' -printf '%f ' 2>/dev/null || true)
  [ -z "$others" ] || say "WARNING: no data for node $node, but $data_dir/mnesia holds: $others- the hostname changed?" \
    "Start with the old hostname (compose: hostname:) or RABBITMQ_NODENAME to find that data again."
  say "new node $node: default user ${RABBITMQ_DEFAULT_USER:-guest}, vhost ${RABBITMQ_DEFAULT_VHOST:-/}"
fi

# RabbitMQ 4.0 reads RABBITMQ_DEFAULT_* as Unicode characters and stores them as Latin-1
# bytes: a password with "é" would be stored as the single byte E9 (clients send C3 A9, so
# it never matches), and one with "€" stops the node. Handing it the value's UTF-8 bytes
# as characters makes it store exactly those bytes. ASCII values are unchanged.
for v in RABBITMQ_DEFAULT_USER RABBITMQ_DEFAULT_PASS RABBITMQ_DEFAULT_VHOST; do
  [ -n "${!v:-}" ] || continue
  value=$(python3 -c 'import os, sys
sys.stdout.buffer.write(os.environb[sys.argv[1].encode()].decode("latin-1").encode() + b"$")' "$v")
  export "$v=${value%\$}"
done
unset value

say "starting RabbitMQ $(dpkg-query -W -f '${Version}' rabbitmq-server 2>/dev/null || echo '?') as $(id -un): $*"
exec /usr/lib/rabbitmq/bin/rabbitmq-server "${@:2}"
