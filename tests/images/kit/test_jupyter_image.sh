#!/usr/bin/env bash
# run_id, label, work, image, t0, kit come from lib.sh (sourced below):
# shellcheck disable=SC2154
# Prove, against a running container, that the kit's jupyter image (JupyterLab from PyPI,
# stand-in for quay.io/jupyter/base-notebook) keeps the contract the roles rely on (see
# tests/images/kit/jupyter/README.md and docs/testing.md).
#
# Usage: tests/images/kit/test_jupyter_image.sh [IMAGE]
#   IMAGE defaults to what `build.sh jupyter` builds (built first when missing).
# The HTTP client (python requests, from the image's venv) runs in a second container
# on a private network.
# Exit status 0 when every check passed, 1 otherwise. Everything it creates (containers,
# a volume, a network, a temp folder) carries one run label and is removed at the end.
set -euo pipefail

. "$(dirname "$0")/lib.sh"
kit_begin jupyter "${1:-}"

# A password with quotes, $, a backtick, a backslash, spaces and non-ASCII characters.
JPW=$'it\'s a "paper" $HOME `id` \\ Gu2026 é€'
HASHED_PW='other pass: ü'

# ---- the client: one line per sub-check, "PASS what" or "FAIL what: why" ----------------
mkdir -p "$work/client"
cat >"$work/client/client.py" <<'EOF'
import json, os, sys
import requests

mode, host = sys.argv[1], sys.argv[2]
base = f"http://{host}:8888"
password = os.environ["JPW"]

def report(ok, what, why=""):
    print(f"PASS {what}" if ok else f"FAIL {what}: {why}")

def login(pw):
    """What a browser does: the login page sets the _xsrf cookie, the form posts it back."""
    s = requests.Session()
    r = s.get(f"{base}/login", timeout=10)
    xsrf = s.cookies.get("_xsrf")
    r = s.post(f"{base}/login", data={"password": pw, "_xsrf": xsrf}, allow_redirects=False, timeout=10)
    return s, r, xsrf

if mode == "api":
    r = requests.get(f"{base}/api", timeout=10)
    report(r.status_code == 200 and "version" in r.json(), "GET /api answers 200 with the server version",
           f"{r.status_code} {r.text[:100]}")
    r = requests.get(f"{base}/api/contents", timeout=10)
    report(r.status_code == 403, "GET /api/contents without login: 403", r.status_code)
    r = requests.get(f"{base}/api/contents", params={"token": "x"}, timeout=10)
    report(r.status_code == 403, "... and with a made-up token: 403 (no token auth)", r.status_code)
elif mode == "session":
    s, r, xsrf = login(password)
    report(bool(xsrf), "GET /login sets the _xsrf cookie", r.status_code)
    report(r.status_code == 302, "POST /login with the password: 302 redirect", f"{r.status_code} {r.text[:120]}")
    r = s.get(f"{base}/api/contents", timeout=10)
    report(r.status_code == 200 and r.json().get("type") == "directory",
           "GET /api/contents after login: 200 (the home directory)", f"{r.status_code} {r.text[:120]}")
    r = s.get(f"{base}/lab", timeout=10)
    report(r.status_code == 200 and "JupyterLab" in r.text, "GET /lab after login: the JupyterLab page", r.status_code)
    nb = {"type": "notebook", "format": "json", "content": {
        "cells": [{"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
                   "source": "print('labops kit')"}],
        "metadata": {}, "nbformat": 4, "nbformat_minor": 5}}
    r = s.put(f"{base}/api/contents/work/labops-test.ipynb", data=json.dumps(nb),
              headers={"X-XSRFToken": xsrf}, timeout=10)
    report(r.status_code == 201, "PUT /api/contents/work/labops-test.ipynb: 201 created", f"{r.status_code} {r.text[:120]}")
    r = s.post(f"{base}/api/kernels", json={"name": "python3"}, headers={"X-XSRFToken": xsrf}, timeout=30)
    ok = r.status_code == 201
    report(ok, "POST /api/kernels starts a python3 kernel (ipykernel)", f"{r.status_code} {r.text[:120]}")
    if ok:
        kid = r.json()["id"]
        r = s.delete(f"{base}/api/kernels/{kid}", headers={"X-XSRFToken": xsrf}, timeout=30)
        report(r.status_code == 204, "DELETE /api/kernels/<id> stops it", r.status_code)
elif mode == "kernel":
    s, r, xsrf = login(password)
    r = s.post(f"{base}/api/kernels", json={"name": "python3"}, headers={"X-XSRFToken": xsrf}, timeout=30)
    report(r.status_code == 201, "a kernel started (left running for the environment check)", r.status_code)
elif mode == "wrong":
    s, r, _ = login(password + "x")
    report(r.status_code != 302, "POST /login with a wrong password: no redirect (login page again)", r.status_code)
    r = s.get(f"{base}/api/contents", timeout=10)
    report(r.status_code == 403, "GET /api/contents after a wrong password: 403", r.status_code)
EOF

vol=$(docker volume create --label "$label" "$run_id-work")

# run_client MODE HOST PASSWORD: client.py in a second container; its lines become checks.
run_client() {
  local out
  out=$(JPW=$3 docker run --rm --label "$label" --network "$run_id" -e JPW -v "$work/client:/client:ro" \
    --entrypoint /opt/venv/bin/python "$image" /client/client.py "$1" "$2" 2>&1) || true
  relay_results "HTTP client ($1)" "$out"
}

# ---- start both servers at once: plain password, and a hash ------------------------------
hash=$(docker run --rm --label "$label" -e HASHED_PW="$HASHED_PW" --entrypoint /opt/venv/bin/python "$image" \
  -c 'import os; from jupyter_server.auth import passwd; print(passwd(os.environ["HASHED_PW"]))')
docker run -d --name "$run_id-main" --label "$label" --network "$run_id" --network-alias jupyter \
  -e JUPYTER_SERVER_APP_PASSWORD="$JPW" -v "$vol:/home/jovyan/work" "$image" >/dev/null
docker run -d --name "$run_id-hashed" --label "$label" --network "$run_id" --network-alias hashed \
  -e JUPYTER_SERVER_APP_HASHED_PASSWORD="$hash" "$image" >/dev/null
docker run -d --name "$run_id-nopw" --label "$label" "$image" >/dev/null

if wait_healthy main; then
  pass "the image's HEALTHCHECK (GET /api) turns healthy ($((SECONDS - t0)) s after start)"
else
  fail "the image's HEALTHCHECK (GET /api) turns healthy"
fi
run_client api jupyter "$JPW"
run_client session jupyter "$JPW"
run_client wrong jupyter "$JPW"
check_eq "the notebook landed in the mounted volume, owned by jovyan (1000:100)" "1000:100" \
  docker run --rm --label "$label" -v "$vol:/v" --entrypoint stat "$image" -c %u:%g /v/labops-test.ipynb
check "... and is the notebook that was sent" \
  bash -c "docker run --rm --label '$label' -v '$vol:/v' --entrypoint cat '$image' /v/labops-test.ipynb | grep -q 'labops kit'"
# shellcheck disable=SC2016  # expanded inside the container
# pid_of PATTERN: the process whose command line matches (PATTERN written as "x[y]" so
# grep does not find its own command line). Expanded inside the container.
pid_of() { echo "grep -l '$1' /proc/[0-9]*/cmdline 2>/dev/null | head -n 1 | cut -d/ -f3"; }
# shellcheck disable=SC2016  # expanded inside the container
check "the server runs as jovyan (uid 1000, HOME /home/jovyan) under tini (PID 1)" \
  docker exec "$run_id-main" bash -c 'grep -qx tini /proc/1/comm && pid=$('"$(pid_of 'jupyter-la[b]')"') && [ -n "$pid" ] &&
    [ "$(stat -c %u "/proc/$pid")" = 1000 ] && tr "\0" "\n" <"/proc/$pid/environ" | grep -qx HOME=/home/jovyan'
run_client kernel jupyter "$JPW"
# shellcheck disable=SC2016  # expanded inside the container
check "a kernel's environment holds neither the password nor its hash" \
  docker exec "$run_id-main" bash -c 'pid=$('"$(pid_of 'ipykernel_launche[r]')"') && [ -n "$pid" ] &&
    tr "\0" "\n" <"/proc/$pid/environ" | grep -q ^HOME= &&
    ! tr "\0" "\n" <"/proc/$pid/environ" | grep -qE "PASSWORD|LABOPS_KIT"'
# shellcheck disable=SC2016  # expanded inside the container
check_eq "started with --user root, commands run as jovyan (1000:100, HOME /home/jovyan)" "1000:100 /home/jovyan" \
  docker run --rm --label "$label" --user root "$image" bash -c 'echo "$(id -u):$(id -g) $HOME"'
check "no conda, mamba or micromamba in the image" \
  docker exec "$run_id-main" bash -c '! command -v conda && ! command -v mamba && ! command -v micromamba'
check "the start-up URLs carry no token (password login only)" \
  bash -c "docker logs '$run_id-main' 2>&1 | grep -q 'http://127.0.0.1:8888/lab\$' &&
           ! docker logs '$run_id-main' 2>&1 | grep -q ':8888/lab?token='"

if wait_healthy hashed; then
  run_client session hashed "$HASHED_PW"
else
  fail "server with JUPYTER_SERVER_APP_HASHED_PASSWORD: healthy"
fi

check_eq "neither password variable: refuses to start (exit 1)" "1" wait_exit nopw 60
check "... and the log says which variables to set" \
  bash -c "docker logs '$run_id-nopw' 2>&1 | grep -q 'no password: set JUPYTER_SERVER_APP_PASSWORD'"

# ---- docker stop within 10 s ---------------------------------------------------------------
[ "$(docker inspect -f '{{.State.Running}}' "$run_id-main")" = true ] || fail "the server is still running before docker stop"
check_stop "$run_id-main" "SIGTERM through tini, not killed" any

kit_end
