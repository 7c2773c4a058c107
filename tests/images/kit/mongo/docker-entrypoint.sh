#!/usr/bin/env bash
# Entrypoint of the labops kit's mongo stand-in (tests/images/kit/mongo).
#
# Written for labops.services. This image is NOT MongoDB: it runs NX-27017, a server that
# speaks MongoDB's wire protocol on SQLite, because no MongoDB server can be installed
# here. It keeps what it can of the upstream `mongo` image's contract and refuses, with a
# message, what it cannot do, rather than start something that only looks the same:
#   port 27017 on every address; data in /data/db (a VOLUME; one SQLite file per
#   database); `docker run IMAGE` and `command: mongod [options]` start the server;
#   mongod options honoured: --port N, --dbpath DIR, --bind_ip_all, --bind_ip ADDR
#   (a single address), --quiet (no effect). Any other option stops the container.
#   MONGO_INITDB_ROOT_USERNAME / _PASSWORD (and _FILE): REFUSED. NX-27017 has no
#   authentication at all; a client that sends credentials fails. Leave them unset and
#   keep the port unpublished (as datalab's compose file does).
#   /docker-entrypoint-initdb.d/*: REFUSED when not empty (upstream runs *.js and *.sh
#   with mongosh, which does not exist here).
#   Healthcheck: `mongo-ping` (pymongo's ping); there is no mongosh or mongo shell.
# The server runs as mongodb (999:999) and is PID 1 (exec); SIGTERM stops it at once
# (SQLite commits every write, so nothing acknowledged is lost).
set -Eeuo pipefail

say() { printf '%s [entrypoint] %s\n' "$(date -u '+%Y-%m-%d %H:%M:%S UTC')" "$*" >&2; }
die() { say "FATAL: $*"; exit 1; }

pid_file=/tmp/nx-27017.pid

# `docker run IMAGE --port 27018` means mongod options, as upstream.
case ${1:-} in -*) set -- mongod "$@" ;; esac
if [ "${1:-}" != mongod ]; then
  exec "$@"
fi

# ---- what this stand-in cannot do: say so and stop ------------------------------------
for v in MONGO_INITDB_ROOT_USERNAME MONGO_INITDB_ROOT_PASSWORD MONGO_INITDB_ROOT_USERNAME_FILE MONGO_INITDB_ROOT_PASSWORD_FILE; do
  [ -z "${!v:-}" ] || die "$v is set, but this mongo stand-in (NX-27017, not MongoDB) has no authentication:
  it cannot create a root user, and clients that log in would fail. Unset MONGO_INITDB_ROOT_*
  and keep port 27017 unpublished (a private compose network), or use a real mongo image."
done
init_files=$(find /docker-entrypoint-initdb.d -mindepth 1 -maxdepth 1 -printf '%f ' 2>/dev/null || true)
[ -z "$init_files" ] || die "/docker-entrypoint-initdb.d is not empty, but this mongo stand-in has no mongosh
  to run *.js or *.sh init scripts (found: $init_files)"

host=0.0.0.0 port=27017 dbpath=/data/db
args=("${@:2}")
i=0
while [ "$i" -lt ${#args[@]} ]; do
  a=${args[$i]}
  case $a in
    --port) i=$((i + 1)); port=${args[$i]:-} ;;
    --port=*) port=${a#*=} ;;
    --dbpath) i=$((i + 1)); dbpath=${args[$i]:-} ;;
    --dbpath=*) dbpath=${a#*=} ;;
    --bind_ip_all) host=0.0.0.0 ;;
    --bind_ip) i=$((i + 1)); host=${args[$i]:-} ;;
    --bind_ip=*) host=${a#*=} ;;
    --quiet) ;;
    *) die "mongod option '$a' is not supported by this stand-in (NX-27017, not MongoDB).
  Supported: --port N, --dbpath DIR, --bind_ip_all, --bind_ip ADDR (one address), --quiet." ;;
  esac
  i=$((i + 1))
done
[[ $port =~ ^[0-9]+$ ]] || die "--port needs a number, got '$port'"
[ -n "$dbpath" ] || die "--dbpath needs a directory"
case $host in *,*) die "--bind_ip: one address only here, got '$host'" ;; localhost) host=127.0.0.1 ;; esac

# ---- as root: own the data directory, then run this script again as mongodb -------------
if [ "$(id -u)" = 0 ]; then
  mkdir -p -- "$dbpath"
  # A volume made by another image (or by root) may hold files of other owners.
  find "$dbpath" ! -user mongodb -exec chown mongodb:mongodb {} +
  exec setpriv --reuid=mongodb --regid=mongodb --init-groups -- "${BASH_SOURCE[0]}" "$@"
fi
id -un >/dev/null 2>&1 || die "uid $(id -u) has no account in this image: run as root (default) or as mongodb (999)"

# A pid file left by this container's previous run names PID 1, which NX-27017 would take
# for a server still running.
rm -f -- "$pid_file"
shopt -s nullglob
dbs=("$dbpath"/*.db)
shopt -u nullglob
say "this is NOT MongoDB: NX-27017 $(/opt/nx-27017/bin/python -c 'import importlib.metadata as m; print(m.version("nx-27017"))' 2>/dev/null || echo '?')" \
    "(MongoDB wire protocol on SQLite), no authentication"
say "data in $dbpath (${#dbs[@]} database file(s) there), listening on $host:$port"
exec /opt/nx-27017/bin/python /usr/local/lib/labops-kit/nx-launch.py \
  --host "$host" --port "$port" --data-dir "$dbpath" --log-file /dev/null --pid-file "$pid_file"
