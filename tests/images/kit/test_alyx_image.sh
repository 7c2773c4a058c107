#!/usr/bin/env bash
# run_id, label, work, image, t0, kit come from lib.sh (sourced below):
# shellcheck disable=SC2154
# Prove, against running containers and the kit's PostgreSQL, that the alyx image (PyPI
# alyx-local 3.1.8 on Python 3.13) keeps both contracts the roles rely on (see
# tests/images/kit/alyx/README.md):
#   IBL flavour (internationalbrainlab/alyx_apache, default command alyx-apache): Apache +
#     mod_wsgi on ALYX_PORT, env PG* + DJANGO_SECRET_KEY, no migration at start, first-run
#     init through alyx-manage / alyx-ensure-superuser, /auth-token, PGREADONLY;
#   alyx-local flavour (labops/alyx-local:3.1.8, command alyx-gunicorn): collectstatic +
#     migrate + gunicorn, upstream's defaults (host db, user postgres, database alyx),
#     POSTGRES_PASSWORD_FILE, SECRET_KEY, ALLOWED_HOSTS, /api/auth-token.
#
# Usage: tests/images/kit/test_alyx_image.sh [IMAGE]
#   IMAGE defaults to what `build.sh alyx` builds (built first when missing); the database
#   is the kit's postgres:17 (built when missing).
# Exit status 0 when every check passed, 1 otherwise. Everything it creates carries one
# run label and is removed at the end.
set -euo pipefail

. "$(dirname "$0")/lib.sh"
kit_begin alyx "${1:-}"
pg_image=$(bash "$kit/build.sh" postgres | awk '$1 == "postgres" { print $NF }')

# Passwords with quotes, $, a backtick, a backslash, spaces and non-ASCII characters.
DBPW=$'it\'s a "db" pass $HOME `id` \\ é labops-kit'
SUPW=$'super "user" $pw \\ ü labops-kit'
SECRET=$'django-secret-labops-kit $`"\'x'

# ---- the HTTP client (python requests from the image's venv, in a second container) --------
mkdir -p "$work/client"
cat >"$work/client/client.py" <<'EOF'
import os, sys
import requests

mode, base = sys.argv[1], sys.argv[2]
pw = os.environ.get("SUPW", "")

def report(ok, what, why=""):
    print(f"PASS {what}" if ok else f"FAIL {what}: {why}")

def token(path, user, password):
    r = requests.post(f"{base}{path}", data={"username": user, "password": password}, timeout=60)
    return r.status_code, (r.json().get("token") if r.headers.get("content-type", "").startswith("application/json") else None)

if mode == "status":          # status URL-PATH [HOST]: prints "<code> <Server header> <content-type>"
    headers = {"Host": sys.argv[4]} if len(sys.argv) > 4 else {}
    r = requests.get(f"{base}{sys.argv[3]}", headers=headers, allow_redirects=False, timeout=60)
    print(r.status_code, r.headers.get("Server", "-").split("/")[0], r.headers.get("Content-Type", "-").split(";")[0])
elif mode == "token":         # token PATH USER: prints the token
    code, tok = token(sys.argv[3], sys.argv[4], pw)
    print(tok if code == 200 and tok else f"HTTP {code}")
elif mode == "api":           # api TOKEN-PATH USER: the token opens the REST API, nothing else does
    code, tok = token(sys.argv[3], sys.argv[4], pw)
    report(code == 200 and bool(tok), f"POST {sys.argv[3]} as the superuser: 200 and a token", code)
    r = requests.get(f"{base}/api/subjects", headers={"Authorization": f"Token {tok}"}, timeout=60)
    report(r.status_code == 200 and "results" in r.json(), "GET /api/subjects with the token: 200, a (paginated) JSON list", f"{r.status_code} {r.text[:120]}")
    r = requests.get(f"{base}/api/subjects", timeout=60)
    report(r.status_code in (401, 403), "GET /api/subjects without a token: refused", r.status_code)
    code, _ = token(sys.argv[3], sys.argv[4], pw + "x")
    report(code == 400, f"POST {sys.argv[3]} with a wrong password: 400, no token", code)
    code, _ = token(sys.argv[3], "admin", "admin")
    report(code == 400, "alyx-local's migration-made admin/admin gets no token (locked)", code)
elif mode == "admin":         # admin USER: a browser login on the admin site
    s = requests.Session()
    r = s.get(f"{base}/admin/login/", timeout=60)
    csrf = s.cookies.get("csrftoken")
    r = s.post(f"{base}/admin/login/?next=/admin/", data={"username": sys.argv[3], "password": pw,
               "csrfmiddlewaretoken": csrf, "next": "/admin/"}, headers={"Referer": f"{base}/admin/login/"},
               allow_redirects=False, timeout=60)
    report(r.status_code == 302 and r.headers.get("Location") == "/admin/",
           "admin login form (CSRF cookie + password): 302 to /admin/", f"{r.status_code} {r.headers.get('Location')}")
    r = s.get(f"{base}/admin/", timeout=60)
    report(r.status_code == 200 and "logout" in r.text.lower(), "GET /admin/ after login: the admin index", r.status_code)
EOF

# client MODE BASE ARGS...: run client.py on the test network; prints its output.
client() {
  docker run --rm --label "$label" --network "$run_id" -e SUPW="$SUPW" -v "$work/client:/client:ro" \
    "$image" python /client/client.py "$@" 2>&1
}
# client_checks MODE BASE ARGS...: client lines "PASS x" / "FAIL x: why" become checks.
client_checks() {
  local out
  out=$(client "$@") || true
  relay_results "HTTP client ($1)" "$out"
}
# psql_in CONTAINER USER DB SQL: one value from the kit PostgreSQL (socket, trust).
psql_in() { docker exec "$run_id-$1" psql -U "$2" -d "$3" -XAtc "$4"; }

# ---- databases: IBL's names (ibl_dev/alyxdb) and alyx-local's (postgres/alyx, host "db") ---
printf '%s\n' "$DBPW" >"$work/db-password"
chmod 0644 "$work/db-password"
docker run -d --name "$run_id-ibldb" --label "$label" --network "$run_id" --network-alias alyx-postgres \
  -e POSTGRES_USER=ibl_dev -e POSTGRES_DB=alyxdb -e POSTGRES_PASSWORD="$DBPW" "$pg_image" >/dev/null
docker run -d --name "$run_id-localdb" --label "$label" --network "$run_id" --network-alias db \
  -e POSTGRES_DB=alyx -e POSTGRES_PASSWORD_FILE=/run/secrets/db-password \
  -v "$work/db-password:/run/secrets/db-password:ro" "$pg_image" >/dev/null
for db in ibldb localdb; do
  for _ in $(seq 60); do docker exec "$run_id-$db" pg_isready -q 2>/dev/null && break; sleep 1; done
done
ibl_env=(-e PGHOST=alyx-postgres -e PGUSER=ibl_dev -e PGDATABASE=alyxdb -e PGPASSWORD="$DBPW"
         -e DJANGO_SECRET_KEY="$SECRET" -e ALYX_INSTANCE=local -e ALYX_NETWORK=alyx-apache
         -e FLATIRON_SERVER=https://flatiron.invalid)
static_vol=$(volume static)
shared_vol=$(volume shared)

# ---- alyx-local flavour: started now, it migrates by itself while the IBL checks run -------
docker run -d --name "$run_id-gunicorn" --label "$label" --network "$run_id" --network-alias django \
  -e POSTGRES_PASSWORD_FILE=/run/secrets/db-password -e SECRET_KEY="$SECRET" \
  -e ALLOWED_HOSTS=alyx.lab.example,django -v "$work/db-password:/run/secrets/db-password:ro" \
  -v "$static_vol:/app/uploaded/static" "$image" alyx-gunicorn >/dev/null

# ---- IBL flavour (default command) on ALYX_PORT 8123 ---------------------------------------
docker run -d --name "$run_id-apache" --label "$label" --network "$run_id" --network-alias alyx-apache \
  "${ibl_env[@]}" -e ALYX_PORT=8123 -v "$shared_vol:/var/www/alyx-local/shared/local" "$image" >/dev/null
if wait_healthy apache 240; then
  pass "IBL flavour: the image's HEALTHCHECK (alyx-check-server: DB login + admin page) turns healthy"
else
  fail "IBL flavour: the image's HEALTHCHECK turns healthy"
fi
check_eq "IBL flavour: Apache answers on ALYX_PORT=8123 (GET /admin/login/)" "200 Apache text/html" \
  client status http://alyx-apache:8123 /admin/login/
check_eq "... and did not migrate at start (no django_migrations table yet)" "" \
  psql_in ibldb ibl_dev alyxdb "SELECT to_regclass('django_migrations')"
# shellcheck disable=SC2016  # expanded inside the container
check_eq "the server runs as alyx, Apache is PID 1, two mod_wsgi daemon processes (alyx-wsgi)" "alyx apache2 2" \
  docker exec "$run_id-apache" bash -c 'echo "$(id -un) $(cat /proc/1/comm) $(grep -las "^alyx-wsgi" /proc/[0-9]*/cmdline | wc -l)"'
check "alyx-manage migrate (the first-run step the role runs through docker compose exec)" \
  docker exec "$run_id-apache" alyx-manage migrate --noinput
check_eq "... every migration applied (showmigrations lists no [ ])" "0" \
  bash -c "docker exec '$run_id-apache' alyx-manage showmigrations | grep -c '\[ \]' || true"
check_eq "... with IBL's names: natsort collation owned by ibl_dev, readaccess may connect to alyxdb" "ibl_dev|true" \
  psql_in ibldb ibl_dev alyxdb "SELECT pg_get_userbyid(collowner) || '|' || has_database_privilege('readaccess', 'alyxdb', 'CONNECT') FROM pg_collation WHERE collname = 'natsort_collation'"
check_eq "alyx-ensure-superuser --check (Ansible's check mode) says it would create, and writes nothing" \
  '{"changed": true, "created": true, "default_admin_locked": true, "password_updated": false, "token_created": true} 0' \
  bash -c "echo \$(printf '%s' \"\$1\" | docker exec -i '$run_id-apache' alyx-ensure-superuser ibl_dev --token --check) \
    \$(docker exec '$run_id-ibldb' psql -U ibl_dev -d alyxdb -XAtc \"SELECT count(*) FROM misc_labmember WHERE username = 'ibl_dev'\")" _ "$SUPW"
check_eq "alyx-ensure-superuser creates the superuser and its token (password on stdin)" \
  '{"changed": true, "created": true, "default_admin_locked": true, "password_updated": false, "token_created": true}' \
  bash -c "printf '%s' \"\$1\" | docker exec -i '$run_id-apache' alyx-ensure-superuser ibl_dev --token" _ "$SUPW"
check_eq "... and a second run changes nothing" \
  '{"changed": false, "created": false, "default_admin_locked": false, "password_updated": false, "token_created": false}' \
  bash -c "printf '%s' \"\$1\" | docker exec -i '$run_id-apache' alyx-ensure-superuser ibl_dev --token" _ "$SUPW"
client_checks api http://alyx-apache:8123 /auth-token ibl_dev
tok_root=$(client token http://alyx-apache:8123 /auth-token ibl_dev)
check_eq "IBL's /auth-token and alyx-local's /api/auth-token give the same token" "$tok_root" \
  client token http://alyx-apache:8123 /api/auth-token ibl_dev
check_eq "... which is the one drf_create_token reports through alyx-manage" "Token $tok_root" \
  bash -c "docker exec '$run_id-apache' alyx-manage drf_create_token ibl_dev 2>&1 | grep -o 'token [0-9a-f]*' | sed 's/^token/Token/'"
client_checks admin http://alyx-apache:8123 ibl_dev
check_eq "Apache serves static files itself (GET /static/admin/css/base.css)" "200 Apache text/css" \
  client status http://alyx-apache:8123 /static/admin/css/base.css
check "the shared folder (/var/www/alyx-local/shared/local, a volume) is writable by docker compose exec" \
  docker exec "$run_id-apache" touch /var/www/alyx-local/shared/local/db_loaded.out
check "psql and pg_dump in the image reach the database with the PG* variables alone" \
  bash -c "docker exec '$run_id-apache' pg_dump -cOx | grep -q 'CREATE TABLE public.misc_labmember'"
check_eq "a Host outside ALLOWED_HOSTS is refused (400)" "400 Apache text/html" \
  client status http://alyx-apache:8123 /admin/login/ evil.example
check_eq "... localhost is always allowed (the healthcheck's Host)" "200 Apache text/html" \
  client status http://alyx-apache:8123 /admin/login/ localhost

# PGREADONLY=on: sessions are read-only (iblalyx: default_transaction_read_only).
readonly_write() {
  local out
  out=$(docker run --rm --label "$label" --network "$run_id" "${ibl_env[@]}" -e PGREADONLY=on "$image" \
    alyx-manage drf_create_token --reset ibl_dev 2>&1) && return 1
  grep -q 'cannot execute DELETE in a read-only transaction' <<<"$out"
}
check "PGREADONLY=on: a write through alyx-manage fails with 'read-only transaction'" readonly_write
check_eq "... and the token did not change" "$tok_root" client token http://alyx-apache:8123 /auth-token ibl_dev

# Refusals: no secret key, no database password.
docker run -d --name "$run_id-nokey" --label "$label" --network "$run_id" -e PGHOST=alyx-postgres \
  -e PGUSER=ibl_dev -e PGDATABASE=alyxdb -e PGPASSWORD="$DBPW" "$image" >/dev/null
docker run -d --name "$run_id-nopw" --label "$label" --network "$run_id" -e DJANGO_SECRET_KEY=x "$image" alyx-gunicorn >/dev/null
check_eq "without DJANGO_SECRET_KEY the server refuses to start (exit 1)" "1" wait_exit nokey 60
check "... saying which variable is missing" \
  bash -c "docker logs '$run_id-nokey' 2>&1 | grep -q 'no Django secret key'"
check_eq "without any database password alyx-gunicorn refuses to start (exit 1)" "1" wait_exit nopw 60
check "... saying which variables to set" \
  bash -c "docker logs '$run_id-nopw' 2>&1 | grep -q 'no database password'"

# ---- alyx-local flavour --------------------------------------------------------------------
if wait_healthy gunicorn 300; then
  pass "alyx-local flavour: alyx-gunicorn (collectstatic + migrate + gunicorn) turns healthy"
else
  fail "alyx-local flavour: alyx-gunicorn turns healthy"
fi
check "... it ran collectstatic and migrate before gunicorn" \
  bash -c "docker logs '$run_id-gunicorn' 2>&1 | tr '\n' ' ' | grep -q 'collecting static.*applying migrations.*Apply all migrations.*Starting gunicorn'"
check_eq "... with upstream's names: host db, user postgres, database alyx, password from POSTGRES_PASSWORD_FILE" "t" \
  psql_in localdb postgres alyx "SELECT count(*) > 50 FROM django_migrations"
check_eq "... 3 gunicorn workers (4 processes) on 0.0.0.0:8000" "4" \
  docker exec "$run_id-gunicorn" bash -c 'grep -las "alyx[.]base[.]wsgi:application" /proc/[0-9]*/cmdline | wc -l'
check_eq "gunicorn answers for an ALLOWED_HOSTS name (GET /admin/login/, Host alyx.lab.example)" "200 gunicorn text/html" \
  client status http://django:8000 /admin/login/ alyx.lab.example
check_eq "... and refuses another Host (400)" "400 gunicorn text/html" \
  client status http://django:8000 /admin/login/ evil.example
check "collectstatic filled the static volume nginx will share (admin/css/base.css)" \
  docker run --rm --label "$label" -v "$static_vol:/s:ro" "$image" test -s /s/admin/css/base.css
check "alyx-ensure-superuser on the alyx-local flavour (admin: upstream's default password replaced)" \
  bash -c "printf '%s' \"\$1\" | docker exec -i '$run_id-gunicorn' alyx-ensure-superuser admin --token | grep -q '\"password_updated\": true'" _ "$SUPW"
client_checks api http://django:8000 /api/auth-token admin
tok_local=$(client token http://django:8000 /api/auth-token admin)
docker restart "$run_id-gunicorn" >/dev/null
if wait_healthy gunicorn 240; then
  check_eq "after a restart: no migration left to apply, the same token (data kept, nothing restored)" "$tok_local" \
    client token http://django:8000 /api/auth-token admin
  check "... and the second start applied nothing" \
    bash -c "docker logs '$run_id-gunicorn' 2>&1 | grep -q 'No migrations to apply'"
else
  fail "alyx-local flavour: healthy again after docker restart"
fi

# ---- docker stop within 10 s, both servers -------------------------------------------------
for name in apache gunicorn; do
  check_stop "$run_id-$name" "not killed" any "$name"
done

kit_end
