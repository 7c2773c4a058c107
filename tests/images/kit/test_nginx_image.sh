#!/usr/bin/env bash
# run_id, label, work, image, t0, kit come from lib.sh (sourced below):
# shellcheck disable=SC2154
# Prove, against running containers, that the kit's nginx image keeps the upstream nginx
# image's contract (see docs/testing.md, "Offline image kit").
#
# Usage: tests/images/kit/test_nginx_image.sh [IMAGE]
#   IMAGE defaults to what `build.sh nginx` builds (built first when missing). The
#   backend is the probe image (tests/images/build-probe.sh, built when missing); the TLS
#   certificate is made here with the host's openssl.
# Exit status 0 when every check passed, 1 otherwise. Everything it creates (containers,
# a network, a temp folder) carries one run label and is removed at the end.
# Templates and nginx variables are written in single quotes on purpose: no expansion.
# shellcheck disable=SC2016
set -euo pipefail

command -v openssl >/dev/null || { echo "this test needs openssl on the host (apt-get install openssl)" >&2; exit 1; }
. "$(dirname "$0")/lib.sh"
kit_begin nginx "${1:-}"
probe=$(bash "$kit/../build-probe.sh")
say "backend: $probe"
c=$run_id-web

# ---- what the web server gets: templates, a mounted conf.d file, a certificate ----------
mkdir -p "$work/templates/sub" "$work/certs"
# ${VAR} of set variables are replaced; nginx's own $host and an unset ${NAME} are not.
cat >"$work/templates/site.conf.template" <<'EOF'
# rendered from site.conf.template; unset stays as written: ${KIT_NOT_SET_ANYWHERE}
server {
    listen ${SITE_PORT};
    server_name ${SITE_NAME};
    location = /greeting {
        default_type text/plain;
        return 200 "${GREETING}|$host\n";
    }
}
EOF
echo '# ${GREETING} in a subfolder' >"$work/templates/sub/extra.conf.template"
# A stream (TCP) proxy: the stream module must be there and a stream block added.
cat >"$work/templates/tcp.conf.stream-template" <<'EOF'
server {
    listen 9000;
    proxy_pass ${BACKEND_HOST}:${BACKEND_PORT};
}
EOF
write_proxy_conf() {
  cat >"$work/proxy.conf" <<EOF
server {
    listen 8082;
    location /app/ {
        proxy_pass http://backend:8080/;
        add_header X-Kit-Config "$1" always;
    }
}
EOF
}
write_proxy_conf v1
cat >"$work/tls.conf" <<'EOF'
server {
    listen 443 ssl;
    server_name web;
    ssl_certificate /etc/nginx/certs/web.crt;
    ssl_certificate_key /etc/nginx/certs/web.key;
    location / {
        default_type text/plain;
        return 200 "tls ok $ssl_protocol\n";
    }
}
EOF
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=web -addext subjectAltName=DNS:web \
  -keyout "$work/certs/web.key" -out "$work/certs/web.crt" >/dev/null 2>&1
chmod 0755 "$work" "$work/templates" "$work/templates/sub" "$work/certs"
chmod 0644 "$work/templates"/*.*template "$work/templates/sub"/* "$work/proxy.conf" "$work/tls.conf" "$work/certs"/*

# ---- start: backend (probe image's busybox httpd), web server, a client ----------------
docker run -d --name "$run_id-backend" --label "$label" --network "$run_id" --network-alias backend \
  "$probe" httpd -f -p 8080 -h /www >/dev/null
docker run -d --name "$c" --label "$label" --network "$run_id" --network-alias web \
  -e SITE_PORT=8081 -e SITE_NAME=web -e GREETING='hello-from-kit_42' \
  -e BACKEND_HOST=backend -e BACKEND_PORT=8080 \
  -v "$work/templates:/etc/nginx/templates:ro" \
  -v "$work/proxy.conf:/etc/nginx/conf.d/proxy.conf:ro" \
  -v "$work/tls.conf:/etc/nginx/conf.d/tls.conf:ro" \
  -v "$work/certs:/etc/nginx/certs:ro" "$image" >/dev/null
docker run -d --name "$run_id-client" --label "$label" --network "$run_id" --entrypoint sleep "$image" 600 >/dev/null

# get URL [curl options...]: the body, from the client container.
get() { local url=$1; shift; docker exec "$run_id-client" curl -sS --max-time 5 "$@" "$url"; }

# Bounded wait until the server answers (the usual healthcheck: curl -f http://localhost/).
start=$SECONDS
until docker exec "$c" curl -fsS -o /dev/null --max-time 2 http://localhost/ 2>/dev/null; do
  if [ "$(docker inspect -f '{{.State.Running}}' "$c")" != true ] || [ $((SECONDS - start)) -ge 30 ]; then
    docker logs --tail 20 "$c" >&2
    break
  fi
  sleep 0.3
done

# ---- default site, logs --------------------------------------------------------------
check "default site on port 80 serves /usr/share/nginx/html (Welcome to nginx!)" \
  bash -c "docker exec '$run_id-client' curl -fsS --max-time 5 http://web/ | grep -q '<title>Welcome to nginx!</title>'"
check_eq "a missing page is a 404" "404" get http://web/no-such-page -o /dev/null -w '%{http_code}'
check "access log goes to the container's stdout (/var/log/nginx/access.log -> /dev/stdout)" \
  bash -c "docker logs '$c' 2>/dev/null | grep -q '\"GET / HTTP/1.1\" 200'"
check "error log goes to the container's stderr (the 404's open() failure)" \
  bash -c "docker logs '$c' 2>&1 >/dev/null | grep -q 'no-such-page\" failed (2: No such file or directory)'"
check "entrypoint ran /docker-entrypoint.d and logged upstream's ready line" \
  bash -c "docker logs '$c' 2>/dev/null | grep -q 'Configuration complete; ready for start up'"
check "nginx master is PID 1 (exec, gets docker stop's signal), workers run as nginx (uid 101)" \
  docker exec "$c" bash -c 'tr "\0" " " </proc/1/cmdline | grep -q "^nginx: master process nginx -g daemon off;" &&
    for p in /proc/[0-9]*; do if [ "$(head -c 21 "$p/cmdline" 2>/dev/null)" = "nginx: worker process" ]; then [ "$(stat -c %u "$p")" = 101 ] || exit 1; found=1; fi; done; [ -n "${found:-}" ]'

# ---- templates -------------------------------------------------------------------------
check_eq "template rendered with the environment (\${GREETING}, \${SITE_PORT}); nginx's \$host untouched" \
  "hello-from-kit_42|web" get http://web:8081/greeting
check "unset \${NAME} in a template stays as written (only defined variables are replaced)" \
  docker exec "$c" grep -qF 'unset stays as written: ${KIT_NOT_SET_ANYWHERE}' /etc/nginx/conf.d/site.conf
check_eq "a template in a subfolder lands in the same subfolder of conf.d" "# hello-from-kit_42 in a subfolder" \
  docker exec "$c" cat /etc/nginx/conf.d/sub/extra.conf
check_eq ".stream-template: stream block added, TCP proxy to the backend works (stream module loaded)" \
  "labops probe" get http://web:9000/
# NGINX_ENVSUBST_FILTER, run on its own (the script, not the whole server).
check_eq "NGINX_ENVSUBST_FILTER limits the replaced names (regex on the name)" "yes \${OTHER_VALUE}" \
  docker run --rm --label "$label" -e NGINX_ENVSUBST_FILTER='^KIT_' -e KIT_VALUE=yes -e OTHER_VALUE=no \
  -e NGINX_ENTRYPOINT_QUIET_LOGS=1 "$image" bash -c \
  'mkdir -p /etc/nginx/templates && echo "\${KIT_VALUE} \${OTHER_VALUE}" >/etc/nginx/templates/f.conf.template &&
   /docker-entrypoint.d/20-envsubst-on-templates.sh && cat /etc/nginx/conf.d/f.conf'

# ---- a config mounted into conf.d proxies to a second container; TLS on 443 --------------
check_eq "mounted conf.d/proxy.conf proxies to the backend container" "labops probe" get http://web:8082/app/
check_eq "TLS on 443 with the test's self-signed certificate (verified against it, name web)" "tls ok TLSv1.3" \
  docker exec -i "$run_id-client" sh -c 'cat >/tmp/ca.crt && curl -sS --max-time 5 --cacert /tmp/ca.crt https://web/' <"$work/certs/web.crt"

# ---- nginx -t and nginx -s reload through docker exec ------------------------------------
check "nginx -t via docker exec: syntax ok" bash -c "docker exec '$c' nginx -t 2>&1 | grep -q 'syntax is ok'"
# x-kit-config: v1 -> v2 after a reload (the file is bind-mounted: edited in place).
header() { get http://web:8082/app/ -o /dev/null -D - | tr -d '\r' | awk -F': ' 'tolower($1) == "x-kit-config" { print $2 }'; }
# wait_header WANT: bounded poll, a reload takes effect when new workers answer.
wait_header() {
  local want=$1 start=$SECONDS got=
  while [ $((SECONDS - start)) -lt 10 ]; do
    got=$(header 2>/dev/null || true)
    [ "$got" != "$want" ] || { echo "$got"; return 0; }
    sleep 0.3
  done
  echo "$got"
}
check_eq "before the change, the proxy answers with header v1" "v1" header
write_proxy_conf v2
check "nginx -s reload via docker exec" docker exec "$c" nginx -s reload
check_eq "after nginx -s reload the changed conf.d file is in force (v2)" "v2" wait_header v2
printf 'server { listen 8082; this_is_not_a_directive; }\n' >"$work/proxy.conf"
if out=$(docker exec "$c" nginx -t 2>&1); then
  fail "nginx -t refuses a broken config (non-zero exit)" "$out"
else
  pass "nginx -t refuses a broken config (non-zero exit)"
fi
docker exec "$c" nginx -s reload >/dev/null 2>&1 || true
sleep 1
check_eq "a reload with a broken config keeps the running config (still v2)" "v2" header
write_proxy_conf v2

# ---- tools and layout --------------------------------------------------------------------
check "nginx has the ssl, http_v2, realip modules; curl and envsubst on PATH; nginx-debug runs" \
  docker exec "$c" bash -c 'nginx -V 2>&1 | grep -q -- --with-http_ssl_module && nginx -V 2>&1 | grep -q -- --with-http_v2_module &&
    nginx -V 2>&1 | grep -q -- --with-http_realip_module && command -v curl >/dev/null && command -v envsubst >/dev/null &&
    nginx-debug -v 2>/dev/null'
check "IPv6: listen [::]:80 added to the unchanged default.conf when the kernel has IPv6" \
  docker exec "$c" bash -c '[ ! -f /proc/net/if_inet6 ] || grep -q "listen *\[::\]:80;" /etc/nginx/conf.d/default.conf'

# ---- docker stop: SIGQUIT, graceful, exit 0 within 10 s ------------------------------------
check_eq "image STOPSIGNAL is SIGQUIT" "SIGQUIT" docker image inspect -f '{{.Config.StopSignal}}' "$image"
check_stop "$c" "graceful shutdown, not killed"
check "error log shows the graceful shutdown (SIGQUIT received, exit)" \
  bash -c "docker logs '$c' 2>&1 | grep -q 'signal 3 (SIGQUIT) received' && docker logs '$c' 2>&1 | tail -n 3 | grep -q '\\[notice\\] 1#1: exit'"

kit_end
