#!/usr/bin/env bash
# Entrypoint of the labops kit's PostgreSQL stand-in (tests/images/kit/postgres).
#
# Written for labops.services. It keeps the documented environment contract of the
# upstream `postgres` image so compose files written for it run unchanged:
#   POSTGRES_PASSWORD        superuser password; required unless POSTGRES_HOST_AUTH_METHOD=trust
#   POSTGRES_USER            superuser name (default postgres)
#   POSTGRES_DB              database created at first start (default: the user's name)
#   X_FILE                   read X from a file instead (PASSWORD, USER, DB, INITDB_ARGS)
#   POSTGRES_INITDB_ARGS     extra initdb arguments (shell-like quoting, no expansion)
#   POSTGRES_INITDB_WALDIR   separate WAL directory
#   POSTGRES_HOST_AUTH_METHOD  pg_hba method for TCP connections (default scram-sha-256)
#   PGDATA                   data directory (default /var/lib/postgresql/data)
#   /docker-entrypoint-initdb.d/*.sql, *.sql.gz, *.sql.xz, *.sql.zst, *.sh
#                            run once, in byte order, when the data directory is new,
#                            against a temporary server that listens on a private unix
#                            socket only (PGHOST points there): no TCP, and `pg_isready`
#                            (the usual healthcheck) answers "no response" until the real
#                            server runs, so nothing connects to a half-initialised database
#
# The first start (no PG_VERSION in PGDATA) initialises the cluster; any later start goes
# straight to the server, so init files never run twice. When initialisation fails after
# initdb, the half-made cluster is removed so the next start tries again from scratch.
# The server runs in the foreground as user postgres (exec: it gets the container's
# signals; the image's STOPSIGNAL is SIGINT = fast shutdown).
set -Eeuo pipefail

pg_bin=/usr/lib/postgresql/${PG_MAJOR:?PG_MAJOR is not set}/bin
socket_dir=/var/run/postgresql
init_dir=/docker-entrypoint-initdb.d
: "${PGDATA:=/var/lib/postgresql/data}"
export PGDATA

say() { printf '%s [entrypoint] %s\n' "$(date -u '+%Y-%m-%d %H:%M:%S UTC')" "$*" >&2; }
die() { say "FATAL: $*"; exit 1; }

# X_FILE -> X (secrets). Trailing newlines of the file are dropped, as editors add one.
take_from_file() {
  local var=$1 file_var=${1}_FILE value
  [ -n "${!file_var:-}" ] || return 0
  [ -z "${!var:-}" ] || die "$var and $file_var are both set; set only one of them"
  [ -r "${!file_var}" ] || die "$file_var: cannot read '${!file_var}' as $(id -un)"
  value=$(cat -- "${!file_var}")
  export "$var=$value"
  unset "$file_var"
}

# Options that only ask the server binary something: no cluster needed.
only_asks() {
  local a
  for a in "$@"; do
    case $a in -C | --describe-config | -V | --version | --help | '-?') return 0 ;; esac
  done
  return 1
}

# ---- as root: own the directories, then run this script again as postgres ------------
as_root() {
  local d
  for d in "$PGDATA" ${POSTGRES_INITDB_WALDIR:+"$POSTGRES_INITDB_WALDIR"}; do
    mkdir -p -- "$d"
    # A volume made by another image (or by root) may hold files of other owners.
    find "$d" ! -user postgres -exec chown postgres:postgres {} +
  done
  case $(stat -c %a "$PGDATA") in 700 | 750) ;; *) chmod 0700 "$PGDATA" ;; esac
  mkdir -p "$socket_dir"
  chown postgres:postgres "$socket_dir"
  chmod 3777 "$socket_dir"
  export HOME=/var/lib/postgresql
  exec setpriv --reuid=postgres --regid=postgres --init-groups -- "${BASH_SOURCE[0]}" "$@"
}

# ---- first start: make the cluster --------------------------------------------------
sql() {
  # Local connections are `trust`; the temporary server listens on its own socket only.
  "$pg_bin/psql" --no-psqlrc --no-password --quiet -v ON_ERROR_STOP=1 \
    --host="$init_socket" --username="$POSTGRES_USER" "$@"
}

temp_pid=
init_socket=
made_cluster=0

start_temp_server() {
  init_socket=$(mktemp -d /tmp/labops-pg-init.XXXXXX)
  say "starting a temporary server (socket in $init_socket only) for the set-up"
  # The user's own server options first, ours last so they win: no TCP during set-up.
  "$pg_bin/postgres" "$@" -c listen_addresses='' -c unix_socket_directories="$init_socket" &
  temp_pid=$!
  local waited=0
  until "$pg_bin/pg_isready" --quiet --host="$init_socket" --username="$POSTGRES_USER" --dbname=postgres; do
    kill -0 "$temp_pid" 2>/dev/null || { temp_pid=; die "the temporary server exited during start-up"; }
    [ "$waited" -lt 300 ] || die "the temporary server did not accept connections within 60 s"
    sleep 0.2
    waited=$((waited + 1))
  done
}

stop_temp_server() {
  if [ -n "$temp_pid" ]; then
    say "stopping the temporary server"
    kill -INT "$temp_pid" 2>/dev/null || true
    wait "$temp_pid" || true
    temp_pid=
  fi
  [ -z "$init_socket" ] || rm -rf -- "$init_socket"
  init_socket=
}

# Whatever failed after initdb: remove the half-made cluster, so that the next start
# initialises again (and runs the init files again) instead of skipping initialisation.
undo_failed_init() {
  local rc=$?
  trap - ERR EXIT
  stop_temp_server
  if [ "$made_cluster" = 1 ]; then
    say "initialisation failed (exit $rc): removing the half-made cluster from $PGDATA"
    find "$PGDATA" -mindepth 1 -delete || true
    [ -z "${POSTGRES_INITDB_WALDIR:-}" ] || find "$POSTGRES_INITDB_WALDIR" -mindepth 1 -delete || true
  fi
  exit "$rc"
}

run_init_files() {
  local files=() f
  [ -d "$init_dir" ] || return 0
  # Byte order, whatever LANG says, so 01_x runs before 1-y on every machine.
  mapfile -d '' -t files < <(LC_ALL=C; shopt -s nullglob; for f in "$init_dir"/*; do printf '%s\0' "$f"; done)
  for f in "${files[@]}"; do
    case $f in
      *.sh)
        if [ -x "$f" ]; then
          say "running $f"
          "$f"
        else
          say "sourcing $f"
          # shellcheck disable=SC1090
          . "$f"
        fi
        ;;
      *.sql) say "running $f"; sql --dbname="$POSTGRES_DB" --file="$f" ;;
      *.sql.gz) say "running $f"; gzip -dc -- "$f" | sql --dbname="$POSTGRES_DB" ;;
      *.sql.xz) say "running $f"; xz -dc -- "$f" | sql --dbname="$POSTGRES_DB" ;;
      *.sql.zst) say "running $f"; zstd -dcq -- "$f" | sql --dbname="$POSTGRES_DB" ;;
      *) say "ignoring $f (not .sh, .sql, .sql.gz, .sql.xz or .sql.zst)" ;;
    esac
  done
}

initialise() {
  local method=${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256} extra=()
  export POSTGRES_USER=${POSTGRES_USER:-postgres}
  export POSTGRES_DB=${POSTGRES_DB:-$POSTGRES_USER}

  if [ -z "${POSTGRES_PASSWORD:-}" ]; then
    [ "$method" = trust ] || die "the data directory $PGDATA is new and POSTGRES_PASSWORD is empty.
  Set POSTGRES_PASSWORD (or POSTGRES_PASSWORD_FILE) to the superuser's password, or set
  POSTGRES_HOST_AUTH_METHOD=trust to let anyone who reaches the port in without one (tests only)."
    say "WARNING: POSTGRES_HOST_AUTH_METHOD=trust and no password: anyone who reaches the port is superuser"
  fi
  if [ -n "${POSTGRES_INITDB_ARGS:-}" ]; then
    # xargs splits like a shell (quotes, backslashes) but expands nothing.
    local words
    words=$(mktemp)
    printf '%s' "$POSTGRES_INITDB_ARGS" | xargs -r printf '%s\0' >"$words" ||
      die "POSTGRES_INITDB_ARGS: cannot split into words (unbalanced quote?): $POSTGRES_INITDB_ARGS"
    mapfile -d '' -t extra <"$words"
    rm -f -- "$words"
  fi
  [ -z "${POSTGRES_INITDB_WALDIR:-}" ] || extra+=("--waldir=$POSTGRES_INITDB_WALDIR")

  say "new data directory $PGDATA: initdb (superuser $POSTGRES_USER, TCP auth $method)"
  "$pg_bin/initdb" --username="$POSTGRES_USER" --auth-local=trust --auth-host="$method" "${extra[@]}" >&2
  made_cluster=1
  trap undo_failed_init ERR EXIT

  cat >>"$PGDATA/postgresql.conf" <<'EOCONF'

# labops kit entrypoint: reachable from other containers (pg_hba.conf checks passwords)
listen_addresses = '*'
EOCONF
  printf '\n# labops kit entrypoint: TCP from anywhere, checked with %s\nhost all all all %s\n' \
    "$method" "$method" >>"$PGDATA/pg_hba.conf"

  start_temp_server "${@:2}"

  # Values travel as psql variables read from the environment, so any character in them
  # (quotes, $, backslashes, spaces, newlines) reaches the server intact: :'x' is a
  # quoted literal, :"x" a quoted identifier.
  if [ -n "${POSTGRES_PASSWORD:-}" ]; then
    sql --dbname=postgres <<'EOSQL'
\getenv su POSTGRES_USER
\getenv pw POSTGRES_PASSWORD
ALTER ROLE :"su" WITH PASSWORD :'pw';
EOSQL
  fi
  sql --dbname=postgres <<'EOSQL'
\getenv db POSTGRES_DB
SELECT NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') AS db_missing \gset
\if :db_missing
CREATE DATABASE :"db";
\endif
EOSQL

  # Init scripts commonly call plain `psql`: point it at the temporary server, the new
  # superuser and database (a script's own -h/-U/-d still win).
  local v
  local -A saved=()
  for v in PGHOST PGUSER PGDATABASE; do [ -z "${!v+x}" ] || saved[$v]=${!v}; done
  export PGHOST=$init_socket PGUSER=${PGUSER:-$POSTGRES_USER} PGDATABASE=${PGDATABASE:-$POSTGRES_DB}
  run_init_files
  unset PGHOST PGUSER PGDATABASE
  for v in "${!saved[@]}"; do export "$v=${saved[$v]}"; done

  stop_temp_server
  trap - ERR EXIT
  say "initialisation complete"
  # The line tools and people wait for in the upstream image's log.
  echo "PostgreSQL init process complete; ready for start up." >&2
}

# ---- main -----------------------------------------------------------------------------
# `docker run IMAGE -c x=y` means server options.
case ${1:-} in -*) set -- postgres "$@" ;; esac
# Anything but the server (bash, psql, ...) or a question to the server binary: just run it.
if [ "${1:-}" != postgres ] || only_asks "$@"; then
  exec "$@"
fi

for v in POSTGRES_PASSWORD POSTGRES_USER POSTGRES_DB POSTGRES_INITDB_ARGS; do
  take_from_file "$v"
done

if [ "$(id -u)" = 0 ]; then
  as_root "$@"
fi

id -un >/dev/null 2>&1 || die "uid $(id -u) has no account in this image: run as root (default) or as postgres (999)"

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  initialise "$@"
else
  say "$PGDATA holds a cluster (PostgreSQL $(cat "$PGDATA/PG_VERSION")): no initialisation"
fi

# The server needs no password in its environment.
unset POSTGRES_PASSWORD
say "starting the server: $*"
exec "$@"
