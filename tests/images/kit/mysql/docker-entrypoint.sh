#!/usr/bin/env bash
# Entrypoint of the labops kit's MySQL stand-in (tests/images/kit/mysql): a MariaDB server.
#
# Written for labops.services. It keeps the documented environment contract of the
# upstream `mysql` image so compose files written for it run unchanged:
#   MYSQL_ROOT_PASSWORD        root's password; required unless one of the next two is set
#   MYSQL_ALLOW_EMPTY_PASSWORD any value: root gets an empty password
#   MYSQL_RANDOM_ROOT_PASSWORD any value: a random root password, printed once to the log
#   MYSQL_ROOT_HOST            host part of a second root account (default %; localhost = none)
#   MYSQL_DATABASE             database created at first start
#   MYSQL_USER, MYSQL_PASSWORD an account @'%' with ALL on MYSQL_DATABASE (both needed)
#   MYSQL_ONETIME_PASSWORD     any value: the root@MYSQL_ROOT_HOST password is expired
#   MYSQL_INITDB_SKIP_TZINFO   any value: time zone tables are not loaded
#   X_FILE                     read X from a file (ROOT_PASSWORD, ROOT_HOST, DATABASE, USER, PASSWORD)
#   /docker-entrypoint-initdb.d/*.sql, *.sql.gz, *.sql.bz2, *.sql.xz, *.sql.zst, *.sh
#                              run once, in byte order, when the data directory is new,
#                              against a temporary server that has no TCP and listens on a
#                              private socket only: `mysqladmin ping` (the usual
#                              healthcheck) fails until the real server runs. Plain
#                              `mysql`/`mysqldump` in init scripts reach that temporary
#                              server as root (MARIADB_HOME, MYSQL_UNIX_PORT, MYSQL_PWD).
#   arguments starting with '-' are server options (`command: --character-set-server=...`)
#
# Values may hold any character (quotes, backslashes, $, backticks, spaces, newlines): they
# reach the server hex-encoded and are quoted there by QUOTE(), never pasted into SQL text.
# Server options that this MariaDB does not know (MySQL 8 only, such as
# --default-authentication-plugin), on the command line or in option files, are handed
# over as --loose-NAME with a warning: MariaDB ignores them instead of refusing to start.
#
# The data directory counts as initialised when it has a `mysql` folder (as upstream); a
# later start goes straight to the server, so init files never run twice. A failed or
# interrupted initialisation leaves no half-made database behind: it is removed, and the
# next start initialises again. The server runs in the foreground as user mysql (exec: it
# gets docker stop's SIGTERM and shuts down cleanly).
set -Eeuo pipefail

init_dir=/docker-entrypoint-initdb.d
options_list=/usr/local/share/labops-kit/mariadbd-options
incomplete=.labops-kit-init-incomplete

say() { printf '%s [Entrypoint] %s\n' "$(date -u '+%Y-%m-%d %H:%M:%S UTC')" "$*" >&2; }
warn() { say "WARNING: $*"; }
die() { say "FATAL: $*"; exit 1; }

# X_FILE -> X (secrets). Trailing newlines of the file are dropped, as editors add one.
take_from_file() {
  local var=$1 file_var=${1}_FILE value
  [ -n "${!file_var:-}" ] || return 0
  [ -z "${!var:-}" ] || die "$var and $file_var are both set; set only one of them"
  [ -r "${!file_var}" ] || die "$file_var: cannot read '${!file_var}' as $(id -un 2>/dev/null || id -u)"
  value=$(cat -- "${!file_var}")
  export "$var=$value"
  unset "$file_var"
}

# Options that only ask the server something: nothing to set up.
only_asks() {
  local a
  for a in "$@"; do
    case $a in -'?' | --help | --print-defaults | -V | --version) return 0 ;; esac
  done
  return 1
}

# ---- server options: what this MariaDB does not know becomes --loose-NAME ---------------
declare -A known=()
FILTERED=() UNKNOWN=()

is_known() {
  local name=${1//_/-} prefix
  name=${name,,}
  case $name in loose-*) return 0 ;; esac
  [ -z "${known[$name]:-}" ] || return 0
  for prefix in skip- enable- disable- maximum-; do
    [[ $name == "$prefix"?* ]] && [ -n "${known[${name#"$prefix"}]:-}" ] && return 0
  done
  return 1
}

# filter_options ARGS...: FILTERED = ARGS with unknown --name[=value] made --loose-...,
# UNKNOWN = what was changed. mariadbd takes no positional arguments, so a word after an
# unknown option without '=' is that option's value.
filter_options() {
  local a name
  FILTERED=() UNKNOWN=()
  while [ $# -gt 0 ]; do
    a=$1
    shift
    name=${a#--}
    name=${name%%=*}
    if [[ $a == --?* ]] && ! is_known "$name"; then
      if [[ $a != *=* ]] && [ $# -gt 0 ] && [[ $1 != -* ]]; then
        a="$a=$1"
        shift
      fi
      UNKNOWN+=("$a")
      FILTERED+=("--loose-${a#--}")
    else
      FILTERED+=("$a")
    fi
  done
}

# resolve_server_args ARGS...: SERVER_ARGS = the options the server gets. Option files
# are read as the server would; when they hold an unknown option the server starts with
# --no-defaults and their (filtered) options on its command line instead.
SERVER_ARGS=()
resolve_server_args() {
  local defaults=() file_opts=() out u
  while [ $# -gt 0 ]; do
    case $1 in
      --no-defaults | --defaults-file=* | --defaults-extra-file=* | --defaults-group-suffix=*)
        defaults+=("$1")
        shift
        ;;
      *) break ;;
    esac
  done
  while IFS= read -r u; do known[$u]=1; done <"$options_list"

  out=$(my_print_defaults "${defaults[@]}" --mysqld) ||
    die "cannot read the server's option files (my_print_defaults ${defaults[*]} --mysqld)"
  [ -z "$out" ] || mapfile -t file_opts <<<"$out"
  filter_options "${file_opts[@]}"
  if [ ${#UNKNOWN[@]} -gt 0 ]; then
    for u in "${UNKNOWN[@]}"; do
      warn "option file setting '$u' is not a MariaDB option (MySQL only?): passed as --loose-${u#--}, which MariaDB ignores"
    done
    warn "so the server starts with --no-defaults and the options of its files on its command line"
    SERVER_ARGS=(--no-defaults "${FILTERED[@]}")
  else
    SERVER_ARGS=("${defaults[@]}")
  fi
  filter_options "$@"
  for u in "${UNKNOWN[@]}"; do
    warn "server option '$u' is not a MariaDB option (MySQL only?): passed as --loose-${u#--}, which MariaDB ignores"
  done
  SERVER_ARGS+=("${FILTERED[@]}")
}

# read_settings: DATADIR, SOCKET, PIDFILE, FILE_PRIV as the server would use them.
read_settings() {
  local out err
  err=$(mktemp)
  if ! out=$("$server" "${SERVER_ARGS[@]}" --verbose --help 2>"$err"); then
    cat -- "$err" >&2
    rm -f -- "$err"
    die "the server refuses its options (see above): ${SERVER_ARGS[*]}"
  fi
  rm -f -- "$err"
  setting() { awk -v k="$1" '$1 == k { sub(/^[^ ]+ +/, ""); if ($0 != "(No default value)") print; exit }' <<<"$out"; }
  DATADIR=$(setting datadir)
  SOCKET=$(setting socket)
  PIDFILE=$(setting pid-file)
  FILE_PRIV=$(setting secure-file-priv)
  DATADIR=${DATADIR%/}
  [ -n "$DATADIR" ] || die "the server has no datadir"
}

# ---- as root: own the directories, then run this script again as mysql --------------
as_root() {
  local d
  mkdir -p -- "$DATADIR"
  # A volume made by another image (or by root) may hold files of other owners.
  find "$DATADIR" ! -user mysql -exec chown mysql:mysql {} +
  for d in ${SOCKET:+"$(dirname -- "$SOCKET")"} ${PIDFILE:+"$(dirname -- "$PIDFILE")"}; do
    case $d in /run/mysqld | /var/run/mysqld) mkdir -p "$d"; chown mysql:mysql "$d"; chmod 1777 "$d" ;; esac
  done
  if [ -n "$FILE_PRIV" ] && [ "$FILE_PRIV" != NULL ] && [ ! -d "$FILE_PRIV" ]; then
    install -d -o mysql -g mysql -m 0750 -- "$FILE_PRIV"
  fi
  export HOME=/var/lib/mysql LABOPS_KIT_ARGS_RESOLVED=1
  exec setpriv --reuid=mysql --regid=mysql --init-groups -- "${BASH_SOURCE[0]}" "$server" "${SERVER_ARGS[@]}"
}

# ---- first start: make the database ----------------------------------------------------
temp_pid=
init_tmp=
init_socket=
made_datadir=0

hex() { printf '%s' "$1" | od -An -v -tx1 | tr -d ' \n'; }

# sql ARGS...: the mariadb client on the temporary server as root; no option files (a
# mounted [client] password or ssl setting must not get in the way), the password (once
# set) from MYSQL_PWD, no TLS (MariaDB's client would insist on it, and the server may
# have none).
sql() {
  mariadb --no-defaults --skip-ssl --protocol=socket --socket="$init_socket" --user=root \
    --default-character-set=utf8mb4 --max-allowed-packet=1G --comments "$@"
}

# Helpers upstream offers to sourced init scripts.
docker_process_sql() { sql ${MYSQL_DATABASE:+--database="$MYSQL_DATABASE"} "$@"; }
mysql_note() { say "$*"; }
mysql_warn() { warn "$*"; }

start_temp_server() {
  init_tmp=$(mktemp -d /tmp/labops-mysql-init.XXXXXX)
  init_socket=$init_tmp/mysqld.sock
  say "starting a temporary server (no TCP, socket $init_socket only) for the set-up"
  "$server" "${SERVER_ARGS[@]}" --skip-networking --default-time-zone=SYSTEM \
    --socket="$init_socket" --pid-file="$init_tmp/mysqld.pid" &
  temp_pid=$!
  local waited=0
  # ping succeeds once the server answers, whatever the credentials.
  until mariadb-admin --no-defaults --skip-ssl --protocol=socket --socket="$init_socket" --user=root \
        --connect-timeout=2 ping >/dev/null 2>&1; do
    kill -0 "$temp_pid" 2>/dev/null || { temp_pid=; die "the temporary server exited during start-up"; }
    [ "$waited" -lt 600 ] || die "the temporary server did not answer within 120 s"
    sleep 0.2
    waited=$((waited + 1))
  done
}

stop_temp_server() {
  if [ -n "$temp_pid" ]; then
    say "stopping the temporary server"
    kill -TERM "$temp_pid" 2>/dev/null || true
    wait "$temp_pid" || true
    temp_pid=
  fi
  [ -z "$init_tmp" ] || rm -rf -- "$init_tmp"
  init_tmp=
}

# Whatever failed (or stopped us) after the data directory was made: remove it, so the
# next start initialises again instead of skipping initialisation.
undo_failed_init() {
  local rc=$?
  trap - ERR EXIT INT TERM
  [ "$rc" != 0 ] || rc=1
  stop_temp_server
  if [ "$made_datadir" = 1 ]; then
    say "initialisation failed (exit $rc): removing the half-made database from $DATADIR"
    find "$DATADIR" -mindepth 1 -delete 2>/dev/null || true
  fi
  exit "$rc"
}

run_init_files() {
  local files=() f db=()
  [ -d "$init_dir" ] || return 0
  [ -z "${MYSQL_DATABASE:-}" ] || db=(--database="$MYSQL_DATABASE")
  # Byte order, whatever the locale says.
  mapfile -d '' -t files < <(LC_ALL=C; shopt -s nullglob; for f in "$init_dir"/*; do printf '%s\0' "$f"; done)
  for f in "${files[@]}"; do
    case $f in
      *.sh)
        if [ -x "$f" ]; then
          say "running $f"
          "$f"
        else
          say "sourcing $f"
          # Scripts written for upstream's shell do not expect `set -u`.
          set +u
          # shellcheck disable=SC1090
          . "$f"
          set -u
        fi
        ;;
      *.sql) say "running $f"; sql "${db[@]}" <"$f" ;;
      *.sql.gz) say "running $f"; gzip -dc -- "$f" | sql "${db[@]}" ;;
      *.sql.bz2) say "running $f"; bzip2 -dc -- "$f" | sql "${db[@]}" ;;
      *.sql.xz) say "running $f"; xz -dc -- "$f" | sql "${db[@]}" ;;
      *.sql.zst) say "running $f"; zstd -dcq -- "$f" | sql "${db[@]}" ;;
      *) say "ignoring $f (not .sh, .sql, .sql.gz, .sql.bz2, .sql.xz or .sql.zst)" ;;
    esac
  done
}

# The set-up SQL is fixed text; the values arrive as hex literals in user variables and
# are quoted by the server (QUOTE, doubled backticks) inside prepared statements. The
# session's sql_mode is pinned so that QUOTE's backslash escapes mean what they say.
setup_sql() {
  printf "SET NAMES utf8mb4;\nSET @root_pw = CONVERT(X'%s' USING utf8mb4), @root_host = CONVERT(X'%s' USING utf8mb4), @db = CONVERT(X'%s' USING utf8mb4), @user = CONVERT(X'%s' USING utf8mb4), @user_pw = CONVERT(X'%s' USING utf8mb4);\n" \
    "$(hex "${MYSQL_ROOT_PASSWORD:-}")" "$(hex "$root_host")" "$(hex "${MYSQL_DATABASE:-}")" \
    "$(hex "${MYSQL_USER:-}")" "$(hex "${MYSQL_PASSWORD:-}")"
  cat <<'EOSQL'
SET SESSION sql_log_bin = 0;
SET SESSION sql_mode = 'NO_ENGINE_SUBSTITUTION';
-- mariadb-install-db makes root@127.0.0.1, root@::1, root@<hostname> without a password;
-- upstream's server has only root@localhost (and root@MYSQL_ROOT_HOST, made below).
SELECT COALESCE(CONCAT('DROP USER ', GROUP_CONCAT(CONCAT(QUOTE(User), '@', QUOTE(Host)) SEPARATOR ', ')), 'DO 0')
  INTO @s FROM mysql.user WHERE User = '' OR (User = 'root' AND Host <> 'localhost');
PREPARE st FROM @s; EXECUTE st;
SET @s = CONCAT('ALTER USER root@localhost IDENTIFIED BY ', QUOTE(@root_pw));
PREPARE st FROM @s; EXECUTE st;
SET @s = IF(@root_host = 'localhost', 'DO 0',
            CONCAT('CREATE USER root@', QUOTE(@root_host), ' IDENTIFIED BY ', QUOTE(@root_pw)));
PREPARE st FROM @s; EXECUTE st;
SET @s = IF(@root_host = 'localhost', 'DO 0',
            CONCAT('GRANT ALL PRIVILEGES ON *.* TO root@', QUOTE(@root_host), ' WITH GRANT OPTION'));
PREPARE st FROM @s; EXECUTE st;
SET @s = IF(@db = '', 'DO 0', CONCAT('CREATE DATABASE IF NOT EXISTS `', REPLACE(@db, '`', '``'), '`'));
PREPARE st FROM @s; EXECUTE st;
SET @s = IF(@user = '' OR @user_pw = '', 'DO 0',
            CONCAT('CREATE USER ', QUOTE(@user), '@''%'' IDENTIFIED BY ', QUOTE(@user_pw)));
PREPARE st FROM @s; EXECUTE st;
-- In a GRANT, '_' and '%' of a database name are wildcards: escape them.
SET @s = IF(@user = '' OR @user_pw = '' OR @db = '', 'DO 0',
            CONCAT('GRANT ALL PRIVILEGES ON `',
                   REPLACE(REPLACE(REPLACE(@db, '`', '``'), '_', '\\_'), '%', '\\%'),
                   '`.* TO ', QUOTE(@user), '@''%'''));
PREPARE st FROM @s; EXECUTE st;
DEALLOCATE PREPARE st;
FLUSH PRIVILEGES;
EOSQL
}

initialise() {
  root_host=${MYSQL_ROOT_HOST:-%}
  if [ -z "${MYSQL_ROOT_PASSWORD:-}" ] && [ -z "${MYSQL_ALLOW_EMPTY_PASSWORD:-}" ] &&
     [ -z "${MYSQL_RANDOM_ROOT_PASSWORD:-}" ]; then
    die "the data directory $DATADIR is new and no root password option is set.
  Set one of MYSQL_ROOT_PASSWORD (or MYSQL_ROOT_PASSWORD_FILE), MYSQL_RANDOM_ROOT_PASSWORD=yes
  or MYSQL_ALLOW_EMPTY_PASSWORD=yes (tests only: anyone who reaches the port is root)."
  fi
  [ "${MYSQL_USER:-}" != root ] ||
    die 'MYSQL_USER="root": MYSQL_USER and MYSQL_PASSWORD make an ordinary account; root is set up by MYSQL_ROOT_PASSWORD'
  if [ -n "${MYSQL_USER:-}" ] && [ -z "${MYSQL_PASSWORD:-}" ]; then
    warn "MYSQL_USER is set but MYSQL_PASSWORD is empty: no user is created"
  elif [ -z "${MYSQL_USER:-}" ] && [ -n "${MYSQL_PASSWORD:-}" ]; then
    warn "MYSQL_PASSWORD is set but MYSQL_USER is empty: no user is created"
  fi
  if [ -n "${MYSQL_RANDOM_ROOT_PASSWORD:-}" ]; then
    MYSQL_ROOT_PASSWORD=$(head -c 18 /dev/urandom | base64)
    export MYSQL_ROOT_PASSWORD
    say "GENERATED ROOT PASSWORD: $MYSQL_ROOT_PASSWORD"
  elif [ -z "${MYSQL_ROOT_PASSWORD:-}" ]; then
    warn "MYSQL_ALLOW_EMPTY_PASSWORD is set: root has an empty password"
  fi

  # Leading option-file switches must stay first for mariadb-install-db too.
  local lead=() rest=("${SERVER_ARGS[@]}") log
  while [ ${#rest[@]} -gt 0 ]; do
    case ${rest[0]} in
      --no-defaults | --defaults-file=* | --defaults-extra-file=* | --defaults-group-suffix=*)
        lead+=("${rest[0]}")
        rest=("${rest[@]:1}")
        ;;
      *) break ;;
    esac
  done

  say "new data directory $DATADIR: mariadb-install-db"
  trap undo_failed_init ERR EXIT INT TERM
  made_datadir=1
  : >"$DATADIR/$incomplete"
  # As mysql: files owned by mysql. As any other uid (docker run --user): install-db must
  # not try to chown to the `user = mysql` of my.cnf, so it gets an empty --user.
  local owner=
  [ "$(id -u)" != "$(id -u mysql)" ] || owner=mysql
  log=$(mktemp)
  if ! mariadb-install-db "${lead[@]}" --datadir="$DATADIR" --user="$owner" \
       --auth-root-authentication-method=normal --skip-test-db "${rest[@]}" >"$log" 2>&1; then
    cat -- "$log" >&2
    die "mariadb-install-db failed"
  fi
  rm -f -- "$log"

  start_temp_server
  if [ -z "${MYSQL_INITDB_SKIP_TZINFO:-}" ]; then
    say "loading the time zone tables"
    mariadb-tzinfo-to-sql /usr/share/zoneinfo 2>/dev/null | sql --database=mysql
  fi
  setup_sql | sql --database=mysql
  [ -z "${MYSQL_ROOT_PASSWORD:-}" ] || export MYSQL_PWD=$MYSQL_ROOT_PASSWORD

  # Plain `mysql`, `mysqladmin`, `mysqldump` in init scripts: root on the temporary server
  # (their own -u/-p/-S options still win).
  printf '[client]\nuser = root\nsocket = %s\n' "$init_socket" >"$init_tmp/my.cnf"
  local had_home=${MARIADB_HOME-unset} had_port=${MYSQL_UNIX_PORT-unset}
  export MARIADB_HOME=$init_tmp MYSQL_UNIX_PORT=$init_socket
  run_init_files
  if [ "$had_home" = unset ]; then unset MARIADB_HOME; else export MARIADB_HOME=$had_home; fi
  if [ "$had_port" = unset ]; then unset MYSQL_UNIX_PORT; else export MYSQL_UNIX_PORT=$had_port; fi

  if [ -n "${MYSQL_ONETIME_PASSWORD:-}" ]; then
    say "MYSQL_ONETIME_PASSWORD: expiring the password of root@$root_host"
    printf "SET @h = CONVERT(X'%s' USING utf8mb4);\nSET @s = CONCAT('ALTER USER root@', QUOTE(@h), ' PASSWORD EXPIRE');\nPREPARE st FROM @s; EXECUTE st;\n" \
      "$(hex "$root_host")" | sql --database=mysql
  fi
  unset MYSQL_PWD

  stop_temp_server
  rm -f -- "$DATADIR/$incomplete"
  trap - ERR EXIT INT TERM
  say "initialisation complete"
  # The line tools and people wait for in the upstream image's log.
  echo "MySQL init process done. Ready for start up." >&2
}

# ---- main -----------------------------------------------------------------------------
# `docker run IMAGE --opt=val` / `command: --opt=val` means server options.
case ${1:-} in -*) set -- mysqld "$@" ;; esac
case ${1:-} in
  mysqld | mariadbd | /usr/sbin/mysqld | /usr/sbin/mariadbd) ;;
  *) exec "$@" ;;  # bash, mysql, mysqldump, ...: run as given
esac
only_asks "$@" && exec "$@"

server=$1
shift
if [ -z "${LABOPS_KIT_ARGS_RESOLVED:-}" ]; then
  resolve_server_args "$@"
else
  SERVER_ARGS=("$@")
  unset LABOPS_KIT_ARGS_RESOLVED
fi

for v in MYSQL_ROOT_PASSWORD MYSQL_ROOT_HOST MYSQL_DATABASE MYSQL_USER MYSQL_PASSWORD; do
  take_from_file "$v"
done

read_settings
if [ "$(id -u)" = 0 ]; then
  as_root
fi

if [ -e "$DATADIR/$incomplete" ]; then
  warn "an earlier initialisation of $DATADIR did not finish: removing what it left and starting over"
  find "$DATADIR" -mindepth 1 -delete 2>/dev/null || true
fi
if [ -d "$DATADIR/mysql" ]; then
  say "$DATADIR holds a database: no initialisation"
else
  initialise
fi

# The server needs no password in its environment.
unset MYSQL_ROOT_PASSWORD MYSQL_PASSWORD
say "starting the server: $server ${SERVER_ARGS[*]}"
exec "$server" "${SERVER_ARGS[@]}"
