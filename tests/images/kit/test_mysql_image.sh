#!/usr/bin/env bash
# run_id, label, work, image, t0, kit come from lib.sh (sourced below):
# shellcheck disable=SC2154
# Prove, against running containers, that the kit's mysql image (MariaDB behind our own
# entrypoint) keeps the upstream mysql image's contract (see docs/testing.md, "Offline
# image kit").
#
# Usage: tests/images/kit/test_mysql_image.sh [IMAGE]
#   IMAGE defaults to what `build.sh mysql` builds (built first when missing).
# Exit status 0 when every check passed, 1 otherwise. Everything it creates (containers,
# volumes, a network, a temp folder) carries one run label and is removed at the end.
# SQL identifiers are quoted with backticks in single-quoted strings: no expansion wanted.
# shellcheck disable=SC2016
set -euo pipefail

. "$(dirname "$0")/lib.sh"
kit_begin mysql "${1:-}"

# A password with every character that quoting gets wrong: ' " $ ` \ spaces, a newline,
# non-ASCII, SQL. Names with a quote, a space, '-' and '_' check identifier quoting and
# the escaping of GRANT wildcards.
PW=$'it\'s a "quoted" $HOME `id` \\ and \\\\ \n second line; DROP TABLE x; -- é'
USER_PW=$'user\'s "pw" $(id) `x` \\ %_ é'
PW_FILE_VALUE=$'file pass: \'single\' "double" $PATH \\n not-a-newline \\'
DB_USER="lab'user"
DB_NAME='lab data_v1-db'

# new_server NAME VOLUME [docker create options...] -- [command...]: create, copy in
# $work/NAME.initdb (if present), start.
new_server() {
  local name=$1 vol=$2; shift 2
  local opts=() cmd=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do opts+=("$1"); shift; done
  [ $# -eq 0 ] || { shift; cmd=("$@"); }
  docker create --name "$run_id-$name" --label "$label" --network "$run_id" --network-alias "$name" \
    -v "$vol:/var/lib/mysql" "${opts[@]}" "$image" "${cmd[@]}" >/dev/null
  if [ -d "$work/$name.initdb" ]; then
    docker cp "$work/$name.initdb/." "$run_id-$name:/docker-entrypoint-initdb.d/"
  fi
  docker start "$run_id-$name" >/dev/null
}

# wait_ready NAME [SECONDS]: what a compose healthcheck does (`mysqladmin ping` on the
# container's default socket), bounded; fails early when the container stopped.
wait_ready() {
  local c=$run_id-$1 limit=${2:-90} start=$SECONDS
  while [ $((SECONDS - start)) -lt "$limit" ]; do
    docker exec "$c" mysqladmin ping --silent >/dev/null 2>&1 && return 0
    [ "$(docker inspect -f '{{.State.Running}}' "$c")" = true ] || { docker logs --tail 20 "$c" >&2; return 1; }
    sleep 0.5
  done
  docker logs --tail 20 "$c" >&2
  return 1
}

# wait_exit NAME SECONDS: the container's exit code once it stopped by itself.
wait_exit() {
  local c=$run_id-$1 limit=$2 start=$SECONDS
  while [ $((SECONDS - start)) -lt "$limit" ]; do
    if [ "$(docker inspect -f '{{.State.Running}}' "$c")" = false ]; then
      docker inspect -f '{{.State.ExitCode}}' "$c"
      return 0
    fi
    sleep 0.5
  done
  echo "still running after ${limit}s"
}

# client HOST USER PASSWORD SQL: the mysql client over TCP from a second container on the
# same network (one client container, started once, for every call).
client() {
  local host=$1 user=$2 pw=$3 sql=$4
  docker exec "$run_id-client" mysql --protocol=tcp -h "$host" -u "$user" --password="$pw" -N -B -e "$sql"
}
# as_root NAME [mysql args...]: the mysql client inside the container as root@localhost
# (unix socket, password required as upstream), reading SQL from stdin.
as_root() { local c=$run_id-$1; shift; MYSQL_PWD=$PW docker exec -i -e MYSQL_PWD "$c" mysql -uroot -N -B "$@"; }
in_server() { as_root "$1" "$DB_NAME" -e "$2" </dev/null; }

# ---- init files for the main server: every kind, order-sensitive, each logs one run ----
mkdir -p "$work/main.initdb"
cat >"$work/main.initdb/10-schema.sql" <<'EOF'
CREATE TABLE init_runs (id int AUTO_INCREMENT PRIMARY KEY, source varchar(64) NOT NULL, at timestamp DEFAULT CURRENT_TIMESTAMP);
CREATE TABLE samples (id int PRIMARY KEY, label varchar(64) NOT NULL, payload json, raw varbinary(16)) ENGINE=InnoDB;
INSERT INTO init_runs (source) VALUES ('10-schema.sql');
EOF
# Byte order puts '-' before '_': in another order this file would run first and fail.
cat >"$work/main.initdb/10_data.sql" <<'EOF'
INSERT INTO samples SELECT seq, CONCAT('sample ', seq, ' é'), JSON_OBJECT('n', seq), UNHEX(MD5(seq)) FROM seq_1_to_500;
INSERT INTO init_runs (source) VALUES ('10_data.sql');
EOF
printf '%s\n' "INSERT INTO samples VALUES (1000, 'from gz', '{\"q\": \"it''s\"}', X'00FF27');" \
  "INSERT INTO init_runs (source) VALUES ('20-more.sql.gz');" | gzip -c >"$work/main.initdb/20-more.sql.gz"
printf '%s\n' "INSERT INTO init_runs (source) VALUES ('25-more.sql.xz');" | xz -c >"$work/main.initdb/25-more.sql.xz"
# Sourced (not executable): upstream's docker_process_sql helper reaches MYSQL_DATABASE.
cat >"$work/main.initdb/30-sourced.sh" <<'EOF'
docker_process_sql <<<"INSERT INTO init_runs (source) VALUES ('30-sourced.sh')"
EOF
# Executed; slow on purpose: the healthcheck must not report ready while it runs. Plain
# `mysql` must reach the temporary server as root, and so must -uroot -p"$MYSQL_ROOT_PASSWORD".
cat >"$work/main.initdb/40-exec.sh" <<'EOF'
#!/bin/bash
set -e
sleep 3
[ "$(mysql -N -e 'SELECT current_user()')" = root@localhost ]
mysql -uroot -p"$MYSQL_ROOT_PASSWORD" "$MYSQL_DATABASE" -e "INSERT INTO init_runs (source) VALUES ('40-exec.sh')"
EOF
chmod 0644 "$work/main.initdb/30-sourced.sh"
chmod 0755 "$work/main.initdb/40-exec.sh"
echo "not run" >"$work/main.initdb/README.txt"

# ---- the main server starts first --------------------------------------------------------
# MySQL-8-only options that MariaDB would refuse, and options it knows.
server_opts=(--default-authentication-plugin=mysql_native_password --skip-mysqlx
  --authentication-policy='*' --character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci)
main_vol=$(volume main)
new_server main "$main_vol" -e MYSQL_ROOT_PASSWORD="$PW" -e MYSQL_DATABASE="$DB_NAME" \
  -e MYSQL_USER="$DB_USER" -e MYSQL_PASSWORD="$USER_PW" -- "${server_opts[@]}"

# Cheap company meanwhile: the client side (one idle container of the image, for its mysql
# client) and servers that must refuse to start (they stop before any initialisation).
docker run -d --name "$run_id-client" --label "$label" --network "$run_id" --entrypoint sleep "$image" 600 >/dev/null &
nopw_vol=$(volume nopw)
new_server nopw "$nopw_vol" &
both_vol=$(volume both)
new_server both "$both_vol" -e MYSQL_ROOT_PASSWORD=x -e MYSQL_ROOT_PASSWORD_FILE=/etc/hostname &
rootuser_vol=$(volume rootuser)
new_server rootuser "$rootuser_vol" -e MYSQL_ROOT_PASSWORD=x -e MYSQL_USER=root -e MYSQL_PASSWORD=y &
wait

# ---- main server: healthcheck, init files once, passwords over TCP ---------------------
if wait_ready main; then
  pass "main server: mysqladmin ping (the healthcheck) answers within 90 s"
  check_eq "init files had all run when the healthcheck first said ready (private socket during init)" \
    "10-schema.sql,10_data.sql,20-more.sql.gz,25-more.sql.xz,30-sourced.sh,40-exec.sh" \
    in_server main "SELECT GROUP_CONCAT(source ORDER BY id) FROM init_runs"
else
  fail "main server: mysqladmin ping (the healthcheck) answers within 90 s"
fi

# ---- the other servers start now: their initialisation overlaps the main checks below
# instead of competing with the main server's (this machine has two shared cores) -------
printf '%s\n\n' "$PW_FILE_VALUE" >"$work/pw.txt"        # trailing newlines are dropped
printf '%s\n' "$DB_USER" >"$work/user.txt"
printf '%s\n' "$USER_PW" >"$work/userpw.txt"
printf '%s\n' "$DB_NAME" >"$work/db.txt"
files_vol=$(volume files)
docker create --name "$run_id-files" --label "$label" --network "$run_id" --network-alias files \
  -v "$files_vol:/var/lib/mysql" -e MYSQL_INITDB_SKIP_TZINFO=1 \
  -e MYSQL_ROOT_PASSWORD_FILE=/run/secrets/pw -e MYSQL_USER_FILE=/run/secrets/user \
  -e MYSQL_PASSWORD_FILE=/run/secrets/userpw -e MYSQL_DATABASE_FILE=/run/secrets/db "$image" >/dev/null
# Like compose secrets: files under /run/secrets, readable by root only.
mkdir -p "$work/secrets"
for f in pw user userpw db; do mv "$work/$f.txt" "$work/secrets/$f"; done
chmod 0700 "$work/secrets"; chmod 0400 "$work/secrets"/*
docker cp "$work/secrets" "$run_id-files:/run/secrets"
# An option file like datajoint/mysql's: MySQL-only settings beside ones MariaDB knows.
mkdir -p "$work/conf.d"
printf '%s\n' '[mysqld]' 'default_authentication_plugin = mysql_native_password' 'mysqlx = 0' \
  'sql-mode = "STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION"' 'max_allowed_packet = 512M  # big blobs' >"$work/conf.d/dj.cnf"
chmod 0755 "$work/conf.d"; chmod 0644 "$work/conf.d/dj.cnf"
docker cp "$work/conf.d/dj.cnf" "$run_id-files:/etc/mysql/conf.d/dj.cnf"
docker start "$run_id-files" >/dev/null &

random_vol=$(volume random)
# Also under another uid, as `user: "1000:1000"` in a compose file, and without TLS
# (MariaDB's clients would refuse such a server by default).
new_server random "$random_vol" --user 1000:1000 -e MYSQL_RANDOM_ROOT_PASSWORD=yes -e MYSQL_INITDB_SKIP_TZINFO=1 \
  -- --skip-ssl &

# ---- a server whose init file fails ------------------------------------------------------
mkdir -p "$work/broken.initdb"
printf 'CREATE TABLE ok_table (i int);\nSELECT * FROM no_such_table;\n' >"$work/broken.initdb/01-broken.sql"
broken_vol=$(volume broken)
new_server broken "$broken_vol" -e MYSQL_ROOT_PASSWORD=x -e MYSQL_DATABASE=d -e MYSQL_INITDB_SKIP_TZINFO=1 &
wait

check_eq "root over TCP from a second container with the special-character password (over TLS)" "root@%|$DB_NAME|TLS" \
  client main root "$PW" "SELECT CONCAT(current_user(), '|', (SELECT schema_name FROM information_schema.schemata WHERE schema_name = '$DB_NAME'), '|', IF((SELECT VARIABLE_VALUE FROM information_schema.SESSION_STATUS WHERE VARIABLE_NAME = 'Ssl_cipher') <> '', 'TLS', 'plain'))"
# The password as an argument (-p), as scripts and compose healthchecks pass it.
check_eq "root over TCP with the password given as -p\"\$PW\"" "1" \
  docker exec "$run_id-client" mysql -h main -uroot -p"$PW" -N -B -e "SELECT 1"
if out=$(client main root "${PW}x" "SELECT 1" 2>&1); then
  fail "root over TCP with a wrong password is refused" "it connected: $out"
elif grep -q 'Access denied' <<<"$out"; then
  pass "root over TCP with a wrong password is refused (Access denied)"
else
  fail "root over TCP with a wrong password is refused" "failed for another reason: $out"
fi
if out=$(client main root "" "SELECT 1" 2>&1); then fail "root over TCP without a password is refused" "$out"; else pass "root over TCP without a password is refused"; fi
if out=$(docker exec "$run_id-main" mysql -uroot -e "SELECT 1" 2>&1); then
  fail "root@localhost in the container needs the password too (as upstream)" "$out"
else
  pass "root@localhost in the container needs the password too (as upstream)"
fi
check_eq "accounts: root@localhost, root@% and MYSQL_USER@% only (install-db's passwordless root@127.0.0.1 etc. dropped)" \
  "$DB_USER@%,mariadb.sys@localhost,root@%,root@localhost" \
  in_server main "SELECT GROUP_CONCAT(CONCAT(User, '@', Host) ORDER BY User, Host) FROM mysql.user"
check_eq "MYSQL_USER/MYSQL_PASSWORD over TCP, default database usable" "$DB_USER@%|501" \
  client main "$DB_USER" "$USER_PW" "SELECT CONCAT(current_user(), '|', (SELECT COUNT(*) FROM \`$DB_NAME\`.samples))"
check "MYSQL_USER has ALL on MYSQL_DATABASE (create, insert, drop a table)" \
  client main "$DB_USER" "$USER_PW" "CREATE TABLE \`$DB_NAME\`.by_user (i int); INSERT INTO \`$DB_NAME\`.by_user VALUES (1); DROP TABLE \`$DB_NAME\`.by_user"
# '_' in the database name is escaped in the GRANT: a database matching it as a wildcard is not granted.
in_server main 'CREATE DATABASE `lab dataXv1-db`' >/dev/null 2>&1 || true
if out=$(client main "$DB_USER" "$USER_PW" 'CREATE TABLE `lab dataXv1-db`.t (i int)' 2>&1); then
  fail "MYSQL_USER has nothing outside MYSQL_DATABASE ('_' is not a GRANT wildcard)" "it could: $out"
else
  pass "MYSQL_USER has nothing outside MYSQL_DATABASE ('_' is not a GRANT wildcard)"
fi
check_eq "server options from the command: character set and collation applied" "utf8mb4|utf8mb4_unicode_ci" \
  in_server main "SELECT CONCAT(@@character_set_server, '|', @@collation_server)"
check "MySQL-only options were passed as --loose-... with a warning instead of stopping the server" \
  bash -c "docker logs '$run_id-main' 2>&1 | grep -q \"server option '--skip-mysqlx' is not a MariaDB option\""
check_eq "time zone tables loaded (CONVERT_TZ with a named zone)" "2026-01-01 01:00:00" \
  in_server main "SELECT CONVERT_TZ('2026-01-01 00:00:00', 'UTC', 'Europe/Paris')"
check_eq "data from .sql, .sql.gz init files (quotes, non-ASCII, binary)" "501|it's|00FF27|sample 7 é" \
  in_server main "SELECT CONCAT(COUNT(*), '|', MAX(JSON_VALUE(payload, '\$.q')), '|', (SELECT HEX(raw) FROM samples WHERE id = 1000), '|', (SELECT label FROM samples WHERE id = 7)) FROM samples"
# shellcheck disable=SC2016  # expanded inside the container
check "server runs as mysql (uid 999) and is PID 1 (gets docker stop's signal)" \
  docker exec "$run_id-main" bash -c '[ "$(stat -c %U /proc/1)" = mysql ] && [ "$(id -u mysql)" = 999 ] && grep -qx mysqld /proc/1/comm'
# Read as mysql: root in a container lacks CAP_SYS_PTRACE and may not read another user's environ.
check "the server's environment holds no password" \
  docker exec -u mysql "$run_id-main" bash -c 'e=$(tr "\0" "\n" </proc/1/environ) && [ -n "$e" ] && ! grep -q "PASSWORD=" <<<"$e"'

# ---- mysqldump --single-transaction through docker exec, restored into a fresh database --
if MYSQL_PWD=$PW docker exec -e MYSQL_PWD "$run_id-main" mysqldump -uroot --single-transaction --hex-blob \
     --routines "$DB_NAME" >"$work/dump.sql" 2>"$work/dump.err" && grep -q 'CREATE TABLE `samples`' "$work/dump.sql"; then
  pass "mysqldump --single-transaction from docker exec ($(stat -c %s "$work/dump.sql") bytes)"
else
  fail "mysqldump --single-transaction from docker exec" "$(tail -n 5 "$work/dump.err")"
fi
in_server main 'CREATE DATABASE `restored copy`' >/dev/null 2>&1 || true
if as_root main "restored copy" <"$work/dump.sql" 2>"$work/restore.err"; then
  pass "mysql loads the dump into a fresh database"
else
  fail "mysql loads the dump into a fresh database" "$(tail -n 5 "$work/restore.err")"
fi
sum="SELECT CONCAT(COUNT(*), ':', MD5(GROUP_CONCAT(id, label, payload, HEX(raw) ORDER BY id SEPARATOR '|'))) FROM samples"
want=$(in_server main "$sum" 2>&1 || true)
check_eq "restored rows equal the original (count and checksum)" "$want" \
  as_root main "restored copy" -e "$sum"

# ---- what a MySQL 8 dump does here (mysql_export_sanitize's reason to exist) -----------
# A table as MySQL 8.0's mysqldump writes it: utf8mb4_0900_ai_ci (the MySQL 8 default
# collation, unknown to MariaDB before 11.4 and to MySQL 5.7), a MySQL-8 version comment.
cat >"$work/mysql8.sql" <<'EOF'
/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;
/*!50503 SET NAMES utf8mb4 */;
CREATE DATABASE /*!32312 IF NOT EXISTS*/ `from_mysql8` /*!40100 DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_0900_ai_ci */ /*!80016 DEFAULT ENCRYPTION='N' */;
USE `from_mysql8`;
/*!50503 SET character_set_client = utf8mb4 */;
CREATE TABLE `session` (
  `nwb_file_name` varchar(64) COLLATE utf8mb4_0900_as_cs NOT NULL,
  `description` varchar(255) NOT NULL,
  PRIMARY KEY (`nwb_file_name`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_0900_ai_ci;
INSERT INTO `session` VALUES ('a.nwb','first'),('A.nwb','case-sensitive key');
EOF
if out=$(as_root main <"$work/mysql8.sql" 2>&1); then
  pass "a MySQL 8 dump with utf8mb4_0900_ai_ci/_as_cs collations LOADS (MariaDB 11.8 has them; < 11.4 and MySQL 5.7 refuse)"
else
  fail "a MySQL 8 dump with utf8mb4_0900_ai_ci/_as_cs collations loads" "$out"
fi
check_eq "... and keeps MySQL's collation names" "utf8mb4_0900_ai_ci|utf8mb4_0900_as_cs|2" \
  in_server main "SELECT CONCAT(TABLE_COLLATION, '|', (SELECT COLLATION_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'from_mysql8' AND COLUMN_NAME = 'nwb_file_name'), '|', (SELECT COUNT(*) FROM from_mysql8.session)) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'from_mysql8'"
# What still breaks: a dump made with GTIDs on (mysqldump --set-gtid-purged=ON, the default then).
if out=$(printf '%s\n' "SET @@GLOBAL.GTID_PURGED=/*!80000 '+'*/ '3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5';" | as_root main 2>&1); then
  fail "a MySQL 8 dump with SET @@GLOBAL.GTID_PURGED fails here" "it loaded: $out"
else
  pass "a MySQL 8 dump with SET @@GLOBAL.GTID_PURGED fails here ($(grep -o 'Unknown system variable.*' <<<"$out"))"
fi

# ---- clean stop within 10 s; a new container on the same volume skips init -------------
check_stop "$run_id-main" "SIGTERM, clean shutdown, not killed"
check "server log says the shutdown was clean" bash -c "docker logs '$run_id-main' 2>&1 | tail -n 3 | grep -q 'Shutdown complete'"
docker rm "$run_id-main" >/dev/null
# Same volume, same init files, another password in the environment (must be ignored:
# the database exists, as with upstream).
new_server main "$main_vol" -e MYSQL_ROOT_PASSWORD="changed" -e MYSQL_DATABASE="$DB_NAME" \
  -e MYSQL_USER="$DB_USER" -e MYSQL_PASSWORD="changed" -- "${server_opts[@]}"
if wait_ready main; then
  pass "restarted on the same volume: ready"
  check_eq "init files did not run again" "6" in_server main "SELECT COUNT(*) FROM init_runs"
  check "entrypoint log says it skipped initialisation" \
    bash -c "docker logs '$run_id-main' 2>&1 | grep -q 'holds a database: no initialisation'"
  check_eq "the original password still works after restart" "root@%" client main root "$PW" "SELECT current_user()"
else
  fail "restarted on the same volume: ready"
fi

# ---- *_FILE variant, random root password ----------------------------------------------
if wait_ready files; then
  pass "*_FILE server: ready"
  check_eq "MYSQL_ROOT_PASSWORD_FILE: root over TCP with the file's password" "root@%" \
    client files root "$PW_FILE_VALUE" "SELECT current_user()"
  if client files root "$PW_FILE_VALUE"$'\n' "SELECT 1" >/dev/null 2>&1; then
    fail "the file's trailing newline is not part of the password"
  else
    pass "the file's trailing newline is not part of the password"
  fi
  check_eq "MYSQL_USER_FILE/PASSWORD_FILE/DATABASE_FILE: the user reaches its database" "$DB_USER@%|0" \
    client files "$DB_USER" "$USER_PW" "SELECT CONCAT(current_user(), '|', (SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = '$DB_NAME'))"
  check_eq "MYSQL_INITDB_SKIP_TZINFO: no time zone tables" "0" \
    client files root "$PW_FILE_VALUE" "SELECT COUNT(*) FROM mysql.time_zone_name"
  check_eq "a conf.d file with MySQL-only settings: the server starts and applies the others" \
    "STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION|536870912" \
    client files root "$PW_FILE_VALUE" "SELECT CONCAT(@@sql_mode, '|', @@max_allowed_packet)"
  check "... and the log names the settings it handed over as --loose-..." \
    bash -c "docker logs '$run_id-files' 2>&1 | grep -q \"option file setting '--mysqlx=0' is not a MariaDB option\""
else
  fail "*_FILE server: ready"
fi
if wait_ready random; then
  random_pw=$(docker logs "$run_id-random" 2>&1 | sed -n 's/.*GENERATED ROOT PASSWORD: //p' | head -n 1)
  pass "server with --skip-ssl: initialised, and the mysqladmin ping healthcheck answers"
  check_eq "MYSQL_RANDOM_ROOT_PASSWORD: the password printed in the log works over TCP (no TLS)" "root@%|" \
    client random root "$random_pw" "SELECT CONCAT(current_user(), '|', (SELECT VARIABLE_VALUE FROM information_schema.SESSION_STATUS WHERE VARIABLE_NAME = 'Ssl_cipher'))"
  check_eq "--user 1000:1000: the server runs as uid 1000 and owns its files" $'1000\n1000' \
    docker exec "$run_id-random" stat -c %u /proc/1 /var/lib/mysql/ibdata1
else
  fail "server with --skip-ssl: initialised, and the mysqladmin ping healthcheck answers"
fi

# ---- refusals and a failed init ------------------------------------------------------
check_eq "no root password option: the container exits with 1" "1" wait_exit nopw 30
check "no root password option: the log says what to set" \
  bash -c "docker logs '$run_id-nopw' 2>&1 | grep -q 'Set one of MYSQL_ROOT_PASSWORD'"
check_eq "MYSQL_ROOT_PASSWORD and MYSQL_ROOT_PASSWORD_FILE both set: exit 1" "1" wait_exit both 30
check_eq "MYSQL_USER=root is refused (exit 1), as upstream" "1" wait_exit rootuser 30
check "MYSQL_USER=root: the log says why" \
  bash -c "docker logs '$run_id-rootuser' 2>&1 | grep -q 'MYSQL_USER=\"root\": MYSQL_USER and MYSQL_PASSWORD make an ordinary account'"
code=$(wait_exit broken 90)
if [[ $code =~ ^[1-9][0-9]*$ ]]; then
  pass "a failing init file stops the container with an error (exit $code)"
else
  fail "a failing init file stops the container with an error" "exit code: $code"
fi
check_eq "... and leaves no half-made database behind (next start initialises again)" "" \
  docker run --rm --label "$label" -v "$broken_vol:/d" --entrypoint ls "$image" -A /d

# ---- tools on PATH under both names ---------------------------------------------------------
# shellcheck disable=SC2016  # expanded inside the container
check "mysql, mysqldump, mysqladmin, mysqld (and mariadb, mariadb-dump, mariadb-admin, mariadbd) on PATH" \
  docker exec "$run_id-client" bash -c \
  'for c in mysql mysqldump mysqladmin mysqlimport mysqlcheck mysqld mariadb mariadb-dump mariadb-admin mariadbd; do command -v $c >/dev/null || exit 1; done'
# Through the entrypoint: a question to the server binary needs no password and no init.
check "docker run IMAGE mysqld --version goes straight to the binary (MariaDB 11.8)" \
  bash -c "docker run --rm --label '$label' '$image' mysqld --version | grep -q '11\\.8\\..*MariaDB'"

kit_end
