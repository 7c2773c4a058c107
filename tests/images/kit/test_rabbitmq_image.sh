#!/usr/bin/env bash
# run_id, label, work, image, t0, kit come from lib.sh (sourced below):
# shellcheck disable=SC2154
# Prove, against a running container, that the kit's rabbitmq image keeps the upstream
# rabbitmq:4-management contract (see docs/testing.md, "Offline image kit").
#
# Usage: tests/images/kit/test_rabbitmq_image.sh [IMAGE]
#   IMAGE defaults to what `build.sh rabbitmq` builds (built first when missing).
# Needs `pip` on this machine (python3 -m pip, or $PYTHON -m pip) to fetch the pure-Python
# AMQP client pika into a temp folder; the client runs inside a container of IMAGE (which
# has python3), on a private network.
# Exit status 0 when every check passed, 1 otherwise. Everything it creates (containers,
# a volume, a network, a temp folder) carries one run label and is removed at the end.
set -euo pipefail

. "$(dirname "$0")/lib.sh"
kit_begin rabbitmq "${1:-}"

# Credentials with every character that quoting gets wrong (' " $ ` \ space : @ /) and
# non-ASCII ones (é is Latin-1, € is not): RabbitMQ itself mishandles both unless the
# entrypoint re-encodes them.
RMQ_USER='lab admin é'
RMQ_PASS=$'it\'s "q" $HOME `id` \\ a:b@c/d é€'
RMQ_VHOST=alyx-local
HOSTNAME_MAIN=rabbit-main

# ---- the AMQP client: pika (pure Python, no dependencies) from PyPI ----------------------
mkdir -p "$work/client"
if ! "${PYTHON:-python3}" -m pip download --quiet --no-deps --only-binary=:all: \
     --dest "$work/client" 'pika>=1.3,<2' >"$work/pip.log" 2>&1; then
  say "cannot fetch the AMQP client pika with pip: $(tail -n 3 "$work/pip.log")"
  exit 1
fi
pika_wheel=$(cd "$work/client" && ls pika-*.whl)
# client.py MODE HOST USER PASSWORD VHOST [ARGS...]: one AMQP 0-9-1 or HTTP exchange; prints
# one line (the message body, the HTTP status, ...). The password comes from the environment.
cat >"$work/client/client.py" <<'EOF'
import base64, json, os, sys, urllib.error, urllib.parse, urllib.request
mode, host, user, vhost, *args = sys.argv[1:]
password = os.environ["RMQ_PASS"]

def http(path):
    """GET path from the management listener: (status, body parsed as JSON or None)."""
    req = urllib.request.Request(f"http://{host}:15672{path}")
    if user:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            raw = r.read()
            status = r.status
    except urllib.error.HTTPError as e:
        return e.code, None
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, None

if mode == "http-status":
    print(http(args[0])[0])
elif mode == "overview":
    status, body = http("/api/overview")
    ports = sorted(l["port"] for l in body["listeners"])
    print(status, body["rabbitmq_version"].split(".")[0], body["node"], ports)
elif mode == "queue-messages":
    status, body = http(f"/api/queues/{urllib.parse.quote(vhost, safe='')}/{urllib.parse.quote(args[0], safe='')}")
    print(status, body and body.get("durable"), body and body.get("messages"))
else:
    import pika
    params = pika.ConnectionParameters(host=host, port=5672, virtual_host=vhost,
                                       credentials=pika.PlainCredentials(user, password),
                                       connection_attempts=1, socket_timeout=10)
    try:
        conn = pika.BlockingConnection(params)
    except pika.exceptions.ProbableAuthenticationError:
        print("refused"); sys.exit(0)
    ch = conn.channel()
    if mode == "publish":  # publish QUEUE BODY...: durable queue, persistent messages
        ch.queue_declare(queue=args[0], durable=True)
        ch.confirm_delivery()
        for body in args[1:]:
            ch.basic_publish(exchange="", routing_key=args[0], body=body.encode(),
                             properties=pika.BasicProperties(delivery_mode=2))
        print("published", len(args) - 1)
    elif mode == "get":  # get QUEUE: take one message and acknowledge it
        method, _props, body = ch.basic_get(queue=args[0], auto_ack=False)
        if method is None:
            print("empty")
        else:
            ch.basic_ack(method.delivery_tag)
            print(body.decode())
    conn.close()
EOF

vol=$(docker volume create --label "$label" "$run_id-data")

# client MODE USER PASSWORD ARGS...: run client.py from a second container on the network.
client() {
  local mode=$1 user=$2 pw=$3; shift 3
  RMQ_PASS=$pw docker run --rm --label "$label" --network "$run_id" \
    -e RMQ_PASS -e PYTHONPATH="/client/$pika_wheel" -v "$work/client:/client:ro" \
    --entrypoint python3 "$image" /client/client.py "$mode" rabbit "$user" "$RMQ_VHOST" "$@"
}

# The healthcheck a compose file should use: `ping` alone answers as soon as the Erlang
# node runs, seconds before the AMQP and HTTP listeners are up; check_running waits for
# the broker, check_port_connectivity for every listener.
health_cmd='rabbitmq-diagnostics -q check_running && rabbitmq-diagnostics -q check_port_connectivity'

# new_server NAME HOSTNAME [docker run options...]: the node, with that healthcheck and
# the volume; reachable as "rabbit" on the test network.
new_server() {
  local name=$1 host=$2; shift 2
  docker run -d --name "$run_id-$name" --label "$label" --hostname "$host" \
    --network "$run_id" --network-alias rabbit -v "$vol:/var/lib/rabbitmq" \
    --health-cmd "$health_cmd" --health-interval 2s --health-timeout 30s \
    --health-retries 40 "$@" "$image" >/dev/null
}

# ---- first start: healthcheck, management API, AMQP ------------------------------------
new_server main "$HOSTNAME_MAIN" -e RABBITMQ_DEFAULT_USER="$RMQ_USER" \
  -e RABBITMQ_DEFAULT_PASS="$RMQ_PASS" -e RABBITMQ_DEFAULT_VHOST="$RMQ_VHOST"
if wait_healthy main; then
  pass "healthcheck (check_running && check_port_connectivity) turns healthy ($((SECONDS - t0)) s after start)"
else
  fail "healthcheck (check_running && check_port_connectivity) turns healthy"
fi
check "docker exec rabbitmq-diagnostics -q ping (the basic healthcheck) exits 0" \
  docker exec "$run_id-main" rabbitmq-diagnostics -q ping
# shellcheck disable=SC2016  # expanded inside the container
check "the node (beam.smp) is PID 1 and runs as rabbitmq, uid 999" \
  docker exec "$run_id-main" bash -c '[ "$(stat -c %u /proc/1)" = 999 ] && [ "$(id -un 999)" = rabbitmq ] && grep -qx beam.smp /proc/1/comm'
check_eq "GET /api/overview with the configured user/password: 200, RabbitMQ 4, node and listeners" \
  "200 4 rabbit@$HOSTNAME_MAIN [5672, 15672, 15692, 25672]" client overview "$RMQ_USER" "$RMQ_PASS"
check_eq "... with a wrong password: 401" "401" client http-status "$RMQ_USER" "$RMQ_PASS-x" /api/overview
check_eq "... without credentials: 401" "401" client http-status "" "" /api/overview
check_eq "... as guest/guest (not created when RABBITMQ_DEFAULT_USER is set): 401" "401" \
  client http-status guest guest /api/overview
check_eq "RABBITMQ_DEFAULT_VHOST exists (GET /api/vhosts/$RMQ_VHOST: 200)" "200" \
  client http-status "$RMQ_USER" "$RMQ_PASS" "/api/vhosts/$RMQ_VHOST"
check_eq "management UI served on 15672 (GET /: 200)" "200" client http-status "" "" /
check_eq "AMQP on 5672: publish 2 persistent messages to a durable queue" "published 2" \
  client publish "$RMQ_USER" "$RMQ_PASS" labops.durable "first message" "second message é"
check_eq "AMQP on 5672: consume one back (round trip)" "first message" client get "$RMQ_USER" "$RMQ_PASS" labops.durable
check_eq "AMQP with a wrong password is refused" "refused" \
  client get "$RMQ_USER" wrong labops.durable
check "docker exec rabbitmqctl (root, cookie via HOME): list_users shows the administrator" \
  bash -c "docker exec '$run_id-main' rabbitmqctl -q list_users | grep -qxF '$RMQ_USER	[administrator]'"
check "docker exec rabbitmqctl authenticate_user passes the password's characters intact" \
  docker exec "$run_id-main" rabbitmqctl -q authenticate_user "$RMQ_USER" "$RMQ_PASS"
check "rabbitmqadmin (Debian's, HTTP API) lists the durable queue" \
  bash -c "docker exec '$run_id-main' rabbitmqadmin -u '$RMQ_USER' -p \"\$1\" -V '$RMQ_VHOST' -f tsv -q list queues name | grep -qx labops.durable" _ "$RMQ_PASS"

# ---- clean stop within 10 s ---------------------------------------------------------------
check_stop "$run_id-main" "SIGTERM reached the node, not killed"
check "node log: SIGTERM received, persistent message store closed" \
  bash -c "docker logs '$run_id-main' 2>&1 | grep -q 'SIGTERM received - shutting down' &&
           docker logs '$run_id-main' 2>&1 | tail -n 5 | grep -q \"msg_store_persistent' is stopped\""
docker rm "$run_id-main" >/dev/null

# ---- same volume, same hostname: user and durable queue kept ----------------------------
# Another password in the environment: ignored, as upstream (the node has its users).
new_server again "$HOSTNAME_MAIN" -e RABBITMQ_DEFAULT_USER="$RMQ_USER" \
  -e RABBITMQ_DEFAULT_PASS="changed" -e RABBITMQ_DEFAULT_VHOST="$RMQ_VHOST"
if wait_healthy again; then
  pass "restarted on the same volume and hostname: healthy"
  check_eq "the original user/password still works (API 200)" "200" client http-status "$RMQ_USER" "$RMQ_PASS" /api/overview
  check_eq "the password from the new environment does not (401)" "401" \
    client http-status "$RMQ_USER" changed /api/overview
  # The API's message count comes from statistics the node emits every 5 s: None until then.
  check_eq_within 20 "the durable queue survived with its one persistent message" "200 True 1" \
    client queue-messages "$RMQ_USER" "$RMQ_PASS" labops.durable
  check_eq "... which AMQP delivers" "second message é" client get "$RMQ_USER" "$RMQ_PASS" labops.durable
  check "entrypoint log says it found the node's data" \
    bash -c "docker logs '$run_id-again' 2>&1 | grep -q 'data directory holds node rabbit@$HOSTNAME_MAIN'"
else
  fail "restarted on the same volume and hostname: healthy"
fi
docker rm -f "$run_id-again" >/dev/null

# Another hostname on the same volume is another node (upstream behaves the same): the
# entrypoint says so before the node starts.
new_server moved other-host
sleep 0.5
check "another hostname on that volume: the log warns that the hostname changed" \
  bash -c "for i in \$(seq 40); do docker logs '$run_id-moved' 2>&1 | grep -q 'hostname changed' && exit 0; sleep 0.25; done; exit 1"
docker rm -f "$run_id-moved" >/dev/null

# ---- refusals ---------------------------------------------------------------------------
docker run -d --name "$run_id-nopass" --label "$label" -e RABBITMQ_DEFAULT_USER=alone "$image" >/dev/null
check_eq "RABBITMQ_DEFAULT_USER without RABBITMQ_DEFAULT_PASS: exit 1" "1" wait_exit nopass 30
check "... and the log says what is missing" \
  bash -c "docker logs '$run_id-nopass' 2>&1 | grep -q 'RABBITMQ_DEFAULT_PASS is empty'"
docker run -d --name "$run_id-removed" --label "$label" -e RABBITMQ_VM_MEMORY_HIGH_WATERMARK=0.5 "$image" >/dev/null
check_eq "a variable upstream removed (RABBITMQ_VM_MEMORY_HIGH_WATERMARK): exit 1, not ignored" "1" wait_exit removed 30

kit_end
