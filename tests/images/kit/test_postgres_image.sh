#!/usr/bin/env bash
# run_id, label, work, image, t0, kit come from lib.sh (sourced below):
# shellcheck disable=SC2154
# Prove, against a running container, that the kit's postgres image keeps the upstream
# image's contract (see docs/testing.md, "Offline image kit").
#
# Usage: tests/images/kit/test_postgres_image.sh [IMAGE]
#   IMAGE defaults to what `build.sh postgres` builds (built first when missing).
# Exit status 0 when every check passed, 1 otherwise. Everything it creates (containers,
# volumes, a network, a temp folder) carries one run label and is removed at the end.
set -euo pipefail

. "$(dirname "$0")/lib.sh"
kit_begin postgres "${1:-}"

# A password with every character that quoting gets wrong: ' " $ ` \ spaces, a newline,
# non-ASCII. Names with a space and a hyphen check identifier quoting too.
PW=$'it\'s a "quoted" $HOME `id` \\ and \\\\ \n second line; DROP TABLE x; -- é'
PW_FILE_VALUE=$'file pass: \'single\' "double" $PATH \\n not-a-newline \\'
DB_USER=ibl_dev
DB_NAME='alyx local-db'


# new_server NAME VOLUME [docker create options...] -- [command...]: create, copy in
# $work/NAME.initdb (if present), start.
new_server() {
  local name=$1 vol=$2; shift 2
  local opts=() cmd=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do opts+=("$1"); shift; done
  [ $# -eq 0 ] || { shift; cmd=("$@"); }
  docker create --name "$run_id-$name" --label "$label" --network "$run_id" --network-alias "$name" \
    -v "$vol:/var/lib/postgresql/data" "${opts[@]}" "$image" "${cmd[@]}" >/dev/null
  if [ -d "$work/$name.initdb" ]; then
    docker cp "$work/$name.initdb/." "$run_id-$name:/docker-entrypoint-initdb.d/"
  fi
  docker start "$run_id-$name" >/dev/null
}

# wait_ready NAME USER [SECONDS]: what a compose healthcheck does (pg_isready on the
# container's default socket), bounded; fails early when the container stopped.
wait_ready() {
  local c=$run_id-$1 user=$2 limit=${3:-90} start=$SECONDS
  while [ $((SECONDS - start)) -lt "$limit" ]; do
    docker exec "$c" pg_isready -q -U "$user" >/dev/null 2>&1 && return 0
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

# client HOST PASSWORD SQL...: psql over TCP from a second container on the same network.
client() {
  local host=$1 pw=$2; shift 2
  local args=() q
  for q in "$@"; do args+=(-c "$q"); done
  PGPASSWORD=$pw docker run --rm --label "$label" --network "$run_id" -e PGPASSWORD "$image" \
    psql -X -At -v ON_ERROR_STOP=1 -h "$host" -U "$DB_USER" -d "$DB_NAME" "${args[@]}"
}
# in_server NAME SQL: psql inside the container over its unix socket (trust, like upstream).
in_server() { docker exec "$run_id-$1" psql -X -At -v ON_ERROR_STOP=1 -U "$DB_USER" -d "$DB_NAME" -c "$2"; }

# ---- init files for the main server: every kind, order-sensitive, each logs one run ----
mkdir -p "$work/main.initdb"
cat >"$work/main.initdb/10-schema.sql" <<'EOF'
CREATE TABLE init_runs (id serial PRIMARY KEY, source text NOT NULL, at timestamptz DEFAULT now());
CREATE TABLE samples (id int PRIMARY KEY, label text NOT NULL, payload jsonb);
INSERT INTO init_runs (source) VALUES ('10-schema.sql');
EOF
# Byte order puts '-' before '_': with en_US collation this file would run first and fail.
cat >"$work/main.initdb/10_data.sql" <<'EOF'
INSERT INTO samples SELECT g, 'sample ' || g, jsonb_build_object('n', g) FROM generate_series(1, 500) g;
INSERT INTO init_runs (source) VALUES ('10_data.sql');
EOF
printf '%s\n' "INSERT INTO samples VALUES (1000, 'from gz', '{\"q\": \"it''s\"}');" \
  "INSERT INTO init_runs (source) VALUES ('20-more.sql.gz');" | gzip -c >"$work/main.initdb/20-more.sql.gz"
# Sourced (not executable): plain psql must reach the temporary server, user and database.
cat >"$work/main.initdb/30-sourced.sh" <<'EOF'
psql -v ON_ERROR_STOP=1 -c "INSERT INTO init_runs (source) VALUES ('30-sourced.sh')"
EOF
# Executed; slow on purpose: the healthcheck must not report ready while it runs.
cat >"$work/main.initdb/40-exec.sh" <<'EOF'
#!/bin/bash
set -e
sleep 3
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -c "INSERT INTO init_runs (source) VALUES ('40-exec.sh')"
EOF
chmod 0644 "$work/main.initdb/30-sourced.sh"
chmod 0755 "$work/main.initdb/40-exec.sh"
echo "not run" >"$work/main.initdb/README.txt"

# ---- start the servers at once (two cores are enough; init is mostly I/O) -------------
main_vol=$(volume main)
new_server main "$main_vol" -e POSTGRES_PASSWORD="$PW" -e POSTGRES_USER="$DB_USER" -e POSTGRES_DB="$DB_NAME"

printf '%s\n\n' "$PW_FILE_VALUE" >"$work/pw.txt"       # trailing newlines are dropped
printf '%s\n' "$DB_USER" >"$work/user.txt"
printf '%s\n' "$DB_NAME" >"$work/db.txt"
files_vol=$(volume files)
docker create --name "$run_id-files" --label "$label" --network "$run_id" --network-alias files \
  -v "$files_vol:/var/lib/postgresql/data" \
  -e POSTGRES_PASSWORD_FILE=/run/secrets/pw -e POSTGRES_USER_FILE=/run/secrets/user \
  -e POSTGRES_DB_FILE=/run/secrets/db -e POSTGRES_INITDB_ARGS='--data-checksums --auth-local="trust"' \
  "$image" -c max_connections=42 >/dev/null
# Like compose secrets: files under /run/secrets, readable by root only.
mkdir -p "$work/secrets"
for f in pw user db; do mv "$work/$f.txt" "$work/secrets/$f"; done
chmod 0700 "$work/secrets"; chmod 0400 "$work/secrets"/*
docker cp "$work/secrets" "$run_id-files:/run/secrets"
docker start "$run_id-files" >/dev/null

trust_vol=$(volume trust)
new_server trust "$trust_vol" -e POSTGRES_HOST_AUTH_METHOD=trust -e POSTGRES_USER="$DB_USER" -e POSTGRES_DB="$DB_NAME"

# ---- main server: password over TCP, init files once ----------------------------------
if wait_ready main "$DB_USER"; then
  pass "main server: pg_isready (the healthcheck) answers within 90 s"
  check_eq "init files had all run when the healthcheck first said ready (socket hidden during init)" \
    "10-schema.sql,10_data.sql,20-more.sql.gz,30-sourced.sh,40-exec.sh" \
    in_server main "SELECT string_agg(source, ',' ORDER BY id) FROM init_runs"
else
  fail "main server: pg_isready (the healthcheck) answers within 90 s"
fi
check_eq "TCP from a second container with the special-character password" "$DB_USER|$DB_NAME" \
  client main "$PW" "SELECT current_user, current_database()"
if out=$(client main "${PW}x" "SELECT 1" 2>&1); then
  fail "TCP with a wrong password is refused" "it connected: $out"
elif grep -q 'password authentication failed' <<<"$out"; then
  pass "TCP with a wrong password is refused (password authentication failed)"
else
  fail "TCP with a wrong password is refused" "failed for another reason: $out"
fi
if out=$(client main "" "SELECT 1" 2>&1); then fail "TCP without a password is refused" "$out"; else pass "TCP without a password is refused"; fi
check_eq "password stored as SCRAM, host rule scram-sha-256, listening on *" "SCRAM-SHA-256|scram-sha-256|*" \
  in_server main "SELECT left(rolpassword, 13), (SELECT auth_method FROM pg_hba_file_rules WHERE type = 'host' AND address = 'all'), current_setting('listen_addresses') FROM pg_authid WHERE rolname = current_user"
check_eq "database is UTF8 with en_US.utf8 collation (upstream's default locale)" "UTF8|en_US.utf8" \
  in_server main "SELECT pg_encoding_to_char(encoding), datcollate FROM pg_database WHERE datname = current_database()"
check_eq "data from .sql and .sql.gz init files" "501|it's" \
  in_server main "SELECT count(*), max(payload->>'q') FROM samples"
# shellcheck disable=SC2016  # expanded inside the container
check "server runs as postgres (uid 999) and is PID 1 (gets docker stop's signal)" \
  docker exec "$run_id-main" bash -c '[ "$(stat -c %U /proc/1)" = postgres ] && [ "$(id -u postgres)" = 999 ] && grep -qx postgres /proc/1/comm'
# Read as postgres: root in a container lacks CAP_SYS_PTRACE and may not read another user's
# environ (an unreadable file must fail the check, not pass it).
# shellcheck disable=SC2016  # expanded inside the container
check "the server's environment holds no password" \
  docker exec -u postgres "$run_id-main" bash -c 'e=$(tr "\0" "\n" </proc/1/environ) && [ -n "$e" ] && ! grep -q "^POSTGRES_PASSWORD=" <<<"$e"'

# ---- pg_dump -Fc through docker exec, pg_restore into a fresh database ----------------
if docker exec "$run_id-main" pg_dump -U "$DB_USER" -Fc -d "$DB_NAME" >"$work/dump.pgc" 2>"$work/dump.err" \
   && [ "$(head -c 5 "$work/dump.pgc")" = PGDMP ]; then
  pass "pg_dump -Fc from docker exec writes a custom-format dump ($(stat -c %s "$work/dump.pgc") bytes)"
else
  fail "pg_dump -Fc from docker exec writes a custom-format dump" "$(cat "$work/dump.err")"
fi
in_server main 'CREATE DATABASE "restored copy"' >/dev/null 2>&1 || true
if docker exec -i "$run_id-main" pg_restore -U "$DB_USER" --exit-on-error --no-owner -d "restored copy" <"$work/dump.pgc" 2>"$work/restore.err"; then
  pass "pg_restore loads the dump into a fresh database"
else
  fail "pg_restore loads the dump into a fresh database" "$(tail -n 5 "$work/restore.err")"
fi
sum="SELECT count(*) || ':' || md5(string_agg(id || label || payload::text, ',' ORDER BY id)) FROM samples"
want=$(in_server main "$sum" 2>&1 || true)
check_eq "restored rows equal the original (count and checksum)" "$want" \
  docker exec "$run_id-main" psql -X -At -U "$DB_USER" -d "restored copy" -c "$sum"

# ---- clean stop within 10 s; a new container on the same volume skips init -------------
check_stop "$run_id-main" "fast shutdown, not killed"
check "server log says the shutdown was clean" bash -c "docker logs '$run_id-main' 2>&1 | tail -n 3 | grep -q 'database system is shut down'"
docker rm "$run_id-main" >/dev/null
# Same volume, same init files, another password in the environment (must be ignored:
# the cluster exists, as with upstream).
new_server main "$main_vol" -e POSTGRES_PASSWORD="changed" -e POSTGRES_USER="$DB_USER" -e POSTGRES_DB="$DB_NAME"
if wait_ready main "$DB_USER"; then
  pass "restarted on the same volume: ready"
  check_eq "init files did not run again" "5" in_server main "SELECT count(*) FROM init_runs"
  check "entrypoint log says it skipped initialisation" \
    bash -c "docker logs '$run_id-main' 2>&1 | grep -q 'holds a cluster'"
  check_eq "the original password still works after restart" "$DB_USER" client main "$PW" "SELECT current_user"
else
  fail "restarted on the same volume: ready"
fi

# ---- *_FILE variant, INITDB_ARGS, server options -----------------------------------
if wait_ready files "$DB_USER"; then
  pass "*_FILE server: ready"
  check_eq "POSTGRES_PASSWORD_FILE/USER_FILE/DB_FILE: TCP login with the file's password" "$DB_USER|$DB_NAME" \
    client files "$PW_FILE_VALUE" "SELECT current_user, current_database()"
  if client files "$PW_FILE_VALUE"$'\n' "SELECT 1" >/dev/null 2>&1; then
    fail "the file's trailing newline is not part of the password"
  else
    pass "the file's trailing newline is not part of the password"
  fi
  check_eq "POSTGRES_INITDB_ARGS (quoted words) and command-line server options applied" "on|42" \
    in_server files "SELECT current_setting('data_checksums') || '|' || current_setting('max_connections')"
else
  fail "*_FILE server: ready"
fi

# ---- trust ---------------------------------------------------------------------------
if wait_ready trust "$DB_USER"; then
  check_eq "POSTGRES_HOST_AUTH_METHOD=trust: TCP login without a password" "$DB_USER" \
    client trust "" "SELECT current_user"
else
  fail "trust server: ready"
fi

# ---- refusals and a failed init ------------------------------------------------------
nopw_vol=$(volume nopw)
new_server nopw "$nopw_vol"
check_eq "no POSTGRES_PASSWORD: the container exits with 1" "1" wait_exit nopw 30
check "no POSTGRES_PASSWORD: the log says what to set" \
  bash -c "docker logs '$run_id-nopw' 2>&1 | grep -q 'POSTGRES_PASSWORD is empty'"

both_vol=$(volume both)
new_server both "$both_vol" -e POSTGRES_PASSWORD=x -e POSTGRES_PASSWORD_FILE=/etc/hostname
check_eq "POSTGRES_PASSWORD and POSTGRES_PASSWORD_FILE both set: exit 1" "1" wait_exit both 30

mkdir -p "$work/broken.initdb"
printf 'CREATE TABLE ok_table (i int);\nSELECT * FROM no_such_table;\n' >"$work/broken.initdb/01-broken.sql"
broken_vol=$(volume broken)
new_server broken "$broken_vol" -e POSTGRES_PASSWORD=x
code=$(wait_exit broken 60)
if [[ $code =~ ^[1-9][0-9]*$ ]]; then
  pass "a failing init file stops the container with an error (exit $code)"
else
  fail "a failing init file stops the container with an error" "exit code: $code"
fi
check_eq "... and leaves no half-made cluster behind (next start initialises again)" "" \
  docker run --rm --label "$label" -v "$broken_vol:/d" --entrypoint ls "$image" -A /d

# ---- tools on PATH as compose files call them -----------------------------------------
# shellcheck disable=SC2016  # expanded inside the container
check "pg_isready, psql, pg_dump, pg_restore, initdb, postgres on PATH" \
  docker run --rm --label "$label" --entrypoint bash "$image" -c \
  'for c in pg_isready psql pg_dump pg_restore initdb postgres; do command -v $c >/dev/null || exit 1; done'
check "the server is PostgreSQL 17 (postgres --version goes straight to the binary)" \
  bash -c "docker run --rm --label '$label' '$image' postgres --version | grep -q ' 17\\.'"

kit_end
